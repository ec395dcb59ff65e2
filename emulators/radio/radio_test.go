package radio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

// brocaar/lorawan airtime/airtime_test.go: 13 bytes, SF12BW125, CR4/5,
// preamble 8, header on, LDRO off → 1.155072 s. Our air switches LDRO on for
// SF12/125 kHz, so pin the LDRO-on JoinRequest figure instead, computed with
// brocaar's airtime.CalculateLoRaAirtime (Semtech's LoRa design-guide
// formula): 23 B SF12 = 1.482752 s, and SF7 (61.696 ms).
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

func TestDutyCycleG1RefuseAndDelay(t *testing.T) {
	ctx := context.Background()
	f := Frame{Uplink: true, Frequency: 868100000, SF: 12, Bandwidth: 125, PHYPayload: make([]byte, 23), Sender: "dev"}
	// 23 B at SF12: 1.482752 s on air → 1 % in g1 → 146.792448 s off.
	const airtime = 1482752 * time.Microsecond
	wantOff := time.Duration(float64(airtime) * 99)

	clock := timing.NewClock(timing.Instant)
	air := NewAir(clock)
	air.SetDutyCycle(DutyCycle{Mode: DutyCycleRefuse})
	if err := air.Transmit(ctx, f); err != nil {
		t.Fatal(err)
	}
	if w := air.DutyCycleWait("dev", 868500000); w != wantOff {
		t.Fatalf("wait after one frame = %s, want %s (same sub-band g1, other channel)", w, wantOff)
	}
	if w := air.DutyCycleWait("other", 868100000); w != 0 {
		t.Fatalf("another transmitter waits %s", w)
	}
	if w := air.DutyCycleWait("dev", 869525000); w != 0 {
		t.Fatalf("g3 waits %s", w)
	}
	err := air.Transmit(ctx, f)
	var dce *DutyCycleError
	if !errors.As(err, &dce) || dce.Band != "g1" || dce.Wait != wantOff {
		t.Fatalf("second frame: %v", err)
	}
	// Time passes (modelled): after the off-time the band is free.
	_ = clock.Spend(ctx, wantOff)
	if err := air.Transmit(ctx, f); err != nil {
		t.Fatalf("after the off-time: %v", err)
	}

	// Delay mode: the frame goes out, held back by the remaining off-time.
	clock2 := timing.NewClock(timing.Instant)
	air2 := NewAir(clock2)
	air2.SetDutyCycle(DutyCycle{Mode: DutyCycleDelay})
	_ = air2.Transmit(ctx, f)
	_ = clock2.Spend(ctx, 10*time.Second)
	before := clock2.Modeled()
	if err := air2.Transmit(ctx, f); err != nil {
		t.Fatal(err)
	}
	got := air2.Captured()[1]
	if got.DutyCycleDelay != wantOff-10*time.Second {
		t.Fatalf("delay %s, want %s", got.DutyCycleDelay, wantOff-10*time.Second)
	}
	if clock2.Modeled()-before != got.DutyCycleDelay+airtime {
		t.Fatalf("modelled time advanced by %s", clock2.Modeled()-before)
	}
	// Downlinks are not limited unless asked.
	if err := air.Transmit(ctx, Frame{Frequency: 868100000, SF: 12, Bandwidth: 125, PHYPayload: make([]byte, 17), Sender: "dev"}); err != nil {
		t.Fatalf("downlink: %v", err)
	}
}

func TestCaptureFileJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "air.jsonl")
	air := NewAir(nil)
	stop, err := air.CaptureFile(path, CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = air.Transmit(context.Background(), Frame{Uplink: true, Frequency: 868300000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40, 1, 2}, Sender: "d", RSSI: -71, SNR: 7.5})
	_ = air.Transmit(context.Background(), Frame{Frequency: 869525000, SF: 12, Bandwidth: 125, PHYPayload: []byte{0x60}, Sender: "g"})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var r CaptureRecord
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Direction != "up" || r.Frequency != 868300000 || r.SF != 7 || r.Bandwidth != 125 || r.RSSI != -71 || r.SNR != 7.5 ||
		r.PHYPayload != "400102" || r.AirtimeMS != 30.976 || r.Time == "" {
		t.Fatalf("record %+v", r)
	}
	if !strings.Contains(lines[1], `"direction":"down"`) {
		t.Fatalf("line 2 %s", lines[1])
	}
	if strings.Contains(lines[0], `"spec"`) {
		t.Errorf("a capture for no spec names one: %s", lines[0])
	}
	// A second capture appends (one frames.jsonl per run), each record
	// naming the capture's spec.
	stop, err = air.CaptureFile(path, CaptureOptions{Spec: "lorawan joins"})
	if err != nil {
		t.Fatal(err)
	}
	_ = air.Transmit(context.Background(), Frame{Uplink: true, Frequency: 868500000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x80}, Sender: "d"})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	if n := strings.Count(string(raw), "\n"); n != 3 {
		t.Fatalf("%d lines after appending", n)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(raw)), `,"spec":"lorawan joins"}`) {
		t.Errorf("the appended record does not name its spec: %s", raw)
	}
}

// Frames are numbered, and EndReply reaches downlink listeners only, as a
// notice naming the uplink it closes, without going on the air.
func TestSeqAndEndReply(t *testing.T) {
	air := NewAir(nil)
	down, stop := air.Listen(false)
	defer stop()
	up, stopUp := air.Listen(true)
	defer stopUp()
	f, err := air.Send(context.Background(), Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 1 || (<-up).Seq != 1 {
		t.Fatalf("first frame Seq = %d", f.Seq)
	}
	air.EndReply(f.Seq)
	n := <-down
	if !n.EndOfReply || n.ReplyTo != 1 || n.PHYPayload != nil {
		t.Fatalf("notice %+v", n)
	}
	if len(air.Captured()) != 1 {
		t.Fatalf("captured %d frames, want 1 (notices are not frames)", len(air.Captured()))
	}
	select {
	case u := <-up:
		t.Fatalf("uplink listener got %+v", u)
	default:
	}
}

// Two gateways heard the uplink (two networks, say): the device learns that
// no answer is coming only when both have said so.
func TestEndReplyWaitsForEveryGateway(t *testing.T) {
	air := NewAir(nil)
	ctx := context.Background()
	g1, stop1 := air.ListenGateway()
	defer stop1()
	g2, stop2 := air.ListenGateway()
	defer stop2()
	down, stopDown := air.Listen(false)
	defer stopDown()
	up, err := air.Send(ctx, Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40}})
	if err != nil {
		t.Fatal(err)
	}
	air.Bind(down, up.Seq)
	<-g1
	<-g2
	air.EndReply(up.Seq)
	select {
	case f := <-down:
		t.Fatalf("notice after one of two gateways: %+v", f)
	default:
	}
	air.EndReply(up.Seq)
	select {
	case f := <-down:
		if !f.EndOfReply || f.ReplyTo != up.Seq {
			t.Fatalf("got %+v, want the end of the reply to %d", f, up.Seq)
		}
	default:
		t.Fatal("no notice after both gateways ended")
	}
}

// A transmitter backing off its power lowers what the receiver measures by
// as many dB (the air's default link otherwise).
func TestPowerBackoffLowersRSSIAndSNR(t *testing.T) {
	air := NewAir(nil)
	ups, stop := air.Listen(true)
	defer stop()
	for _, backoff := range []float64{0, 4} {
		if _, err := air.Send(context.Background(), Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40}, PowerBackoff: backoff}); err != nil {
			t.Fatal(err)
		}
		f := <-ups
		if f.RSSI != DefaultRSSI-backoff || f.SNR != DefaultSNR-backoff {
			t.Fatalf("backoff %v dB: RSSI %v SNR %v, want %v %v", backoff, f.RSSI, f.SNR, DefaultRSSI-backoff, DefaultSNR-backoff)
		}
	}
}

// Receivers bound to an uplink (SendListen) hear only the answers to it
// (and downlinks of unknown origin); an unbound receiver hears every
// downlink; a stopped receiver hears nothing more and its channel is
// closed; Bind(rx, 0) makes a bound receiver hear everything again.
func TestBoundReceiversHearTheirOwnAnswers(t *testing.T) {
	air := NewAir(nil)
	ctx := context.Background()
	gw, stopGW := air.ListenGateway()
	defer stopGW()
	uplink := Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40}}
	rxFree, stopFree := air.Listen(false)
	defer stopFree()
	upA, rxA, stopA, err := air.SendListen(ctx, uplink)
	defer stopA()
	if err != nil {
		t.Fatal(err)
	}
	upB, rxB, stopB, err := air.SendListen(ctx, uplink)
	if err != nil {
		t.Fatal(err)
	}
	<-gw
	<-gw
	answer := func(replyTo uint64, b byte) {
		t.Helper()
		if _, err := air.Send(ctx, Frame{Frequency: 869525000, SF: 9, Bandwidth: 125, PHYPayload: []byte{0x20, b}, ReplyTo: replyTo}); err != nil {
			t.Fatal(err)
		}
	}
	got := func(rx <-chan Frame) []byte {
		var out []byte
		for {
			select {
			case f, ok := <-rx:
				if !ok {
					return append(out, 0xFF)
				}
				if f.EndOfReply {
					out = append(out, 0xE0|byte(f.ReplyTo))
				} else {
					out = append(out, f.PHYPayload[1])
				}
			default:
				return out
			}
		}
	}
	answer(upA.Seq, 0xA)
	answer(upB.Seq, 0xB)
	answer(0, 0x0)
	air.EndReply(upA.Seq)
	if g := got(rxA); !bytes.Equal(g, []byte{0xA, 0x0, 0xE0 | byte(upA.Seq)}) {
		t.Errorf("receiver bound to A heard % X", g)
	}
	if g := got(rxB); !bytes.Equal(g, []byte{0xB, 0x0}) {
		t.Errorf("receiver bound to B heard % X", g)
	}
	if g := got(rxFree); !bytes.Equal(g, []byte{0xA, 0xB, 0x0, 0xE0 | byte(upA.Seq)}) {
		t.Errorf("unbound receiver heard % X", g)
	}
	stopB()
	answer(upB.Seq, 0xB)
	if g := got(rxB); !bytes.Equal(g, []byte{0xFF}) {
		t.Errorf("stopped receiver: % X, want its channel closed", g)
	}
	air.Bind(rxA, 0) // back to hearing everything
	answer(upB.Seq, 0xC)
	if g := got(rxA); !bytes.Equal(g, []byte{0xC}) {
		t.Errorf("receiver unbound again heard % X", g)
	}
}

// Downlinks of unknown origin (ReplyTo 0: a UDP forwarder's) fill a
// class-A receiver only up to its reserve: however many come while the
// device waits out its RX1 delay, its own answer and the EndReply notice
// still fit.
func TestReplyReceiverKeepsRoomForItsAnswer(t *testing.T) {
	air := NewAir(nil)
	ctx := context.Background()
	gw, stop := air.ListenGateway()
	defer stop()
	up, rx, stopRx, err := air.SendListen(ctx, Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40}})
	defer stopRx()
	if err != nil {
		t.Fatal(err)
	}
	<-gw
	for i := range 3 * replyListenerBuffer {
		if _, err := air.Send(ctx, Frame{Frequency: 869525000, SF: 9, Bandwidth: 125, PHYPayload: []byte{0x20, byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := air.Send(ctx, Frame{Frequency: 869525000, SF: 9, Bandwidth: 125, PHYPayload: []byte{0x20, 0xAA}, ReplyTo: up.Seq}); err != nil {
		t.Fatal(err)
	}
	air.EndReply(up.Seq)
	var others int
	var answer, notice bool
	for len(rx) > 0 {
		f := <-rx
		switch {
		case f.EndOfReply:
			notice = true
		case f.ReplyTo == up.Seq:
			answer = true
		default:
			others++
		}
	}
	if !answer || !notice || others != replyListenerBuffer-replyReserve {
		t.Fatalf("answer %t, notice %t, %d other downlinks (want %d)", answer, notice, others, replyListenerBuffer-replyReserve)
	}
}
