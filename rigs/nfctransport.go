package rigs

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// vpcdReader matches the reader names of vpcd's two slots (vsmartcard vpcd: "Virtual PCD 00 00" and "… 00 01").
var vpcdReader = regexp.MustCompile(`^Virtual PCD 00 0([01])$`)

// validPCSC checks nfc.transport pcsc: an emulated board's tag is a card in a
// vpcd reader, so its reader (if given) must be "Virtual PCD 00 00" or
// "… 00 01"; the profile must be known.
func validPCSC(b BoardSpec) error {
	switch b.NFC.Profile {
	case "", "transparent", "acr1552":
	default:
		return fmt.Errorf("nfc.profile %q is not transparent or acr1552", b.NFC.Profile)
	}
	if b.Emulated && b.NFC.Reader != "" && !vpcdReader.MatchString(b.NFC.Reader) {
		return fmt.Errorf("nfc.reader %q: an emulated board's tag sits in a vpcd reader (\"Virtual PCD 00 00\" or \"Virtual PCD 00 01\")", b.NFC.Reader)
	}
	if !b.Emulated && b.NFC.Reader == "" {
		return fmt.Errorf("nfc.reader is required for a real board on pcsc")
	}
	return nil
}

// pcscState is what the emulated PC/SC boards of one rig share: pcscd (with
// vpcd) and which of its two slots are taken.
type pcscState struct {
	daemon *pcscd.Daemon
	used   [2]bool
}

// slot picks the vpcd slot for an emulated board: the one its reader names,
// else the first free one.
func (p *pcscState) slot(reader string) (int, error) {
	if m := vpcdReader.FindStringSubmatch(reader); m != nil {
		n, _ := strconv.Atoi(m[1])
		if p.used[n] {
			return 0, fmt.Errorf("nfc.reader %q is already used by another board", reader)
		}
		p.used[n] = true
		return n, nil
	}
	for n := range p.used {
		if !p.used[n] {
			p.used[n] = true
			return n, nil
		}
	}
	return 0, fmt.Errorf("vpcd has two readers; a third emulated PC/SC board does not fit")
}

// startPCSCD starts (or adopts) pcscd once per rig; it stops at Close.
func (r *Rig) startPCSCD(ctx context.Context) (*pcscState, error) {
	if r.pcsc != nil {
		return r.pcsc, nil
	}
	d, err := pcscd.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("nfc.transport pcsc: %w", err)
	}
	r.pcsc = &pcscState{daemon: d}
	r.closers = append(r.closers, d.Stop)
	return r.pcsc, nil
}

// tagTransport gives the phone its way to the board's tag and, for an
// emulated board, the PhoneHand that lifts the phone off it: direct (the
// twin in-process, field on; the hand switches the field, fieldHand) or pcsc
// (the twin as a card in a vpcd reader, reached through pcscd; the hand takes
// the card out of the reader and puts it back; see nfctransport_pcsc.go). A
// real board's hand switches its reader's RF field when the rig file says
// the reader can (nfc.field_control), else it is nil.
func (r *Rig) tagTransport(ctx context.Context, bs BoardSpec, tag *st25dv.Tag) (nfc.Transport, PhoneHand, error) {
	if bs.NFC.Transport == "pcsc" {
		return r.pcscTransport(ctx, bs, tag)
	}
	tag.FieldOn()
	return nfc.NewDirect(tag), fieldHand{tag}, nil
}

// fieldHand is the PhoneHand of an emulated board on the direct transport:
// the tag's RF field off (Lift) and on (Tap).
type fieldHand struct{ tag *st25dv.Tag }

// Lift switches the tag's RF field off.
func (h fieldHand) Lift() error { h.tag.FieldOff(); return nil }

// Tap switches the tag's RF field on.
func (h fieldHand) Tap() error { h.tag.FieldOn(); return nil }

// Reader is the PC/SC reader name of the board's tag ("" unless nfc.transport
// is pcsc).
func (b *Board) Reader() string {
	if rd, ok := b.transport.(interface{ Reader() string }); ok {
		return rd.Reader()
	}
	return ""
}
