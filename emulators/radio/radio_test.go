package radio

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

// V10 in reference/lorawan-chirpstack.md §1.9: 13 bytes, SF12BW125, CR4/5,
// preamble 8, header on, LDRO off → 1.155072 s. Our air switches LDRO on for
// SF12/125 kHz, so pin the LDRO-on JoinRequest figure from §2.4 instead
// (23 B SF12 = 1.482752 s) and SF7 (61.696 ms).
func TestAirtimeVectors(t *testing.T) {
	for _, tc := range []struct {
		n, sf int
		want  time.Duration
	}{
		{23, 12, 1482752 * time.Microsecond},
		{23, 7, 61696 * time.Microsecond},
		{33, 12, 1810432 * time.Microsecond},
		{17, 12, 1318912 * time.Microsecond},
	} {
		got, err := Airtime(Frame{SF: tc.sf, Bandwidth: 125, PHYPayload: make([]byte, tc.n)})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("airtime(%d B, SF%d) = %s, want %s", tc.n, tc.sf, got, tc.want)
		}
	}
}

func TestTransmitDeliversByDirectionAndAccountsTime(t *testing.T) {
	clock := timing.NewClock(timing.Instant)
	air := NewAir(clock)
	up, stopUp := air.Listen(true)
	defer stopUp()
	down, stopDown := air.Listen(false)
	defer stopDown()

	f := Frame{Uplink: true, Frequency: 868100000, SF: 12, Bandwidth: 125, PHYPayload: make([]byte, 23), Sender: "dev"}
	if err := air.Transmit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	got := <-up
	if got.Airtime != 1482752*time.Microsecond || got.RSSI != DefaultRSSI || got.SNR != DefaultSNR || got.CodeRate != "4/5" {
		t.Errorf("delivered frame %+v", got)
	}
	select {
	case f := <-down:
		t.Fatalf("downlink listener got an uplink: %v", f)
	default:
	}
	if clock.Modeled() != got.Airtime {
		t.Errorf("clock modelled %s, want %s", clock.Modeled(), got.Airtime)
	}
	air.SetPathLoss(-110, -5)
	if err := air.Transmit(context.Background(), Frame{Frequency: 869525000, SF: 12, Bandwidth: 125, PHYPayload: []byte{0x20}}); err != nil {
		t.Fatal(err)
	}
	if d := <-down; d.RSSI != -110 || d.SNR != -5 || d.Uplink {
		t.Errorf("downlink %+v", d)
	}
	caps := air.Captured()
	if len(caps) != 2 || !strings.Contains(caps[0].String(), "up") || !strings.Contains(caps[0].String(), "868.100MHz SF12BW125") {
		t.Errorf("captured %v", caps)
	}
}

func TestTransmitRejectsBadModulation(t *testing.T) {
	air := NewAir(nil)
	if err := air.Transmit(context.Background(), Frame{SF: 13, Bandwidth: 125}); err == nil {
		t.Error("SF13 accepted")
	}
	if err := air.Transmit(context.Background(), Frame{SF: 7, Bandwidth: 125, CodeRate: "4/9"}); err == nil {
		t.Error("CR 4/9 accepted")
	}
}

func TestStopIsIdempotent(t *testing.T) {
	air := NewAir(nil)
	ch, stop := air.Listen(true)
	stop()
	stop()
	if _, ok := <-ch; ok {
		t.Error("channel open after stop")
	}
	if err := air.Transmit(context.Background(), Frame{Uplink: true, SF: 7, Bandwidth: 125}); err != nil {
		t.Fatal(err)
	}
}
