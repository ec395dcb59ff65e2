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
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Modeled returns the total modelled time spent so far.
func (c *Clock) Modeled() time.Duration {
	if c == nil {
		return 0
	}
	return time.Duration(c.modeled.Load())
}
