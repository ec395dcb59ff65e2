// Package timing gives every emulated part one notion of physical time.
//
// Each emulated operation knows how long it takes on real hardware (an RF frame
// at a data rate, an EEPROM write, an I2C transfer, LoRa airtime). In Realistic
// mode the part sleeps that long; in Instant mode it does not, but the duration
// is still accounted, so suites can compare the modelled time with limits.
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
// fineWindow, then fineSleep to the deadline.
func sleep(ctx context.Context, d time.Duration) error {
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

// Modeled returns the total modelled time spent so far.
func (c *Clock) Modeled() time.Duration {
	if c == nil {
		return 0
	}
	return time.Duration(c.modeled.Load())
}
