package stm32wl5

import (
	"context"
	"time"

	"github.com/tap2join/tap2join/emulators/radio"
)

// Receive windows on realistic time. A class-A device opens RX1 at the end
// of its uplink + RECEIVE_DELAY1 (JOIN_ACCEPT_DELAY1 for a JoinRequest) and
// RX2 a second later (LoRaWAN 1.0.4 §3.3); its radio listens for a preamble
// for a few symbols only, so a downlink the gateway sends too early or too
// late is not heard — a wrong RX1 delay on either side shows as lost
// downlinks, as on air. The gateway stamps each downlink with the instant
// it was scheduled for (emulators/gateway), so the verdict does not depend
// on goroutine wake-up jitter.

// LoRaMac-node's receive-window parameters (RegionCommonComputeRxWindowParameters,
// src/mac/region/RegionCommon.c; the defaults MinRxSymbols 6,
// SystemMaxRxError 10 ms and a 1 ms radio wake-up are UNCONFIRMED for
// STM32CubeWL's AT slave).
const (
	minRxSymbols  = 6
	maxRxErrorUS  = 10000
	radioWakeUpUS = 1000
	preambleSyms  = 8 // LoRaWAN downlink preamble (RP002 §2 / TS001 §4)
	// syncSyms is how much of the preamble the receiver must catch to lock
	// on (UNCONFIRMED: SX126x needs about 4 preamble symbols).
	syncSyms = 4
)

// rxWindow is one receive window: when it opens (before LoRaMac-node's
// window offset), where and at which spreading factor it listens.
type rxWindow struct {
	slot int
	open time.Time
	freq uint32
	sf   int
}

// listen returns when the receiver is on and for how long it looks for a
// preamble: RxWindowDelay = delay + WindowOffset, timeout in symbols
// (RegionCommonComputeRxWindowParameters, 125 kHz).
func (w rxWindow) listen() (on time.Time, timeout time.Duration, tSym time.Duration) {
	ts := int64(1<<w.sf) * 1_000_000 / (eu868BandwidthKHz * 1000) // µs
	symbols := max(ceilDiv((2*minRxSymbols-8)*ts+2*maxRxErrorUS, ts), minRxSymbols)
	offsetMS := ceilDiv(4*ts-ceilDiv(symbols*ts, 2)-radioWakeUpUS, 1000)
	tSym = time.Duration(ts) * time.Microsecond
	return w.open.Add(time.Duration(offsetMS) * time.Millisecond), time.Duration(symbols) * tSym, tSym
}

// hears says whether a downlink whose preamble starts at start is detected:
// enough of its preamble falls inside the listening period.
func (w rxWindow) hears(start time.Time) bool {
	on, timeout, tSym := w.listen()
	earliest := on.Add(-time.Duration(preambleSyms-syncSyms) * tSym)
	latest := on.Add(timeout - syncSyms*tSym)
	return !start.Before(earliest) && !start.After(latest)
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return a / b
	}
	return (a + b - 1) / b
}

// rxWindowsTimed is rxWindows on realistic time: both windows are judged
// by the downlinks' air times. It returns once a valid frame is handled,
// the gateway announced the end of its answer (radio.Air.EndReply), or the
// last frame RX2 could hear would have been received.
func (b *MCU) rxWindowsTimed(ctx context.Context, down <-chan radio.Frame, up radio.Frame, d1, d2 time.Duration, freq uint32, sf int,
	ram ramSettings, handle rxHandler) (bool, error) {
	end := up.Time.Add(up.Airtime)
	wins := []rxWindow{
		{slot: 1, open: end.Add(d1), freq: freq, sf: sf},
		{slot: 2, open: end.Add(d2), freq: ram.rx2Freq, sf: sfForDR(ram.rx2DR)},
	}
	if err := b.cfg.Clock.Spend(ctx, d1); err != nil {
		return false, err
	}
	// The latest frame RX2 hears starts at its latest detectable instant
	// and is delivered after its airtime (a 64-byte frame bounds the class-A
	// answers modelled here: UNCONFIRMED for larger ones).
	on, timeout, _ := wins[1].listen()
	longest, _ := radio.Airtime(radio.Frame{SF: wins[1].sf, Bandwidth: eu868BandwidthKHz, PHYPayload: make([]byte, 64)})
	t := time.NewTimer(time.Until(on.Add(timeout + longest)))
	defer t.Stop()
	rx1Closed := false
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, nil
		case f, ok := <-down:
			if !ok {
				return false, nil
			}
			if f.EndOfReply {
				if f.ReplyTo == up.Seq {
					return false, nil // every frame of the answer was delivered before this notice
				}
				continue
			}
			if f.ReplyTo != 0 && f.ReplyTo != up.Seq {
				continue // another uplink's answer
			}
			for _, w := range wins {
				if (w.slot == 1 && rx1Closed) || f.Frequency != w.freq || f.SF != w.sf || !w.hears(f.Time) {
					continue
				}
				valid, closeWindow, err := handle(f, w.slot)
				if err != nil || valid {
					return valid, err
				}
				if w.slot == 1 && closeWindow {
					rx1Closed = true
				}
				break
			}
		}
	}
}
