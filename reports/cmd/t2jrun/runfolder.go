package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// One run, one folder: <out>/<mode>/<run id>, created with its lock file
// already inside (built under a temporary name, then renamed into place), so
// a second run asking for the same id finds either nothing or a folder whose
// lock names its holder — never a half-made folder. `latest` next to it is a
// symlink swapped in by rename.

// lockName is the lock file in a run folder while its run is going on.
const lockName = "run.lock"

// latestName is the symlink, next to the run folders, to the newest run.
const latestName = "latest"

// holder is what a lock file says about the run that holds the folder.
type holder struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Started string `json:"started"` // RFC3339
	Mode    string `json:"mode"`
	RunID   string `json:"run_id"`
}

func (h holder) String() string {
	return fmt.Sprintf("pid %d on host %s since %s", h.PID, h.Host, h.Started)
}

// newRunID is a UTC timestamp and a short random suffix:
// 20261206T101502Z-3f9a1c.
func newRunID(now time.Time, rnd io.Reader) (string, error) {
	b := make([]byte, 3)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b), nil
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// checkRunID accepts ids that are one plain path element.
func checkRunID(id string) error {
	switch {
	case id == latestName:
		return fmt.Errorf("run id %q is reserved for the link to the newest run", id)
	case !runIDPattern.MatchString(id):
		return fmt.Errorf("run id %q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// runID is $TAP2JOIN_RUN_ID when set, else a fresh one.
func runID(env func(string) string, now time.Time) (string, error) {
	if id := env("TAP2JOIN_RUN_ID"); id != "" {
		return id, checkRunID(id)
	}
	return newRunID(now, rand.Reader)
}

// runFolder is a created, locked run folder.
type runFolder struct {
	Base string // <out>/<mode>
	ID   string
	Dir  string // <out>/<mode>/<id>
}

// HeldError is a run folder that already exists: another run holds it, or
// a finished (or killed) run left it.
type HeldError struct {
	Dir    string
	Holder *holder // nil: no lock, a finished run's folder
	Gone   bool    // the holder's process is no longer running (same host)
}

func (e *HeldError) Error() string {
	switch {
	case e.Holder == nil:
		return fmt.Sprintf("run folder %s already holds a finished run: pick another TAP2JOIN_RUN_ID (or remove the folder)", e.Dir)
	case e.Gone:
		return fmt.Sprintf("run folder %s is locked by %s, which is no longer running: pick another TAP2JOIN_RUN_ID (or remove %s)", e.Dir, e.Holder, filepath.Join(e.Dir, lockName))
	default:
		return fmt.Sprintf("run folder %s is in use by %s (lock %s): pick another TAP2JOIN_RUN_ID", e.Dir, e.Holder, filepath.Join(e.Dir, lockName))
	}
}

// createRunFolder makes base/id with the lock file naming h inside it. It
// fails at once, naming the holder, when base/id exists.
func createRunFolder(base, id string, h holder) (*runFolder, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("output folder %s is not writable: %w", base, err)
	}
	dir := filepath.Join(base, id)
	if _, err := os.Lstat(dir); err == nil {
		return nil, heldError(dir)
	}
	tmp, err := os.MkdirTemp(base, "."+id+".new-")
	if err != nil {
		return nil, fmt.Errorf("output folder %s is not writable: %w", base, err)
	}
	_ = os.Chmod(tmp, 0o755) // MkdirTemp makes it 0700; reports are for everyone
	b, _ := json.MarshalIndent(h, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, lockName), append(b, '\n'), 0o644); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("output folder %s is not writable: %w", base, err)
	}
	// rename(2) replaces an empty directory only; a run folder always holds
	// at least its lock or its reports.
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Lstat(dir); serr == nil {
			return nil, heldError(dir)
		}
		return nil, fmt.Errorf("output folder %s: %w", base, err)
	}
	return &runFolder{Base: base, ID: id, Dir: dir}, nil
}

func heldError(dir string) error {
	e := &HeldError{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, lockName))
	if err != nil {
		return e
	}
	var h holder
	if json.Unmarshal(b, &h) != nil {
		h = holder{Host: "?", Started: "?"}
	}
	e.Holder = &h
	if host, _ := os.Hostname(); h.Host == host && h.PID > 0 && !alive(h.PID) {
		e.Gone = true
	}
	return e
}

// alive reports whether a process with this pid exists (on this host).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// release removes the lock: the run is over.
func (f *runFolder) release() error {
	err := os.Remove(filepath.Join(f.Dir, lockName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// updateLatest points base/latest at id (a relative symlink, swapped in by
// rename so a reader never sees it missing).
func updateLatest(base, id string) error {
	tmp := filepath.Join(base, fmt.Sprintf(".%s.%d", latestName, os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(id, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(base, latestName)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
