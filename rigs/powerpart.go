package rigs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/power"
)

// Power and reset as bench parts (rig file `power:` and `reset:`, rigs/power):
// a real board with them offers PowerSwitch and MCUControl, so the fault
// specs that cut power or hold the MCU run on the bench too; an emulated
// board's twin offers both always.

// PowerSpec is a board's switchable supply.
type PowerSpec struct {
	// Kind: uhubctl (a switchable USB hub's port: hub, port) or gpio (a
	// relay on a GPIO line: chip, line, active_low).
	Kind      string `yaml:"kind"`
	Hub       string `yaml:"hub"` // uhubctl -l, e.g. "1-1"
	Port      int    `yaml:"port"`
	Chip      string `yaml:"chip"` // e.g. gpiochip0
	Line      int    `yaml:"line"`
	ActiveLow bool   `yaml:"active_low"`
}

// ResetSpec is how a board's MCU is reset and held.
type ResetSpec struct {
	// Kind: openocd (through hardware.probe's ST-LINK) or gpio (the NRST
	// line on a GPIO: chip, line; active low as NRST is).
	Kind string `yaml:"kind"`
	Chip string `yaml:"chip"`
	Line int    `yaml:"line"`
}

// PowerSwitch cuts a board's supply and restores it: the MCU and the tag
// lose power (RAM, the tag's dynamic registers — MB_EN among them, DS13519
// §5.1.2 — are lost; flash and EEPROM keep). PowerOn returns once the
// firmware booted.
type PowerSwitch interface {
	PowerOff(ctx context.Context) error
	PowerOn(ctx context.Context) error
}

func (b BoardSpec) powerErrors(where string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	if p := b.Power; p != nil {
		switch {
		case b.Emulated:
			bad("power: an emulated board's supply is the twin's (leave power out)")
		case p.Kind == "uhubctl" && (p.Hub == "" || p.Port < 1):
			bad("power: uhubctl needs hub (its location, uhubctl lists them) and port (≥ 1)")
		case p.Kind == "gpio" && (p.Chip == "" || p.Line < 0):
			bad("power: gpio needs chip (e.g. gpiochip0) and line")
		case p.Kind != "uhubctl" && p.Kind != "gpio":
			bad("power.kind %q: want uhubctl or gpio", p.Kind)
		}
	}
	if r := b.Reset; r != nil {
		switch {
		case b.Emulated:
			bad("reset: an emulated board is reset by the rig (leave reset out)")
		case r.Kind == "openocd" && (b.Hardware == nil || b.Hardware.Probe.USBSerial == ""):
			bad("reset: openocd needs hardware.probe.usb_serial")
		case r.Kind == "gpio" && (r.Chip == "" || r.Line < 0):
			bad("reset: gpio needs chip and line")
		case r.Kind != "openocd" && r.Kind != "gpio":
			bad("reset.kind %q: want openocd or gpio", r.Kind)
		}
	}
	return errs
}

// realPower is a real board's PowerSwitch. It remembers a cut so the rig's
// Close powers the board up again for the next spec or job.
type realPower struct {
	sw  power.Switch
	con func() at.Console
	mu  sync.Mutex
	off bool
}

func (p *realPower) PowerOff(ctx context.Context) error {
	p.mu.Lock()
	p.off = true
	p.mu.Unlock()
	return p.sw.Off(ctx)
}

func (p *realPower) PowerOn(ctx context.Context) error {
	if err := p.sw.On(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.off = false
	p.mu.Unlock()
	return awaitConsole(ctx, p.con())
}

// restore powers the board up if a spec left it off (Close).
func (p *realPower) restore() error {
	p.mu.Lock()
	off := p.off
	p.mu.Unlock()
	if !off {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.sw.On(ctx); err != nil {
		return fmt.Errorf("rigs: power the board up again at close: %w", err)
	}
	return nil
}

// realReset is a real board's MCUControl. A halt is undone at Close.
type realReset struct {
	halt   func(ctx context.Context) error
	reset  func(ctx context.Context) error
	con    func() at.Console
	mu     sync.Mutex
	halted bool
}

func (r *realReset) HaltMCU() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.mu.Lock()
	r.halted = true
	r.mu.Unlock()
	return r.halt(ctx)
}

func (r *realReset) ResetMCU(ctx context.Context) error {
	if err := r.reset(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.halted = false
	r.mu.Unlock()
	return awaitConsole(ctx, r.con())
}

// restore resets an MCU a spec left halted (Close).
func (r *realReset) restore() error {
	r.mu.Lock()
	halted := r.halted
	r.mu.Unlock()
	if !halted {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.reset(ctx); err != nil {
		return fmt.Errorf("rigs: reset the halted MCU at close: %w", err)
	}
	return nil
}

// awaitConsole waits until a booted firmware answers AT (the console
// re-opens by itself after a re-enumeration); a board without a console
// is taken as booted.
func awaitConsole(ctx context.Context, con at.Console) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if _, err := con.Command(ctx, "AT"); err == nil || err == at.ErrNoConsole {
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rigs: the board did not answer AT after power-up or reset: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// benchPowerParts builds a real board's power and reset parts.
func (r *Rig) benchPowerParts(bs BoardSpec, b *Board) {
	con := func() at.Console { return b.Console }
	// Closers run last-added first: the lines are released after the
	// board was powered up and reset again.
	if p := bs.Power; p != nil {
		var sw power.Switch
		if p.Kind == "uhubctl" {
			sw = power.UHubCtl{Location: p.Hub, Port: p.Port}
		} else {
			g := &power.GPIO{Chip: p.Chip, Line: p.Line, ActiveLow: p.ActiveLow}
			r.closers = append(r.closers, g.Close)
			sw = g
		}
		part := &realPower{sw: sw, con: con}
		r.closers = append(r.closers, part.restore)
		b.parts = append(b.parts, part)
	}
	if rs := bs.Reset; rs != nil {
		part := &realReset{con: con}
		if rs.Kind == "openocd" {
			serial := ""
			if bs.Hardware != nil {
				serial = bs.Hardware.Probe.USBSerial
			}
			o := power.OpenOCDReset{Serial: serial}
			part.halt, part.reset = o.Halt, o.Reset
		} else {
			// NRST is active low and driven by the MCU and the ST-LINK too:
			// open-drain, so the line is only ever pulled low. Holding it
			// active holds the MCU in reset (halted); releasing it after a
			// pulse lets it run.
			g := &power.GPIO{Chip: rs.Chip, Line: rs.Line, ActiveLow: true, OpenDrain: true}
			r.closers = append(r.closers, g.Close)
			part.halt = g.On
			part.reset = func(ctx context.Context) error {
				if err := g.On(ctx); err != nil {
					return err
				}
				if err := g.Off(ctx); err != nil {
					return err
				}
				return g.Close() // released: the line floats high (pull-up)
			}
		}
		r.closers = append(r.closers, part.restore)
		b.parts = append(b.parts, part)
	}
	if len(b.parts) > 0 {
		b.lacks = map[string]string{"": realBoardLacks[""]}
	}
}
