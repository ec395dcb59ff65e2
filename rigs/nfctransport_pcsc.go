//go:build cgo && !nopcsc

package rigs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebfe/scard"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

// pcscTransport puts an emulated board's tag into a vpcd reader as a virtual
// card (emulators/vpcd), taps it, and returns the rigs/nfc/pcsc transport to
// that reader — the same driver path as a USB reader — with the hand that
// takes the card out and puts it back (vpcdHand). The card is lifted at
// Close (before pcscd stops). A real board's hand is nil.
func (r *Rig) pcscTransport(ctx context.Context, bs BoardSpec, tag *st25dv.Tag) (nfc.Transport, PhoneHand, error) {
	if !bs.Emulated {
		tr, err := realPCSC(ctx, bs)
		pt, ok := tr.(*pcsc.Transport)
		if err != nil || !bs.NFC.FieldControl || !ok {
			return tr, nil, err
		}
		return tr, readerFieldHand{pt}, nil
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := r.startPCSCD(startCtx)
	if err != nil {
		return nil, nil, err
	}
	slot, err := st.slot(bs.NFC.Reader)
	if err != nil {
		return nil, nil, err
	}
	emu := vpcd.ProfileTransparent
	if bs.NFC.Profile == string(pcsc.ACR1552) {
		emu = vpcd.ProfileACR1552
	}
	tr, err := pcsc.Open(pcsc.Config{Reader: st.daemon.ReaderName(slot), Profile: pcsc.Profile(bs.NFC.Profile)})
	if err != nil {
		return nil, nil, err
	}
	card := vpcd.NewCard(tag, vpcd.WithProfile(emu))
	r.closers = append(r.closers, card.Remove)
	hand := &vpcdHand{board: bs.Name, run: r.runCtx, card: card, addr: st.daemon.VPCDAddr(slot), tr: tr}
	// The board is ready once pcscd reports the card (its next presence poll).
	if err := hand.tap(startCtx); err != nil {
		_ = tr.Close()
		return nil, nil, fmt.Errorf("nfc.transport pcsc: %w", err)
	}
	return tr, hand, nil
}

// presenceWait bounds how long PhoneHand waits for pcscd to report a lift or
// a tap: it polls vpcd every 400 ms (PCSCLITE_STATUS_POLL_RATE, pcsc-lite
// src/pcscd.h.in), so a change shows within a second when all is well.
const presenceWait = 10 * time.Second

// vpcdHand is the PhoneHand of an emulated board on nfc.transport pcsc. Lift
// takes the tag's card out of its vpcd reader (the connection closes, the
// tag's field goes off) and returns once pcscd reports the reader empty on
// the board's transport (pcsc Watch); Tap puts the card back (field on, the
// reader's inventory) and returns once pcscd reports it present. A lift thus
// goes through the card-removal path of rigs/nfc/pcsc (the next exchange
// fails with nfc.ErrNoResponse and the card handle is dropped) and the tap
// after it through its reconnect (a new handle, a new transparent session).
type vpcdHand struct {
	board string
	run   context.Context // the rig's run: Close ends a wait
	card  *vpcd.Card
	addr  string // the vpcd slot's socket
	tr    *pcsc.Transport
}

// Lift removes the card from the reader and waits until pcscd reports it
// absent (PhoneHand). Lifting a lifted card only waits.
func (h *vpcdHand) Lift() error {
	ctx, cancel := context.WithTimeout(h.run, presenceWait)
	defer cancel()
	if err := h.card.Remove(); err != nil {
		return fmt.Errorf("board %s: lift: remove the card from %q: %w", h.board, h.tr.Reader(), err)
	}
	return h.await(ctx, false, "lift")
}

// Tap inserts the card into the reader again and waits until pcscd reports
// it present (PhoneHand). Tapping a card still in the reader only waits.
func (h *vpcdHand) Tap() error {
	ctx, cancel := context.WithTimeout(h.run, presenceWait)
	defer cancel()
	return h.tap(ctx)
}

func (h *vpcdHand) tap(ctx context.Context) error {
	if err := h.card.Insert(ctx, h.addr); err != nil && !errors.Is(err, vpcd.ErrInserted) {
		return fmt.Errorf("board %s: tap: insert the card into %q: %w", h.board, h.tr.Reader(), err)
	}
	return h.await(ctx, true, "tap")
}

// await returns once the board's transport reports the card present (or
// absent) in its reader, or ctx ends. A fresh Watch reports the reader's
// state first, so a change pcscd saw before the call is not missed.
func (h *vpcdHand) await(ctx context.Context, present bool, op string) error {
	start := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for p := range h.tr.Watch(wctx) {
		if p.Err != nil {
			return fmt.Errorf("board %s: %s: %w", h.board, op, p.Err)
		}
		if p.Present == present {
			return nil
		}
	}
	want := "the card gone"
	if present {
		want = "the card"
	}
	return fmt.Errorf("board %s: %s: pcscd did not report %s in %q within %s: %w",
		h.board, op, want, h.tr.Reader(), time.Since(start).Round(time.Millisecond), ctx.Err())
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

// pcscReaders lists the PC/SC readers pcscd knows (for CheckBench); none is
// an empty list, not an error.
func pcscReaders() ([]string, error) {
	rs, err := pcsc.Readers()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	return rs, err
}

// readerFieldHand is the PhoneHand of a real board whose reader switches its
// RF field (nfc.field_control): Lift turns the field off, Tap on (PC/SC Part
// 3 Manage Session; pcsc.Transport.SetField).
type readerFieldHand struct{ tr *pcsc.Transport }

func (h readerFieldHand) Lift() error { return h.set(false) }
func (h readerFieldHand) Tap() error  { return h.set(true) }

func (h readerFieldHand) set(on bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.tr.SetField(ctx, on)
}
