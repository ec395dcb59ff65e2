package stm32wl5

import (
	"testing"
	"time"
)

// RegionCommonComputeRxWindowParameters (LoRaMac-node RegionCommon.c) with
// MinRxSymbols 6, 10 ms max RX error, 1 ms wake-up, at 125 kHz:
//   - SF12: Tsym 32.768 ms, 6 symbols, offset +32 ms;
//   - SF7: Tsym 1.024 ms, 24 symbols, offset −9 ms.
//
// A downlink is heard when at least 4 of its 8 preamble symbols fall in the
// listening period: SF12 from open −99.072 ms to open +97.536 ms, SF7 from
// open −13.096 ms to open +11.480 ms.
func TestReceiveWindowDetection(t *testing.T) {
	open := time.Date(2026, 12, 6, 12, 0, 5, 0, time.UTC)
	for _, c := range []struct {
		sf       int
		on       time.Duration
		timeout  time.Duration
		from, to time.Duration
	}{
		{12, 32 * time.Millisecond, 6 * 32768 * time.Microsecond, -99072 * time.Microsecond, 97536 * time.Microsecond},
		{7, -9 * time.Millisecond, 24 * 1024 * time.Microsecond, -13096 * time.Microsecond, 11480 * time.Microsecond},
	} {
		w := rxWindow{open: open, sf: c.sf}
		on, timeout, _ := w.listen()
		if on.Sub(open) != c.on || timeout != c.timeout {
			t.Errorf("SF%d: receiver on at %v for %v, want %v for %v", c.sf, on.Sub(open), timeout, c.on, c.timeout)
		}
		for _, p := range []struct {
			at   time.Duration
			want bool
		}{
			{0, true}, {c.from, true}, {c.to, true},
			{c.from - time.Microsecond, false}, {c.to + time.Microsecond, false},
			{time.Second, false}, {-time.Second, false},
		} {
			if got := w.hears(open.Add(p.at)); got != p.want {
				t.Errorf("SF%d: a downlink at open%+v heard = %v, want %v", c.sf, p.at, got, p.want)
			}
		}
	}
}
