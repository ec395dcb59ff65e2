package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tap2join/tap2join/reports/keyscan"
)

// The key-leak check of a run (reports/keyscan). Before ginkgo starts, the
// driver makes the run's escrow key and gives it, with the escrow file's
// path, to every process it starts; the rigs escrow each key they issue
// there. Everything the run prints — the driver's own lines, ginkgo's and
// every suite binary's stdout and stderr, t2jreport's — is teed into
// <run>/console.log, and with TAP2JOIN_LOG set the rigs' logs go to
// <run>/rig.log. After the reports are written, every file of the run folder
// is scanned for every escrowed key; the result is <run>/leakcheck.json and
// a line of summary.md, and a hit fails the run. The escrow is deleted.

// leakCheck is one run's escrow and console capture.
type leakCheck struct {
	key     [32]byte
	escrow  string
	console *os.File
	mu      sync.Mutex // writes to console from stdout and stderr
}

const (
	consoleLog   = "console.log"
	rigLog       = "rig.log"
	leakCheckOut = "leakcheck.json"
)

// startLeakCheck makes the escrow key and opens dir/console.log.
func startLeakCheck(dir string) (*leakCheck, error) {
	k, err := keyscan.NewEscrowKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, consoleLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	return &leakCheck{key: k, escrow: filepath.Join(dir, keyscan.EscrowFile), console: f}, nil
}

// tee writes to w and to the console log; a console log that fails to
// write never stops the terminal's output.
func (l *leakCheck) tee(w io.Writer) io.Writer { return teeWriter{w: w, l: l} }

type teeWriter struct {
	w io.Writer
	l *leakCheck
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.l.mu.Lock()
	_, _ = t.l.console.Write(p)
	t.l.mu.Unlock()
	return t.w.Write(p)
}

// env is what the run's processes get: the escrow, and the rigs' log file,
// always the run folder's rig.log (a TAP2JOIN_LOG_FILE of the caller's
// elsewhere would escape the scan).
func (l *leakCheck) env(dir string) []string {
	return []string{keyscan.EnvFile + "=" + abs(l.escrow), keyscan.EnvKey + "=" + hex.EncodeToString(l.key[:]),
		"TAP2JOIN_LOG_FILE=" + abs(filepath.Join(dir, rigLog))}
}

// finish scans the run folder, writes leakcheck.json and the summary line,
// deletes the escrow and closes the console log. It returns the result, or
// an error when the check could not be made (which fails the run too: a
// run that cannot prove it leaked nothing does not pass).
func (l *leakCheck) finish(dir string) (keyscan.Result, error) {
	defer os.Remove(l.escrow)
	defer os.Remove(l.escrow + keyscan.FailedSuffix)
	l.mu.Lock()
	cerr := l.console.Close()
	l.mu.Unlock()
	keys, err := keyscan.ReadEscrow(l.escrow, l.key)
	if err != nil {
		return keyscan.Result{}, err
	}
	if cerr != nil {
		return keyscan.Result{}, fmt.Errorf("console log: %w", cerr)
	}
	res, err := keyscan.New(keys).ScanDir(dir)
	if err != nil {
		return res, err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, leakCheckOut), append(b, '\n'), 0o644); err != nil {
		return res, fmt.Errorf("%s: %w", leakCheckOut, err)
	}
	line := fmt.Sprintf("\nKey-leak check: %d issued key(s), %d file(s), %d bytes scanned (console and logs included): %s.\n",
		res.Keys, res.Files, res.Bytes, leakWords(res))
	if f, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		_, _ = f.WriteString(line)
		_ = f.Close()
	}
	return res, nil
}

func leakWords(res keyscan.Result) string {
	if len(res.Hits) == 0 {
		return "no key found"
	}
	hs := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		hs[i] = h.String()
	}
	return fmt.Sprintf("%d LEAK(S): %s", len(res.Hits), strings.Join(hs, "; "))
}
