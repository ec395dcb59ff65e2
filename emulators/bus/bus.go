// Package bus holds the wires between emulated chips on one board: an I2C bus
// (controller transactions, target NACKs) and a GPO-style interrupt line.
//
// The shapes follow periph.io's conn/i2c and conn/gpio so that firmware-twin code
// reads like driver code written against real buses.
package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// I2C is one I2C bus seen from the controller (the MCU).
//
// Tx runs one transaction: START, device select with R/W=0 and the bytes of w
// (if w is non-empty or r is empty), then — if r is non-empty — a repeated START,
// device select with R/W=1 and len(r) bytes read, then STOP. addr is the 7-bit
// device address.
type I2C interface {
	Tx(addr uint16, w, r []byte) error
}

// NACKError reports that the target did not acknowledge a byte. Index is the
// position in the transaction where the NACK happened: 0 is the device-select
// byte, 1.. are the bytes of w in order. Nothing after a NACK reaches the target.
type NACKError struct {
	Addr  uint16
	Index int
}

func (e *NACKError) Error() string {
	if e.Index == 0 {
		return fmt.Sprintf("i2c: device 0x%02x: address NACK", e.Addr)
	}
	return fmt.Sprintf("i2c: device 0x%02x: byte %d NACKed", e.Addr, e.Index)
}

// IsNACK reports whether err is (or wraps) a NACK.
func IsNACK(err error) bool {
	var n *NACKError
	return errors.As(err, &n)
}

// Target is a chip on the bus. It answers for the device addresses it claims.
type Target interface {
	// Claims reports whether the target answers the 7-bit address right now
	// (device codes can be reprogrammed, e.g. ST25DV I2C_CFG).
	Claims(addr uint16) bool
	Tx(addr uint16, w, r []byte) error
}

// Bus is an I2C bus with targets attached. The zero value is ready to use.
type Bus struct {
	mu      sync.Mutex
	targets []Target
}

// Attach adds a target to the bus.
func (b *Bus) Attach(t Target) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets = append(b.targets, t)
}

// Tx implements I2C. A transaction to an address nobody claims is NACKed on the
// device-select byte, as on a real bus with pull-ups.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	ts := append([]Target(nil), b.targets...)
	b.mu.Unlock()
	for _, t := range ts {
		if t.Claims(addr) {
			return t.Tx(addr, w, r)
		}
	}
	return &NACKError{Addr: addr, Index: 0}
}

// Line is an open-drain interrupt line (like the ST25DV GPO): the chip pulses
// or holds it, the MCU waits for edges. Edges are counted, not lost: a pulse
// that happens before the MCU waits is seen by the next WaitForEdge.
type Line struct {
	mu      sync.Mutex
	pending int
	level   bool
	wake    chan struct{}
}

// NewLine returns an idle (released, high) line.
func NewLine() *Line { return &Line{wake: make(chan struct{})} }

// Pulse signals one active-low pulse (one falling edge).
func (l *Line) Pulse() {
	l.mu.Lock()
	l.pending++
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Set drives (active=true) or releases the line; driving it counts as an edge.
func (l *Line) Set(active bool) {
	l.mu.Lock()
	was := l.level
	l.level = active
	l.mu.Unlock()
	if active && !was {
		l.Pulse()
	}
}

// Active reports whether the line is currently held active.
func (l *Line) Active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

// closedEdge is Edge's answer when an edge is already pending.
var closedEdge = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Edge returns a channel closed once an edge is pending (already closed if
// one is), for a select that waits on the line beside other events — an
// interrupt beside a timer — without a goroutine per line calling
// WaitForEdge: a fleet has 10,000 lines. Drain then consumes the edges.
func (l *Line) Edge() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending > 0 {
		return closedEdge
	}
	return l.wake
}

// Drain consumes every pending edge and returns how many there were.
func (l *Line) Drain() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.pending
	l.pending = 0
	return n
}

// WaitForEdge blocks until an edge is pending (and consumes it) or ctx ends.
func (l *Line) WaitForEdge(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.pending > 0 {
			l.pending--
			l.mu.Unlock()
			return nil
		}
		w := l.wake
		l.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
