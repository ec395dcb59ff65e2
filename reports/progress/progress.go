// Package progress prints one-line progress of long work — firmware
// transfers, fleets, slow bring-up steps, lease waits — on the console while
// a run goes on, so a job that takes minutes is never silent.
//
// Lines go to standard error, which `ginkgo` shows live for a suite run
// serially (make emulate, make lab) and which never enters Ginkgo's JSON
// report: the console shows progress, the report stays quiet. They are on
// by default; TAP2JOIN_PROGRESS=off turns them off.
//
//	progress: board-1: firmware 16 KiB: 8192 / 16384 B (50 %), 2.9 s
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

var (
	mu  sync.Mutex
	out io.Writer = os.Stderr
)

// Enabled says whether progress lines are printed (TAP2JOIN_PROGRESS is not
// "off", "0" or "false").
func Enabled() bool {
	switch strings.ToLower(os.Getenv("TAP2JOIN_PROGRESS")) {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// SetOutput sends progress lines to w (standard error by default) and
// returns a function restoring the previous writer; for tests.
func SetOutput(w io.Writer) (restore func()) {
	mu.Lock()
	defer mu.Unlock()
	prev := out
	out = w
	return func() {
		mu.Lock()
		defer mu.Unlock()
		out = prev
	}
}

// Printf prints one progress line ("progress: " + the formatted text).
func Printf(format string, a ...any) {
	if !Enabled() {
		return
	}
	line := "progress: " + strings.TrimRight(fmt.Sprintf(format, a...), "\n") + "\n"
	mu.Lock()
	defer mu.Unlock()
	_, _ = io.WriteString(out, line)
}

// Counter prints "what: done / total (p %), elapsed" each time another
// step (a tenth by default) of total is done, and once at the end. It is
// safe for concurrent use: a fleet's boards count their joins on one
// Counter.
type Counter struct {
	what  string
	unit  string
	total int
	step  int
	start time.Time
	now   func() time.Time

	mu   sync.Mutex
	done int
	next int
}

// NewCounter counts to total in steps of a tenth. unit follows the numbers
// ("B", "devices"); now is the clock (time.Now, or the rig's model clock
// for work on virtual time, so the elapsed time is the modelled one).
func NewCounter(what string, total int, unit string, now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	step := max(total/10, 1)
	return &Counter{what: what, unit: unit, total: total, step: step, next: step, start: now(), now: now}
}

// Add counts n more done.
func (c *Counter) Add(n int) { c.Set(-1, n) }

// Set sets the count to done (when done ≥ 0) or adds n to it, and prints a
// line when it crossed the next step or reached the total.
func (c *Counter) Set(done, n int) {
	c.mu.Lock()
	if done < 0 {
		done = c.done + n
	}
	c.done = done
	if done < c.next && done < c.total {
		c.mu.Unlock()
		return
	}
	for c.next <= done {
		c.next += c.step
	}
	el := c.now().Sub(c.start)
	c.mu.Unlock()
	pct := 100.0
	if c.total > 0 {
		pct = 100 * float64(done) / float64(c.total)
	}
	unit := ""
	if c.unit != "" {
		unit = " " + c.unit
	}
	Printf("%s: %d / %d%s (%.0f %%), %s", c.what, done, c.total, unit, pct, el.Round(time.Millisecond))
}
