package phone_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
)

var uniqueID = [8]byte{0x00, 0x80, 0xE1, 0x15, 0, 0, 0, 7}

// board brings up a tag twin and a firmware twin on one I2C bus, with no
// network on the air, and returns a phone tapping it.
func board(t *testing.T, wrapped bool, opts phone.Options) *phone.Phone {
	t.Helper()
	p, _ := boardTag(t, wrapped, opts)
	return p
}

// boardTag is board, also returning the phone's tag driver.
func boardTag(t *testing.T, wrapped bool, opts phone.Options) (*phone.Phone, *nfc.ST25DV) {
	t.Helper()
	return boardTagOn(t, timing.NewClock(timing.Instant), wrapped, opts)
}

// boardTagOn is boardTag with the parts' clock.
func boardTagOn(t *testing.T, clock *timing.Clock, wrapped bool, opts phone.Options) (*phone.Phone, *nfc.ST25DV) {
	t.Helper()
	tag := st25dv.New(st25dv.Config{Clock: clock})
	tag.SetVCC(true)
	var wires bus.Bus
	wires.Attach(tag.I2C())
	mcu, err := stm32wl5.New(stm32wl5.Config{
		UniqueID: uniqueID, I2C: &wires, GPO: tag.GPO(), Air: radio.NewAir(clock), Clock: clock,
		Wrapped: wrapped, RXWindowCap: 10 * time.Millisecond, MailboxProtocol: opts.MailboxProtocol,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mcu.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.After(5 * time.Second)
	for booted := false; !booted; {
		select {
		case ev := <-mcu.Events():
			booted = ev.Kind == stm32wl5.Ready
		case <-deadline:
			t.Fatal("board did not boot")
		}
	}
	tag.FieldOn()
	drv := nfc.NewST25DV(nfc.NewDirect(tag))
	return phone.New(phone.NFCTag(drv), nil, opts), drv
}

// A phone lifted after its request but before the answer leaves that answer
// in the mailbox; the device's next request then meets a busy mailbox (Write
// Message → ISO error 0Fh, DS §7.6.31). The phone reads the stale answer out,
// discards it and writes again.
func TestStaleAnswerIsDrained(t *testing.T) {
	p, drv := boardTag(t, false, phone.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := drv.WriteMessage(ctx, provproto.MarshalGetIdentity()); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := drv.MailboxStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.HostPut {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the device never answered the first request")
		case <-time.After(time.Millisecond):
		}
	}
	// What the phone without draining would meet:
	var iso *nfc.ISOError
	if err := drv.WriteMessage(ctx, provproto.MarshalGetIdentity()); !errors.As(err, &iso) || iso.Code != 0x0F {
		t.Fatalf("Write Message over an unread answer = %v, want ISO error 0Fh", err)
	}
	id, err := p.Identity(ctx)
	if err != nil {
		t.Fatalf("identity after a stale answer: %v", err)
	}
	if id.DevEUI != provproto.EUI64(uniqueID) {
		t.Fatalf("identity %+v", id)
	}
	if n := p.StaleAnswers(); n != 1 {
		t.Fatalf("StaleAnswers = %d, want 1", n)
	}
}

// mustIdentity reads the identity over the mailbox.
func mustIdentity(ctx context.Context, t *testing.T, p *phone.Phone) provproto.Identity {
	t.Helper()
	id, err := p.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func issued() provapi.Issued {
	return provapi.Issued{
		JoinEUI: provproto.EUI64{0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0, 0, 1},
		Keys:    provproto.Keys{AppKey: [16]byte{0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C}},
	}
}

func TestIdentityFromNDEFAndMailbox(t *testing.T) {
	p := board(t, false, phone.Options{})
	ctx := context.Background()
	nid, err := p.ReadNDEFIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nid.DevEUI != provproto.EUI64(uniqueID) || nid.State != provproto.StateFactory {
		t.Fatalf("NDEF identity %+v", nid)
	}
	id := mustIdentity(ctx, t, p)
	if id.DevEUI != nid.DevEUI || id.State != provproto.StateFactory {
		t.Fatalf("mailbox identity %+v", id)
	}
	id2 := mustIdentity(ctx, t, p)
	if id2.Nonce == id.Nonce {
		t.Fatal("device nonce reused across IDENTITY messages")
	}
}

func TestWriteKeyClearAndWrapped(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		p := board(t, wrapped, phone.Options{Wrapped: wrapped})
		ctx := context.Background()
		id := mustIdentity(ctx, t, p)
		iss := issued()
		ack, err := p.WriteKey(ctx, id, iss, provproto.RegionEU868)
		if err != nil {
			t.Fatalf("wrapped=%v: %v", wrapped, err)
		}
		if ack.AppKCV != provproto.CheckValue(iss.Keys.AppKey) || ack.JoinEUI != iss.JoinEUI {
			t.Fatalf("ack %+v", ack)
		}
	}
}

func TestReplayedProvisionIsRejected(t *testing.T) {
	p := board(t, false, phone.Options{})
	ctx := context.Background()
	id := mustIdentity(ctx, t, p)
	if _, err := p.WriteKey(ctx, id, issued(), provproto.RegionEU868); err != nil {
		t.Fatal(err)
	}
	// The same nonce again: a replayed (or stale) PROVISION.
	_, err := p.WriteKey(ctx, id, issued(), provproto.RegionEU868)
	if s, ok := provproto.StatusOf(err); !ok || s != provproto.Replay {
		t.Fatalf("replay: %v, want REPLAY", err)
	}
}

func TestWrappedRefusedWhenDeviceCannot(t *testing.T) {
	p := board(t, false, phone.Options{Wrapped: true})
	id, err := p.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.WriteKey(context.Background(), id, issued(), provproto.RegionEU868)
	if err == nil || !strings.Contains(err.Error(), "does not offer it") {
		t.Fatalf("got %v", err)
	}
}

func TestReadLog(t *testing.T) {
	p := board(t, false, phone.Options{})
	log, err := p.ReadLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 {
		t.Fatal("empty device log after boot")
	}
}

// A tag nobody answers on the I2C side: the phone gives up after its reply
// timeout and says so.
func TestNoAnswerTimesOut(t *testing.T) {
	clock := timing.NewClock(timing.Instant)
	tag := st25dv.New(st25dv.Config{Clock: clock, FTM: 0x01})
	tag.SetVCC(true)
	tag.FieldOn()
	drv := nfc.NewST25DV(nfc.NewDirect(tag))
	if err := drv.SetMailbox(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	p := phone.New(phone.NFCTag(drv), nil, phone.Options{ReplyTimeout: 20 * time.Millisecond})
	_, err := p.Identity(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer from the device") {
		t.Fatalf("got %v", err)
	}
}

func TestParseNDEFIdentityRejectsBadPayloads(t *testing.T) {
	if _, err := phone.ParseNDEFIdentity([]byte{1, 2, 3}); err == nil {
		t.Fatal("short payload accepted")
	}
	b := make([]byte, 21)
	b[0] = 2
	if _, err := phone.ParseNDEFIdentity(b); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version 2: %v", err)
	}
}
