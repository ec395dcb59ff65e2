package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunID(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 15, 2, 0, time.FixedZone("CET", 3600))
	id, err := newRunID(now, bytes.NewReader([]byte{0x3f, 0x9a, 0x1c}))
	if err != nil || id != "20261206T091502Z-3f9a1c" {
		t.Errorf("newRunID = %q, %v; want the UTC time and 3 random bytes", id, err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "TAP2JOIN_RUN_ID" {
				return v
			}
			return ""
		}
	}
	if id, err := runID(env("ci-1234.2"), now); err != nil || id != "ci-1234.2" {
		t.Errorf("TAP2JOIN_RUN_ID=ci-1234.2: %q, %v", id, err)
	}
	if id, err := runID(env(""), now); err != nil || !regexp.MustCompile(`^20261206T091502Z-[0-9a-f]{6}$`).MatchString(id) {
		t.Errorf("no TAP2JOIN_RUN_ID: %q, %v", id, err)
	}
	for _, bad := range []string{"latest", "../x", "a/b", ".hidden", "-x", "a b", strings.Repeat("x", 129)} {
		if _, err := runID(env(bad), now); err == nil {
			t.Errorf("TAP2JOIN_RUN_ID=%q accepted", bad)
		}
	}
}

func testHolder(id string) holder {
	host, _ := os.Hostname()
	return holder{PID: os.Getpid(), Host: host, Started: "2026-12-06T10:15:02Z", Mode: "emulate", RunID: id}
}

func TestRunFolderLockNamesItsHolder(t *testing.T) {
	base := filepath.Join(t.TempDir(), "out", "emulate")
	f, err := createRunFolder(base, "r1", testHolder("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Dir != filepath.Join(base, "r1") {
		t.Errorf("dir %s", f.Dir)
	}
	var h holder
	b, err := os.ReadFile(filepath.Join(f.Dir, lockName))
	if err != nil || json.Unmarshal(b, &h) != nil || h.PID != os.Getpid() || h.Started == "" || h.Host == "" {
		t.Fatalf("lock file %s: %v", b, err)
	}
	if st, _ := os.Stat(f.Dir); st.Mode().Perm() != 0o755 {
		t.Errorf("run folder mode %v", st.Mode().Perm())
	}

	// The same id while the run goes on: refused at once, naming the holder.
	_, err = createRunFolder(base, "r1", testHolder("r1"))
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Gone {
		t.Fatalf("second run: %v", err)
	}
	for _, want := range []string{"in use by pid", h.Host, "2026-12-06T10:15:02Z", "TAP2JOIN_RUN_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}

	// Finished (lock released): still refused, it holds a run's reports.
	if err := f.release(); err != nil {
		t.Fatal(err)
	}
	if err := f.release(); err != nil {
		t.Errorf("second release: %v", err)
	}
	_, err = createRunFolder(base, "r1", testHolder("r1"))
	if !errors.As(err, &held) || held.Holder != nil || !strings.Contains(err.Error(), "finished run") {
		t.Errorf("finished folder: %v", err)
	}

	// Nothing left behind but the run folder.
	ents, _ := os.ReadDir(base)
	if len(ents) != 1 {
		t.Errorf("base holds %d entries, want the run folder only", len(ents))
	}
}

func TestRunFolderOfADeadHolder(t *testing.T) {
	base := t.TempDir()
	h := testHolder("r2")
	h.PID = 1<<31 - 2 // no such process
	if _, err := createRunFolder(base, "r2", h); err != nil {
		t.Fatal(err)
	}
	_, err := createRunFolder(base, "r2", testHolder("r2"))
	var held *HeldError
	if !errors.As(err, &held) || !held.Gone || !strings.Contains(err.Error(), "no longer running") {
		t.Errorf("dead holder: %v", err)
	}
}

func TestRunFolderOneWinner(t *testing.T) {
	base := t.TempDir()
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		held int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := createRunFolder(base, "same", testHolder("same"))
			mu.Lock()
			defer mu.Unlock()
			var h *HeldError
			switch {
			case err == nil:
				won++
			case errors.As(err, &h):
				held++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || held != n-1 {
		t.Errorf("%d created, %d refused; want 1 and %d", won, held, n-1)
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 1 {
		t.Errorf("%d entries left in the base, want 1", len(ents))
	}
}

func TestRunFolderUnwritableBase(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "file", "")
	_, err := createRunFolder(filepath.Join(f, "emulate"), "r", testHolder("r"))
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("base under a file: %v", err)
	}
}

func TestLatestFollowsTheNewestRun(t *testing.T) {
	base := t.TempDir()
	for _, id := range []string{"a", "b"} {
		if _, err := createRunFolder(base, id, testHolder(id)); err != nil {
			t.Fatal(err)
		}
		if err := updateLatest(base, id); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(filepath.Join(base, latestName)); err != nil || got != id {
			t.Errorf("latest → %q, %v; want %q", got, err, id)
		}
	}
	if _, err := os.Stat(filepath.Join(base, latestName, lockName)); err != nil {
		t.Errorf("latest does not lead to the run folder: %v", err)
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 3 {
		t.Errorf("%d entries, want a, b and latest", len(ents))
	}
}
