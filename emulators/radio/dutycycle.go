package radio

import (
	"context"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

// EU868 duty cycle.
//
// ETSI EN 300 220-2 limits the share of time a transmitter may occupy a
// sub-band; LoRaWAN's EU863-870 regional parameters (RP002-1.0.3 §2.4.2) put
// the three default channels 868.1/868.3/868.5 MHz in sub-band g1
// (868.0–868.6 MHz, 1 %) and the RX2 channel 869.525 MHz in g3
// (869.4–869.65 MHz, 10 %). After a transmission of airtime T in a sub-band
// with limit dc, the transmitter must stay off that sub-band for
// T·(1/dc − 1) — the same "time-off" LoRaMac-node computes per band
// (RegionCommon.c: TimeOff = TxTimeOnAir · DCycle − TxTimeOnAir).
//
// The accounting is per transmitter (Frame.Sender) and sub-band, on the
// duty-cycle timeline: the clock's modelled time in Instant mode (so a delay
// costs no wall time but is reported), wall time since NewAir in Realistic
// mode. Only the sub-bands tabulated below are limited; other frequencies are
// not accounted (the remaining ETSI sub-bands are not needed by the EU868
// default channels and are not modelled).

// DutyCycleMode is what the Air does with a frame that would violate the
// duty cycle.
type DutyCycleMode int

const (
	// DutyCycleOff accounts but never enforces (the default).
	DutyCycleOff DutyCycleMode = iota
	// DutyCycleDelay holds the frame back until the sub-band is free again
	// (what LoRaMac-node's scheduler does for a delayed transmission), and
	// records the delay in Frame.DutyCycleDelay.
	DutyCycleDelay
	// DutyCycleRefuse fails Transmit with a *DutyCycleError.
	DutyCycleRefuse
)

func (m DutyCycleMode) String() string {
	switch m {
	case DutyCycleOff:
		return "off"
	case DutyCycleDelay:
		return "delay"
	case DutyCycleRefuse:
		return "refuse"
	}
	return fmt.Sprintf("DutyCycleMode(%d)", int(m))
}

// ParseDutyCycleMode parses "off", "delay" or "refuse".
func ParseDutyCycleMode(s string) (DutyCycleMode, error) {
	switch s {
	case "", "off":
		return DutyCycleOff, nil
	case "delay":
		return DutyCycleDelay, nil
	case "refuse":
		return DutyCycleRefuse, nil
	}
	return 0, fmt.Errorf("radio: duty cycle mode %q is not off, delay or refuse", s)
}

// SubBand is a frequency range with a duty-cycle limit.
type SubBand struct {
	Name      string
	Low, High uint32  // Hz, inclusive low, exclusive high
	Limit     float64 // fraction of time, e.g. 0.01
}

// EU868SubBands are the ETSI EN 300 220 (ERC/REC 70-03 annex 1) sub-bands
// an EU868 device may use, as LoRaMac-node's RegionEU868 bands them: the
// default channels (868.1/.3/.5) in g1, the CFList channels ChirpStack
// hands out (867.1–867.9) in h1.4, RX2 (869.525) in g3. UNCONFIRMED: the
// bands and limits are from ERC/REC 70-03 and LoRaMac-node RegionEU868 as
// remembered, not checked against either document.
var EU868SubBands = []SubBand{
	{Name: "h1.3", Low: 863000000, High: 865000000, Limit: 0.001},
	{Name: "h1.4", Low: 865000000, High: 868000000, Limit: 0.01},
	{Name: "g1", Low: 868000000, High: 868600000, Limit: 0.01},
	{Name: "g2", Low: 868700000, High: 869200000, Limit: 0.001},
	{Name: "g3", Low: 869400000, High: 869650000, Limit: 0.10},
	{Name: "g4", Low: 869700000, High: 870000000, Limit: 0.01},
}

// DutyCycle configures enforcement.
type DutyCycle struct {
	Mode DutyCycleMode
	// Downlinks also enforces the limits on downlinks (gateways). Off by
	// default: in LoRaWAN the network server, not the gateway, schedules
	// downlinks around the gateway's duty cycle.
	Downlinks bool
	// Bands overrides EU868SubBands.
	Bands []SubBand
}

func (dc DutyCycle) band(freq uint32) (SubBand, bool) {
	bands := dc.Bands
	if bands == nil {
		bands = EU868SubBands
	}
	for _, b := range bands {
		if freq >= b.Low && freq < b.High {
			return b, true
		}
	}
	return SubBand{}, false
}

// DutyCycleError is returned by Transmit in DutyCycleRefuse mode.
type DutyCycleError struct {
	Sender string
	Band   string
	Wait   time.Duration // until the sub-band is free for this transmitter
}

func (e *DutyCycleError) Error() string {
	return fmt.Sprintf("radio: %s: duty cycle: sub-band %s busy for another %s", e.Sender, e.Band, e.Wait)
}

type dcKey struct{ sender, band string }

// SetDutyCycle sets the duty-cycle policy.
func (a *Air) SetDutyCycle(dc DutyCycle) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dc = dc
}

// DutyCyclePolicy returns the duty-cycle policy.
func (a *Air) DutyCyclePolicy() DutyCycle {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dc
}

// DutyCycleWait returns how long sender must still wait before it may
// transmit on freq (0: now), whatever the enforcement mode.
func (a *Air) DutyCycleWait(sender string, freq uint32) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.dc.band(freq)
	if !ok {
		return 0
	}
	return max(a.offUntil[dcKey{sender, b.Name}]-a.now(), 0)
}

// now is the duty-cycle timeline.
func (a *Air) now() time.Duration {
	if a.clock.Mode() == timing.Realistic {
		return time.Since(a.start)
	}
	return a.clock.Modeled()
}

// admit applies the policy to f before it is transmitted.
func (a *Air) admit(ctx context.Context, f *Frame) error {
	a.mu.Lock()
	dc := a.dc
	b, ok := dc.band(f.Frequency)
	if dc.Mode == DutyCycleOff || !ok || (!f.Uplink && !dc.Downlinks) {
		a.mu.Unlock()
		return nil
	}
	wait := a.offUntil[dcKey{f.Sender, b.Name}] - a.now()
	a.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if dc.Mode == DutyCycleRefuse {
		return &DutyCycleError{Sender: f.Sender, Band: b.Name, Wait: wait}
	}
	if err := a.clock.Spend(ctx, wait); err != nil {
		return fmt.Errorf("radio: duty-cycle wait: %w", err)
	}
	f.DutyCycleDelay = wait
	return nil
}

// accountLocked starts the off-time after f. Callers hold a.mu.
func (a *Air) accountLocked(f Frame) {
	b, ok := a.dc.band(f.Frequency)
	if !ok {
		return
	}
	off := time.Duration(float64(f.Airtime) * (1/b.Limit - 1))
	a.offUntil[dcKey{f.Sender, b.Name}] = a.now() + off
}
