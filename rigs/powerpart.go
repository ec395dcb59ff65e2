package rigs

import (
	"context"
	"fmt"
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

// realPower is a real board's PowerSwitch.
type realPower struct {
	sw  power.Switch
	con func() at.Console
}

func (p realPower) PowerOff(ctx context.Context) error { return p.sw.Off(ctx) }

func (p realPower) PowerOn(ctx context.Context) error {
	if err := p.sw.On(ctx); err != nil {
		return err
	}
	return awaitConsole(ctx, p.con())
}

// realReset is a real board's MCUControl.
type realReset struct {
	halt  func(ctx context.Context) error
	reset func(ctx context.Context) error
	con   func() at.Console
}

func (r realReset) HaltMCU() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.halt(ctx)
}

func (r realReset) ResetMCU(ctx context.Context) error {
	if err := r.reset(ctx); err != nil {
		return err
	}
	return awaitConsole(ctx, r.con())
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
	if p := bs.Power; p != nil {
		var sw power.Switch
		if p.Kind == "uhubctl" {
			sw = power.UHubCtl{Location: p.Hub, Port: p.Port}
		} else {
			g := &power.GPIO{Chip: p.Chip, Line: p.Line, ActiveLow: p.ActiveLow}
			r.closers = append(r.closers, g.Close)
			sw = g
		}
		b.parts = append(b.parts, realPower{sw: sw, con: con})
	}
	if rs := bs.Reset; rs != nil {
		part := realReset{con: con}
		if rs.Kind == "openocd" {
			o := power.OpenOCDReset{Serial: bs.Hardware.Probe.USBSerial}
			part.halt, part.reset = o.Halt, o.Reset
		} else {
			// NRST is active low: holding the line active holds the MCU in
			// reset (halted); a pulse resets it.
			g := &power.GPIO{Chip: rs.Chip, Line: rs.Line, ActiveLow: true}
			r.closers = append(r.closers, g.Close)
			part.halt = g.On
			part.reset = func(ctx context.Context) error {
				if err := g.On(ctx); err != nil {
					return err
				}
				return g.Off(ctx)
			}
		}
		b.parts = append(b.parts, part)
	}
	if len(b.parts) > 0 {
		b.lacks = map[string]string{"": realBoardLacks[""]}
	}
}
