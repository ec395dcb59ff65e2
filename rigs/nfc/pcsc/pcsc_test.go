package pcsc_test

// These tests run the ST25DV driver through the real PC/SC stack: pcscd with
// vpcd (fixtures/pcscd), the tag twin in the emulated reader (emulators/vpcd)
// and this transport over ebfe/scard. Importing emulators/ is allowed in
// _test.go files only.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

var uidMSB = [8]byte{0xE0, 0x02, 0x51, 0x00, 0x00, 0x00, 0x00, 0x01}

// waitPresence reads w until the wanted state (no sleeps: pcscd's own poll
// decides when it comes).
func waitPresence(t testing.TB, w <-chan pcsc.Presence, present bool) pcsc.Presence {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case p, ok := <-w:
			if !ok {
				t.Fatal("watch ended")
			}
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			if p.Present == present {
				return p
			}
		case <-timeout.C:
			t.Fatalf("no presence=%v within 10 s", present)
		}
	}
}

type bench struct {
	d    *pcscd.Daemon
	tag  *st25dv.Tag
	card *vpcd.Card
	tr   *pcsc.Transport
}

func setup(t testing.TB, emu vpcd.Profile, prof pcsc.Profile) *bench {
	t.Helper()
	d := pcscd.Require(t)
	b := &bench{d: d}
	b.tag = st25dv.New(st25dv.Config{})
	b.tag.SetVCC(true)
	b.card = vpcd.NewCard(b.tag, vpcd.WithProfile(emu))
	tr, err := pcsc.Open(pcsc.Config{Reader: d.ReaderName(0), Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	b.tr = tr
	t.Cleanup(func() {
		_ = b.card.Remove()
		_ = tr.Close()
	})
	b.tap(t)
	return b
}

// presenceWait bounds a wait for pcscd's next presence poll (400 ms apart).
const presenceWait = 10 * time.Second

// tap puts the card into the reader and returns once pcscd reports it
// powered up, so an APDU may follow at once. A card removed just before may
// not be seen gone yet (or, with vpcd, never: see pcsc.WaitPresent), so the
// reader must be reported empty before the card goes in.
func (b *bench) tap(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
	defer cancel()
	if err := b.tr.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.card.Insert(ctx, b.d.VPCDAddr(0)); err != nil {
		t.Fatal(err)
	}
	atr, err := b.tr.WaitPresent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(atr, vpcd.ATR(0)) {
		t.Fatalf("ATR % X", atr)
	}
}

// lift takes the card out and returns once pcscd reports the reader empty.
func (b *bench) lift(t testing.TB) {
	t.Helper()
	if err := b.card.Remove(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
	defer cancel()
	if err := b.tr.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDriverOverPCSC(t *testing.T) {
	for _, tc := range []struct {
		name string
		emu  vpcd.Profile
		prof pcsc.Profile
	}{
		{"transparent", vpcd.ProfileTransparent, ""}, // chosen from "Virtual PCD 00 00"
		{"acr1552", vpcd.ProfileACR1552, pcsc.ACR1552},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			b := setup(t, tc.emu, tc.prof)
			want := pcsc.Transparent
			if tc.prof != "" {
				want = tc.prof
			}
			if b.tr.Profile() != want {
				t.Fatalf("profile %s", b.tr.Profile())
			}
			uid, err := b.tr.UID(ctx)
			if err != nil || uid != uidMSB {
				t.Fatalf("UID % X, %v", uid, err)
			}
			d := nfc.NewST25DV(b.tr)
			si, err := d.SystemInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if si.UID != uidMSB || si.Blocks != 2048 || si.BlockSize != 4 || si.ICRef != 0x51 {
				t.Fatalf("system info %+v", si)
			}
			data := bytes.Repeat([]byte{0xC3, 0x3C, 0x5A, 0xA5}, 10)
			if err := d.WriteBlocks(ctx, 0xFB, data); err != nil { // straddles block FFh
				t.Fatal(err)
			}
			got, err := d.ReadBlocks(ctx, 0xFB, 10)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back % X, %v", got, err)
			}
			// The tag's own error comes back typed through the reader.
			if _, err := d.ReadBlocks(ctx, 2048, 1); !errors.Is(err, &nfc.ISOError{Code: nfc.CodeBlockNA}) {
				t.Fatalf("block 2048: %v", err)
			}
			if err := d.PresentPassword(ctx, 0, [8]byte{1}); !errors.Is(err, &nfc.ISOError{Code: nfc.CodeUnknown}) {
				t.Fatalf("wrong password: %v", err)
			}
			// A 256-byte mailbox message: an extended APDU through pcscd.
			if err := d.PresentPassword(ctx, 0, [8]byte{}); err != nil {
				t.Fatal(err)
			}
			if err := d.WriteConfig(ctx, 0x0D, 0x01); err != nil {
				t.Fatal(err)
			}
			if err := d.SetMailbox(ctx, true); err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, 256)
			for i := range msg {
				msg[i] = byte(i)
			}
			if err := d.WriteMessage(ctx, msg); err != nil {
				t.Fatal(err)
			}
			st, err := d.MailboxStatus(ctx)
			if err != nil || !st.RFPut {
				t.Fatalf("mailbox %v, %v", st, err)
			}

			// Lift: the tag is gone for the driver, as on a phone.
			b.lift(t)
			if _, err := d.ReadBlocks(ctx, 0, 1); !errors.Is(err, nfc.ErrNoResponse) {
				t.Fatalf("after lift: %v", err)
			}
			// Re-tap: the transport reconnects by itself.
			b.tap(t)
			if got, err := d.ReadBlocks(ctx, 0xFB, 1); err != nil || !bytes.Equal(got, data[:4]) {
				t.Fatalf("after re-tap % X, %v", got, err)
			}
		})
	}
}

// TestReinsertThenTransmit takes the card out and puts it straight back, 30
// times, and sends APDUs right after each insertion — what
// BenchmarkAPDURoundTrip's sub-benchmarks did on a pcscd started by hand
// (the second one's Connect failed with "No smart card inserted"). No
// sleeps: tap waits for pcscd's reader states; every other round the first
// APDU goes through a Transaction, whose card handle is the stale one from
// before the swap.
func TestReinsertThenTransmit(t *testing.T) {
	ctx := t.Context()
	b := setup(t, vpcd.ProfileTransparent, "")
	d := nfc.NewST25DV(b.tr)
	for i := range 30 {
		if err := b.card.Remove(); err != nil {
			t.Fatal(err)
		}
		b.tap(t)
		var uid [8]byte
		var err error
		if i%2 == 0 {
			uid, err = b.tr.UID(ctx)
		} else {
			err = b.tr.Transaction(ctx, func(ctx context.Context) error {
				uid, err = b.tr.UID(ctx)
				return err
			})
		}
		if err != nil || uid != uidMSB {
			t.Fatalf("round %d: UID % X, %v", i, uid, err)
		}
		if _, err := d.ReadBlocks(ctx, 0, 1); err != nil {
			t.Fatalf("round %d: read block 0: %v", i, err)
		}
	}
}

// Watch reports the reader's state first, then each lift and tap.
func TestWatch(t *testing.T) {
	b := setup(t, vpcd.ProfileTransparent, "")
	ctx, cancel := context.WithCancel(t.Context())
	w := b.tr.Watch(ctx)
	if p := waitPresence(t, w, true); !bytes.Equal(p.ATR, vpcd.ATR(0)) || p.Reader != b.d.ReaderName(0) {
		t.Fatalf("first report %+v", p)
	}
	b.lift(t)
	waitPresence(t, w, false)
	b.tap(t)
	waitPresence(t, w, true)
	cancel()
	for p := range w { // the channel closes once ctx ends
		if p.Err != nil {
			t.Fatalf("after cancel: %v", p.Err)
		}
	}
}

func TestTransactionAndErrors(t *testing.T) {
	ctx := t.Context()
	b := setup(t, vpcd.ProfileTransparent, pcsc.Transparent)
	d := nfc.NewST25DV(b.tr)
	err := b.tr.Transaction(ctx, func(ctx context.Context) error {
		if _, err := d.ReadBlocks(ctx, 0, 4); err != nil {
			return err
		}
		_, err := d.MailboxStatus(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The emulated reader without FF FB: the acr1552 profile gets 6D 00.
	tr2, err := pcsc.Open(pcsc.Config{Reader: b.d.ReaderName(0), Profile: pcsc.ACR1552})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	_, err = tr2.Transceive(ctx, []byte{0x02, 0x20, 0x00})
	var se *pcsc.StatusError
	if !errors.As(err, &se) || se.SW != 0x6D00 || !errors.Is(err, &pcsc.StatusError{SW: 0x6D00}) {
		t.Fatalf("FF FB on a transparent-only reader: %v", err)
	}
	// Empty slot and unknown reader.
	tr3, err := pcsc.Open(pcsc.Config{Reader: b.d.ReaderName(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr3.Close()
	if _, err := tr3.Transceive(ctx, []byte{0x26, 0x01, 0x00}); !errors.Is(err, nfc.ErrNoResponse) || !errors.Is(err, scard.ErrNoSmartcard) {
		t.Fatalf("empty slot: %v", err)
	}
	// Waiting for a card that never comes ends with ctx, naming the state.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := tr3.WaitPresent(wctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "EMPTY") {
		t.Fatalf("WaitPresent on an empty slot: %v", err)
	}
	if err := tr3.WaitEmpty(ctx); err != nil {
		t.Fatalf("WaitEmpty on an empty slot: %v", err)
	}
	if _, err := pcsc.Open(pcsc.Config{Reader: "ACS ACR1552 1S CL Reader PICC 00 00"}); !errors.Is(err, scard.ErrUnknownReader) {
		t.Fatalf("unknown reader: %v", err)
	}
	if _, err := b.tr.Transceive(ctx, []byte{0x02}); !errors.Is(err, pcsc.ErrUnsupportedFrame) {
		t.Fatalf("1-byte frame: %v", err)
	}
	_ = b.tr.Close()
	if _, err := b.tr.Transceive(ctx, []byte{0x02, 0x2B}); !errors.Is(err, pcsc.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func TestProfileFor(t *testing.T) {
	for name, want := range map[string]pcsc.Profile{
		"Virtual PCD 00 00":                               pcsc.Transparent,
		"ACS ACR1552 1S CL Reader PICC 00 00":             pcsc.ACR1552,
		"HID Global OMNIKEY 5022 Smart Card Reader 00 00": pcsc.Transparent,
	} {
		if got := pcsc.ProfileFor(name); got != want {
			t.Errorf("ProfileFor(%q) = %s, want %s", name, got, want)
		}
	}
	if pcsc.IsISO15693ATR(vpcd.ATR(0)) != true || pcsc.IsISO15693ATR([]byte{0x3B, 0x00}) {
		t.Error("IsISO15693ATR")
	}
}

// The reader's RF field off and on (Part 3 Manage Session 83 00 / 84 00):
// with the field off the tag answers nothing (nfc.ErrNoResponse); on again,
// it answers.
func TestSetField(t *testing.T) {
	ctx := t.Context()
	b := setup(t, vpcd.ProfileTransparent, "")
	d := nfc.NewST25DV(b.tr)
	if _, err := d.SystemInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.tr.SetField(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SystemInfo(ctx); !errors.Is(err, nfc.ErrNoResponse) {
		t.Fatalf("field off: %v, want ErrNoResponse", err)
	}
	if err := b.tr.SetField(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SystemInfo(ctx); err != nil {
		t.Fatalf("field on again: %v", err)
	}
}
