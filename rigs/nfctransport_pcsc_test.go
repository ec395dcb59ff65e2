//go:build cgo && !nopcsc

package rigs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/fixtures/require"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

// On nfc.transport pcsc the PhoneHand takes the tag's card out of its vpcd
// reader, not just its field off: pcscd reports the reader empty after Lift
// (a field switched off leaves a card in it, mute or not) and the card back
// after Tap, and the transport reconnects to it.
func TestPCSCPhoneHandRemovesTheCard(t *testing.T) {
	if _, err := pcscd.Check(); err != nil {
		require.Missing(t, require.PCSCD, err)
	}
	rig := upRig(t, loadRigFile(t, "rigs/tag-pcsc.yaml"))
	b := rig.Boards[0]
	hand, err := rigs.BoardCapability[rigs.PhoneHand](b)
	if err != nil {
		t.Fatal(err)
	}
	tr := b.Transport().(*pcsc.Transport)
	inventory := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := tr.Transceive(ctx, []byte{0x26, 0x01, 0x00})
		return err
	}
	// present is what a fresh Watch reports first: the reader's state now.
	present := func() bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		p, ok := <-tr.Watch(ctx)
		if !ok || p.Err != nil {
			t.Fatalf("watch %s: %v", tr.Reader(), p.Err)
		}
		return p.Present
	}
	if err := inventory(); err != nil {
		t.Fatalf("inventory before the lift: %v", err)
	}
	for range 2 { // the second lift finds the reader empty already
		if err := hand.Lift(); err != nil {
			t.Fatalf("lift: %v", err)
		}
		if present() {
			t.Fatalf("%s still reports a card after Lift", tr.Reader())
		}
	}
	if err := inventory(); !errors.Is(err, nfc.ErrNoResponse) {
		t.Fatalf("inventory with the card lifted: %v, want nfc.ErrNoResponse", err)
	}
	for range 2 { // the second tap finds the card in the reader already
		if err := hand.Tap(); err != nil {
			t.Fatalf("tap: %v", err)
		}
		if !present() {
			t.Fatalf("%s reports no card after Tap", tr.Reader())
		}
	}
	if err := inventory(); err != nil {
		t.Fatalf("inventory after the tap (reconnect): %v", err)
	}
}
