package progress

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func capture(t *testing.T) *strings.Builder {
	t.Helper()
	var b strings.Builder
	var mu sync.Mutex
	restore := SetOutput(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return b.Write(p)
	}))
	t.Cleanup(restore)
	return &b
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCounterPrintsEveryTenthAndTheEnd(t *testing.T) {
	t.Setenv("TAP2JOIN_PROGRESS", "")
	b := capture(t)
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	now := t0
	c := NewCounter("fleet of 25", 25, "devices", func() time.Time { return now })
	for i := 0; i < 25; i++ {
		now = now.Add(100 * time.Millisecond)
		c.Add(1)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Step 2 (a tenth of 25, rounded down): 2, 4, … 24, then 25.
	if len(lines) != 13 {
		t.Fatalf("%d lines, want 13:\n%s", len(lines), b.String())
	}
	if lines[0] != "progress: fleet of 25: 2 / 25 devices (8 %), 200ms" {
		t.Errorf("first line %q", lines[0])
	}
	if lines[12] != "progress: fleet of 25: 25 / 25 devices (100 %), 2.5s" {
		t.Errorf("last line %q", lines[12])
	}
}

func TestCounterSetJumps(t *testing.T) {
	t.Setenv("TAP2JOIN_PROGRESS", "on")
	b := capture(t)
	c := NewCounter("firmware", 1000, "B", nil)
	c.Set(256, 0) // crosses 100 and 200: one line
	c.Set(260, 0) // no step crossed
	c.Set(1000, 0)
	if got := strings.Count(b.String(), "\n"); got != 2 {
		t.Errorf("%d lines, want 2:\n%s", got, b.String())
	}
}

func TestOff(t *testing.T) {
	t.Setenv("TAP2JOIN_PROGRESS", "off")
	b := capture(t)
	Printf("x")
	NewCounter("y", 1, "", nil).Add(1)
	if b.Len() != 0 {
		t.Errorf("printed with TAP2JOIN_PROGRESS=off: %q", b.String())
	}
}
