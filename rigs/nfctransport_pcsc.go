//go:build cgo && !nopcsc

package rigs

import (
	"context"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

// pcscTransport puts an emulated board's tag into a vpcd reader as a virtual
// card (emulators/vpcd), taps it, and returns the rigs/nfc/pcsc transport to
// that reader — the same driver path as a USB reader. The card is lifted at
// Close (before pcscd stops).
func (r *Rig) pcscTransport(ctx context.Context, bs BoardSpec, tag *st25dv.Tag) (nfc.Transport, error) {
	if !bs.Emulated {
		return realPCSC(ctx, bs)
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := r.startPCSCD(startCtx)
	if err != nil {
		return nil, err
	}
	slot, err := st.slot(bs.NFC.Reader)
	if err != nil {
		return nil, err
	}
	emu := vpcd.ProfileTransparent
	if bs.NFC.Profile == string(pcsc.ACR1552) {
		emu = vpcd.ProfileACR1552
	}
	tr, err := pcsc.Open(pcsc.Config{Reader: st.daemon.ReaderName(slot), Profile: pcsc.Profile(bs.NFC.Profile)})
	if err != nil {
		return nil, err
	}
	card := vpcd.NewCard(tag, vpcd.WithProfile(emu))
	w := tr.Watch(startCtx)
	if err := card.Insert(startCtx, st.daemon.VPCDAddr(slot)); err != nil {
		_ = tr.Close()
		return nil, fmt.Errorf("nfc.transport pcsc: %w", err)
	}
	r.closers = append(r.closers, card.Remove)
	// The board is ready once pcscd reports the card (its next presence poll).
	for p := range w {
		if p.Err != nil {
			_ = tr.Close()
			return nil, p.Err
		}
		if p.Present {
			return tr, nil
		}
	}
	_ = tr.Close()
	return nil, fmt.Errorf("nfc.transport pcsc: %s did not report the card: %w", tr.Reader(), startCtx.Err())
}

// realPCSC opens a bench's reader and waits until it sees the board's tag:
// on a bench the tag lies in the reader's field for the whole run.
func realPCSC(ctx context.Context, bs BoardSpec) (nfc.Transport, error) {
	tr, err := pcsc.Open(pcsc.Config{Reader: bs.NFC.Reader, Profile: pcsc.Profile(bs.NFC.Profile)})
	if err != nil {
		return nil, fmt.Errorf("nfc.transport pcsc: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for p := range tr.Watch(wctx) {
		if p.Err != nil {
			_ = tr.Close()
			return nil, fmt.Errorf("nfc.transport pcsc: %w", p.Err)
		}
		if p.Present {
			return tr, nil
		}
	}
	_ = tr.Close()
	return nil, fmt.Errorf("nfc.transport pcsc: no tag in the field of %q within 10 s: lay the board's antenna on the reader (%w)", bs.NFC.Reader, wctx.Err())
}
