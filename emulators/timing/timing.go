// Package timing gives every emulated part one notion of physical time.
//
// Each emulated operation knows how long it takes on real hardware (an RF frame
// at a data rate, an EEPROM write, an I2C transfer, LoRa airtime). In Realistic
// mode the part sleeps that long; in Instant mode it does not, but the duration
// is still accounted, so suites can compare the modelled time with limits.
//
// A realistic sleep is on the wall clock, or on a virtual one when the part
// runs in a testing/synctest bubble (Virtual): there it sleeps on Go timers
// only, which fire exactly when every goroutine of the bubble waits, so an
// exchange whose whole path is in the process takes exactly its modelled
// time, in no wall time and whatever the host's load (suites/ftm).
package timing

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Mode selects whether modelled durations are slept.
type Mode int

const (
	// Instant accounts modelled time without sleeping.
	Instant Mode = iota
	// Realistic sleeps every modelled duration.
	Realistic
)

// ParseMode parses "instant" or "realistic" (the rig file's timing field).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "instant":
		return Instant, nil
	case "realistic":
		return Realistic, nil
	}
	return Instant, fmt.Errorf("timing: unknown mode %q (want instant or realistic)", s)
}

func (m Mode) String() string {
	if m == Realistic {
		return "realistic"
	}
	return "instant"
}

// Clock accounts modelled time for one part. It is safe for concurrent use.
type Clock struct {
	mode    Mode
	modeled atomic.Int64 // nanoseconds
}

// NewClock returns a clock in the given mode.
func NewClock(m Mode) *Clock { return &Clock{mode: m} }

// Mode returns the clock's mode.
func (c *Clock) Mode() Mode {
	if c == nil {
		return Instant
	}
	return c.mode
}

// Spend accounts d of modelled time and, in Realistic mode, sleeps it
// (returning early with ctx's error if ctx ends). A nil Clock is Instant.
func (c *Clock) Spend(ctx context.Context, d time.Duration) error {
	if c == nil || d <= 0 {
		return nil
	}
	c.modeled.Add(int64(d))
	if c.mode != Realistic {
		return nil
	}
	return sleep(ctx, d)
}

// fineWindow is the tail of a realistic wait not left to a Go timer: Go's
// timers wake through the netpoller, which waits in whole milliseconds on
// Linux, so a 100 µs timer takes ≈ 1.1 ms and a 3.76 ms one ≈ 4.2 ms — 12 %
// over a 1-byte Write Message. The tail is slept by fineSleep instead
// (nanosleep on Linux: the thread blocks, µs-accurate, no CPU burnt).
const fineWindow = 1500 * time.Microsecond

// sleep waits d (or until ctx ends): a timer for all but the last
// fineWindow, then fineSleep to the deadline. On a virtual clock (Virtual)
// a timer waits it all: it fires exactly there, and neither nanosleep nor
// a yielding loop would move that clock.
func sleep(ctx context.Context, d time.Duration) error {
	if Virtual() {
		return timerWait(ctx, d)
	}
	deadline := time.Now().Add(d)
	if coarse := d - fineWindow; coarse > 0 {
		t := time.NewTimer(coarse)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if rest := time.Until(deadline); rest > 0 {
		fineSleep(rest)
	}
	return nil
}

// timerWait waits d on a Go timer, or until ctx ends.
func timerWait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// Virtual reports whether the calling goroutine's clock is virtual: it runs
// in a testing/synctest bubble, where time.Now, timers and sleeps read and
// wait on the bubble's fake clock, which stands still while any goroutine
// of the bubble runs and jumps to the next timer once all of them are
// durably blocked. There a realistic Clock sleeps on Go timers only, which
// fire exactly at their deadline; each exchange then takes its modelled
// time to the nanosecond, whatever the host's load, and no wall time.
//
// It is detected by time.Now carrying no monotonic clock reading (the
// runtime omits it inside a bubble, runtime/time.go; outside one every
// time.Now has it since Go 1.9): Round(0) strips that reading, and ==
// compares it. TestVirtualInsideSynctestBubble pins this down.
func Virtual() bool {
	now := time.Now()
	return now == now.Round(0)
}

// Modeled returns the total modelled time spent so far.
func (c *Clock) Modeled() time.Duration {
	if c == nil {
		return 0
	}
	return time.Duration(c.modeled.Load())
}
