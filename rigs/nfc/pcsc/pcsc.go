// Package pcsc is an nfc.Transport over a PC/SC contactless reader (USB
// reader or the emulated vpcd reader of emulators/vpcd) through
// github.com/ebfe/scard. It lives in its own package because ebfe/scard is
// cgo and needs libpcsclite-dev to build; rigs/nfc stays pure Go.
//
// The ISO 15693 frames of nfc.Transport (flags byte first, no CRC) reach the
// tag through a named reader profile (one Transceive contract, the same as
// Android's NfcV.transceive, implemented per reader):
//
//   - "transparent": the PC/SC 2.02 Part 3 transparent session: FF C2 start
//     session 81, switch protocol 8F 02 02 03 (ISO 15693 layer 3), then one
//     transparent exchange per frame (5F 46 timer + 95 transceive; answer
//     C0/92/96/97; PC/SC Part 3 Supplemental Document for Contactless ICCs
//     rev 2.02, as implemented in wsrf2009/contactless-driver mod/src/pcsc.c
//     and traced on an ACR1552 in NXP community thread 2093136). Used for
//     "Virtual PCD" and unknown readers.
//   - "acr1552": the ACS ACR1552U pass-through FF FB 00 00 (ACS
//     REF-ACR1552U-Series manual, "Pass Through"): the
//     reader supplies non-addressed request flags, so the flags byte and the
//     UID are stripped from the frame and a 00h flags byte is put back on
//     success. Inventory is answered from GET DATA (DSFID reads as 00h).
//
// Multi-APDU steps (session start + protocol switch) run inside
// SCardBeginTransaction/EndTransaction; Transaction lets a caller hold the
// card for a longer sequence. Presence (tap/lift) comes from
// SCardGetStatusChange: Watch reports every change, WaitPresent and
// WaitEmpty wait for one state.
package pcsc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"github.com/tap2join/tap2join/rigs/nfc"
)

// Profile names how ISO 15693 frames cross the reader.
type Profile string

const (
	// Transparent is the PC/SC Part 3 transparent exchange (FF C2).
	Transparent Profile = "transparent"
	// ACR1552 is the ACS ACR1552U pass-through (FF FB).
	ACR1552 Profile = "acr1552"
)

// ParseProfile checks a profile name ("" → "", meaning: from the reader name).
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(strings.ToLower(s)); p {
	case "", Transparent, ACR1552:
		return p, nil
	}
	return "", fmt.Errorf("pcsc: unknown reader profile %q (transparent, acr1552)", s)
}

// ProfileFor picks the profile from a PC/SC reader name (as pcsc-lite lists
// it, e.g. "ACS ACR1552 …", "Virtual PCD 00 00"):
// ACS ACR1552 → acr1552; everything else, "Virtual PCD" included →
// transparent. Which backend OMNIKEY/uTrust readers need is UNCONFIRMED
// (their ISO 15693 raw-command paths were not found documented); they get
// the standard one.
func ProfileFor(reader string) Profile {
	if strings.Contains(strings.ToUpper(reader), "ACR1552") {
		return ACR1552
	}
	return Transparent
}

// Config opens a Transport.
type Config struct {
	// Reader is the PC/SC reader name; "" takes the first reader listed.
	Reader string
	// Profile; "" chooses from the reader name (ProfileFor).
	Profile Profile
	// Timeout is the response timeout sent in every transparent exchange
	// (5F 46, µs LSB first); 0 → 100 ms, enough for a 4-block EEPROM write
	// (~20 ms) and a 256-byte mailbox write. The ACR1552 trace in NXP
	// community thread 2093136 shows a reader's default timing out on a
	// write, so it is always sent.
	Timeout time.Duration
}

// Errors callers branch on. Every error wraps one of these, an *StatusError,
// a *SessionError or a scard.Error, with context.
var (
	// ErrNotISO15693 reports a card whose ATR is not PC/SC Part 3 ISO 15693.
	ErrNotISO15693 = errors.New("pcsc: card is not an ISO 15693 tag")
	// ErrUnsupportedFrame reports a frame the profile cannot carry.
	ErrUnsupportedFrame = errors.New("pcsc: frame not expressible with this reader profile")
	// ErrClosed reports use after Close.
	ErrClosed = errors.New("pcsc: transport closed")
)

// StatusError is an APDU answered with a status word other than 90 00.
type StatusError struct {
	Op string // what the APDU was for
	SW uint16
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("pcsc: %s: status %04X (%s)", e.Op, e.SW, swText(e.SW))
}

// Is matches another *StatusError with the same SW (Op ignored).
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.SW == e.SW
}

// SessionError is a failed data object of a transparent session: the C0
// generic error status (wsrf2009/contactless-driver pcsc.c) — Index is the
// 1-based DO index.
type SessionError struct {
	Op    string
	Index int
	SW    uint16
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("pcsc: %s: data object %d failed with %04X (%s)", e.Op, e.Index, e.SW, swText(e.SW))
}

// Is matches another *SessionError with the same SW.
func (e *SessionError) Is(target error) bool {
	t, ok := target.(*SessionError)
	return ok && t.SW == e.SW
}

// Unwrap makes "no response from the ICC" (64 01) an nfc.ErrNoResponse.
func (e *SessionError) Unwrap() error {
	if e.SW == 0x6401 {
		return nfc.ErrNoResponse
	}
	return nil
}

// RFError is a non-zero response status DO 96 (CRC, collision, parity or
// framing error bits as read by a Python ACR1552 driver; meanings
// UNCONFIRMED against the PC/SC spec).
type RFError struct{ Status [2]byte }

func (e *RFError) Error() string { return fmt.Sprintf("pcsc: RF error status % X", e.Status[:]) }

var swTexts = map[uint16]string{
	0x6282: "end of data reached", 0x6300: "failed", 0x6401: "no response from card",
	0x6400: "no response from reader", 0x6581: "memory failure", 0x6700: "wrong length",
	0x6800: "CLA not supported", 0x6981: "command incompatible", 0x6982: "security status not satisfied",
	0x6986: "command not allowed", 0x6A80: "wrong value", 0x6A81: "function not supported",
	0x6A82: "address not found", 0x6B00: "wrong P1/P2", 0x6D00: "INS not supported",
	0x6E00: "CLA not supported", 0x6F00: "no precise diagnosis",
}

func swText(sw uint16) string {
	if t, ok := swTexts[sw]; ok {
		return t
	}
	if sw>>8 == 0x6C {
		return fmt.Sprintf("wrong Le, %d available", sw&0xFF)
	}
	return "unknown"
}

// Readers lists the PC/SC readers (scard.ErrNoReadersAvailable when none).
func Readers() ([]string, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("pcsc: establish context (is pcscd running?): %w", err)
	}
	defer c.Release()
	rs, err := c.ListReaders()
	if err != nil {
		return nil, fmt.Errorf("pcsc: list readers: %w", err)
	}
	return rs, nil
}

// Transport is an nfc.Transport over one PC/SC reader. The card is connected
// on first use and again after a lift and re-tap. Safe for concurrent use.
type Transport struct {
	reader  string
	profile Profile
	timeout time.Duration

	mu      sync.Mutex
	ctx     *scard.Context
	card    *scard.Card
	session bool // transparent session started on this card handle
	inTx    bool // a Transaction holds the card
	closed  bool
}

var _ nfc.Transport = (*Transport)(nil)

// Open establishes a PC/SC context for cfg.Reader. It does not need a card
// yet: the first Transceive connects (and fails with nfc.ErrNoResponse while
// no tag is on the reader — also in the moment between a card going in and
// pcscd reporting it: WaitPresent waits for that).
func Open(cfg Config) (*Transport, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("pcsc: establish context (is pcscd running?): %w", err)
	}
	rs, err := c.ListReaders()
	if err != nil {
		c.Release()
		return nil, fmt.Errorf("pcsc: list readers: %w", err)
	}
	reader := cfg.Reader
	if reader == "" {
		reader = rs[0]
	} else if !contains(rs, reader) {
		c.Release()
		return nil, fmt.Errorf("pcsc: reader %q not found (have %q): %w", reader, rs, scard.ErrUnknownReader)
	}
	p, err := ParseProfile(string(cfg.Profile))
	if err != nil {
		c.Release()
		return nil, err
	}
	if p == "" {
		p = ProfileFor(reader)
	}
	t := &Transport{reader: reader, profile: p, timeout: cfg.Timeout, ctx: c}
	if t.timeout <= 0 {
		t.timeout = 100 * time.Millisecond
	}
	return t, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Reader is the PC/SC reader name.
func (t *Transport) Reader() string { return t.reader }

// Profile is the profile in use.
func (t *Transport) Profile() Profile { return t.profile }

// gone reports scard errors meaning "no tag on the reader (any more)".
func gone(err error) bool {
	return errors.Is(err, scard.ErrNoSmartcard) || errors.Is(err, scard.ErrRemovedCard) ||
		errors.Is(err, scard.ErrUnpoweredCard) || errors.Is(err, scard.ErrUnresponsiveCard)
}

// noTag wraps an scard error as nfc.ErrNoResponse (the phone's view: the tag
// does not answer) while keeping the PC/SC reason.
func (t *Transport) noTag(op string, err error) error {
	return fmt.Errorf("pcsc: %s on %q: %w (%w)", op, t.reader, nfc.ErrNoResponse, err)
}

// connect ensures a card handle with the profile's session; t.mu held.
func (t *Transport) connect() error {
	if t.closed {
		return ErrClosed
	}
	if t.card != nil {
		return nil
	}
	card, err := t.ctx.Connect(t.reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		if gone(err) {
			return t.noTag("connect", err)
		}
		return fmt.Errorf("pcsc: connect to %q: %w", t.reader, err)
	}
	st, err := card.Status()
	if err != nil {
		_ = card.Disconnect(scard.LeaveCard)
		return t.noTag("card status", err)
	}
	if !IsISO15693ATR(st.Atr) {
		_ = card.Disconnect(scard.LeaveCard)
		return fmt.Errorf("pcsc: %q: ATR % X: %w", t.reader, st.Atr, ErrNotISO15693)
	}
	t.card, t.session = card, false
	return nil
}

// IsISO15693ATR checks for a PC/SC Part 3 storage-card ATR with RID
// A0 00 00 03 06 and standard byte 0B (ISO 15693 part 3), as listed in
// pcsc-tools smartcard_list.txt and the SCL3711 / CLOUD 47x0 F manuals.
func IsISO15693ATR(atr []byte) bool {
	return len(atr) >= 13 && bytes.Equal(atr[7:12], []byte{0xA0, 0x00, 0x00, 0x03, 0x06}) && atr[12] == 0x0B
}

// drop forgets the card handle after a lift; t.mu held.
func (t *Transport) drop() {
	if t.card != nil {
		_ = t.card.Disconnect(scard.LeaveCard)
	}
	t.card, t.session = nil, false
}

// transmit sends one APDU and splits off the SW; t.mu held. A response
// shorter than 2 bytes (what vpcd returns when the card vanishes mid-APDU,
// as observed with pcsc-lite 1.9.9 and Debian's vpcd 0.8) counts as the tag gone.
func (t *Transport) transmit(op string, apdu []byte) ([]byte, uint16, error) {
	rsp, err := t.card.Transmit(apdu)
	if err != nil {
		if gone(err) || errors.Is(err, scard.ErrResetCard) {
			t.drop()
			return nil, 0, t.noTag(op, err)
		}
		return nil, 0, fmt.Errorf("pcsc: %s on %q: %w", op, t.reader, err)
	}
	if len(rsp) < 2 {
		t.drop()
		return nil, 0, t.noTag(op, fmt.Errorf("%d-byte response", len(rsp)))
	}
	n := len(rsp) - 2
	return rsp[:n], binary.BigEndian.Uint16(rsp[n:]), nil
}

// withCard runs fn with a connected card inside a PC/SC transaction (unless
// a Transaction already holds one); a card reset by another client is
// reconnected once.
func (t *Transport) withCard(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := t.connect(); err != nil {
			return err
		}
		if t.inTx {
			return fn()
		}
		if err := t.card.BeginTransaction(); err != nil {
			if (gone(err) || errors.Is(err, scard.ErrResetCard)) && attempt == 0 {
				t.drop()
				continue
			}
			t.drop()
			return t.noTag("begin transaction", err)
		}
		err := fn()
		if t.card != nil {
			_ = t.card.EndTransaction(scard.LeaveCard)
		}
		return err
	}
}

// Transaction holds the card (SCardBeginTransaction) for a sequence of
// Transceive calls, so no other PC/SC client interleaves APDUs. A card
// handle left from before a lift and re-tap is replaced once, as in
// Transceive.
func (t *Transport) Transaction(ctx context.Context, fn func(ctx context.Context) error) error {
	t.mu.Lock()
	if t.inTx {
		t.mu.Unlock()
		return fn(ctx) // nested: already held
	}
	for attempt := 0; ; attempt++ {
		if err := t.connect(); err != nil {
			t.mu.Unlock()
			return err
		}
		err := t.card.BeginTransaction()
		if err == nil {
			break
		}
		t.drop()
		// A handle from before a lift and re-tap answers "card removed"
		// (or "reset"): reconnect once, as withCard does.
		if (gone(err) || errors.Is(err, scard.ErrResetCard)) && attempt == 0 {
			continue
		}
		t.mu.Unlock()
		return t.noTag("begin transaction", err)
	}
	t.inTx = true
	card := t.card
	t.mu.Unlock()

	err := fn(ctx)

	t.mu.Lock()
	t.inTx = false
	if t.card == card {
		_ = card.EndTransaction(scard.LeaveCard)
	}
	t.mu.Unlock()
	return err
}

// Transceive sends one ISO 15693 frame and returns the tag's response.
func (t *Transport) Transceive(ctx context.Context, frame []byte) ([]byte, error) {
	if len(frame) < 2 {
		return nil, fmt.Errorf("pcsc: frame of %d bytes: %w", len(frame), ErrUnsupportedFrame)
	}
	var resp []byte
	err := t.withCard(ctx, func() error {
		var err error
		switch t.profile {
		case ACR1552:
			resp, err = t.passThrough(frame)
		default:
			resp, err = t.exchange(frame)
		}
		return err
	})
	return resp, err
}

// startSession: FF C2 00 00 02 81 00 00, then FF C2 00 02 04 8F 02 02 03 00
// (switch to ISO 15693 layer 3; wsrf2009 pcsc.h switch-protocol values, the
// NXP community ACR1552 trace). t.mu held, in a transaction.
func (t *Transport) startSession() error {
	for _, step := range []struct {
		op   string
		apdu []byte
	}{
		{"start transparent session", []byte{0xFF, 0xC2, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00}},
		{"switch to ISO 15693 layer 3", []byte{0xFF, 0xC2, 0x00, 0x02, 0x04, 0x8F, 0x02, 0x02, 0x03, 0x00}},
	} {
		body, sw, err := t.transmit(step.op, step.apdu)
		if err != nil {
			return err
		}
		if _, err := parseSession(step.op, body, sw); err != nil {
			return err
		}
	}
	t.session = true
	return nil
}

// SetField switches the reader's RF field off or on: PC/SC 2.02 Part 3
// Manage Session, DO 83 00 (turn RF off) or 84 00 (turn RF on), inside the
// transparent session (started first if needed) — FF C2 00 00 02 83 00 00.
// The tag loses its field as when the phone is lifted (ISO state, RF
// sessions lost; the next frames get no answer) and powers up again on.
// Which readers obey is UNCONFIRMED beyond the Part 3 supplement's DO list
// (pcsc-iso15693.md §2.1): a reader that does not answers the DO with
// status 6A 81 (not supported), an error here.
func (t *Transport) SetField(ctx context.Context, on bool) error {
	op, do := "turn RF field off", byte(0x83)
	if on {
		op, do = "turn RF field on", 0x84
	}
	return t.withCard(ctx, func() error {
		if !t.session {
			if err := t.startSession(); err != nil {
				return err
			}
		}
		body, sw, err := t.transmit(op, []byte{0xFF, 0xC2, 0x00, 0x00, 0x02, do, 0x00, 0x00})
		if err != nil {
			return err
		}
		_, err = parseSession(op, body, sw)
		return err
	})
}

// exchange wraps frame in a transparent exchange: FF C2 00 01 Lc
// 5F 46 04 <timeout µs LSB first> 95 <len> <frame> Le (extended APDU when the
// data objects pass 255 bytes, e.g. a 256-byte mailbox write).
func (t *Transport) exchange(frame []byte) ([]byte, error) {
	if !t.session {
		if err := t.startSession(); err != nil {
			return nil, err
		}
	}
	us := uint32(t.timeout / time.Microsecond)
	dos := []byte{0x5F, 0x46, 0x04, byte(us), byte(us >> 8), byte(us >> 16), byte(us >> 24)}
	dos = appendTLV(dos, 0x95, frame)
	const op = "transparent exchange"
	body, sw, err := t.transmit(op, commandAPDU(0xC2, 0x00, 0x01, dos))
	if err != nil {
		return nil, err
	}
	resp, err := parseSession(op, body, sw)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("pcsc: %s: answer without ICC response DO 97: % X", op, body)
	}
	return resp, nil
}

// commandAPDU builds FF INS P1 P2 Lc data Le, short or extended.
func commandAPDU(ins, p1, p2 byte, data []byte) []byte {
	a := []byte{0xFF, ins, p1, p2}
	if len(data) <= 255 {
		a = append(a, byte(len(data)))
		a = append(a, data...)
		return append(a, 0x00)
	}
	a = append(a, 0x00, byte(len(data)>>8), byte(len(data)))
	a = append(a, data...)
	return append(a, 0x00, 0x00)
}

func appendTLV(dst []byte, tag byte, v []byte) []byte {
	dst = append(dst, tag)
	switch n := len(v); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xFF:
		dst = append(dst, 0x81, byte(n))
	default:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, v...)
}

// parseSession checks an FF C2 answer in this order (our rule, from the
// wsrf2009 pcsc.c response DOs): outer
// SW, then the C0 status, then 96 (RF status) and 92 (valid bits), and
// returns the 97 value (nil if absent). DOs are found by tag, not position.
func parseSession(op string, body []byte, sw uint16) ([]byte, error) {
	if sw != 0x9000 {
		return nil, &StatusError{Op: op, SW: sw}
	}
	var resp []byte
	sawC0 := false
	for len(body) > 0 {
		tag := int(body[0])
		body = body[1:]
		if tag&0x1F == 0x1F && len(body) > 0 {
			tag = tag<<8 | int(body[0])
			body = body[1:]
		}
		if len(body) == 0 {
			return nil, fmt.Errorf("pcsc: %s: truncated data object %X", op, tag)
		}
		n := int(body[0])
		body = body[1:]
		switch {
		case n < 0x80:
		case n == 0x81 && len(body) >= 1:
			n, body = int(body[0]), body[1:]
		case n == 0x82 && len(body) >= 2:
			n, body = int(body[0])<<8|int(body[1]), body[2:]
		default:
			return nil, fmt.Errorf("pcsc: %s: bad length in data object %X", op, tag)
		}
		if n > len(body) {
			return nil, fmt.Errorf("pcsc: %s: data object %X longer than the answer", op, tag)
		}
		v := body[:n]
		body = body[n:]
		switch tag {
		case 0xC0:
			if n != 3 {
				return nil, fmt.Errorf("pcsc: %s: C0 of %d bytes", op, n)
			}
			sawC0 = true
			if s := binary.BigEndian.Uint16(v[1:]); v[0] != 0 || s != 0x9000 {
				return nil, &SessionError{Op: op, Index: int(v[0]), SW: s}
			}
		case 0x96:
			if n == 2 && v[0]&0x0F != 0 {
				return nil, fmt.Errorf("pcsc: %s: %w", op, &RFError{Status: [2]byte{v[0], v[1]}})
			}
		case 0x92:
			if n == 1 && v[0] != 0 {
				return nil, fmt.Errorf("pcsc: %s: %d valid bits in the last byte", op, v[0])
			}
		case 0x97:
			resp = append([]byte{}, v...)
		}
	}
	if !sawC0 {
		return nil, fmt.Errorf("pcsc: %s: answer without C0 status", op)
	}
	return resp, nil
}

// ISO 15693 request flags (ST RFAL rfal_nfcv.h; DS13519 Table 96–98).
const (
	flagInventory = 0x04
	flagSelect    = 0x10
	flagAddress   = 0x20
	flagOption    = 0x40
)

// passThrough sends frame through FF FB 00 00 (ACR1552U): the reader adds its
// own non-addressed request flags, so the frame's flags byte and UID go. The
// answer is the payload + SW (flags byte not kept — UNCONFIRMED; the
// OpenPrintTag code treats everything before the SW as data); 63 00 with
// "01 code" data is our emulator's (UNCONFIRMED) error
// form, 64 01 is silence.
func (t *Transport) passThrough(frame []byte) ([]byte, error) {
	flags, cmd := frame[0], frame[1]
	if flags&flagInventory != 0 {
		return t.inventoryFromUID()
	}
	if flags&(flagSelect|flagOption) != 0 {
		return nil, fmt.Errorf("pcsc: flags %02X with profile %s: %w", flags, t.profile, ErrUnsupportedFrame)
	}
	body := []byte{cmd}
	rest := frame[2:]
	if cmd >= 0xA0 && cmd <= 0xDF || cmd == 0x3B { // mfg code / Ext Get System Info request field precede the UID
		if len(rest) < 1 {
			return nil, fmt.Errorf("pcsc: frame % X too short: %w", frame, ErrUnsupportedFrame)
		}
		body, rest = append(body, rest[0]), rest[1:]
	}
	if flags&flagAddress != 0 {
		if len(rest) < 8 {
			return nil, fmt.Errorf("pcsc: addressed frame % X without UID: %w", frame, ErrUnsupportedFrame)
		}
		rest = rest[8:]
	}
	body = append(body, rest...)
	const op = "pass-through"
	data, sw, err := t.transmit(op, commandAPDU(0xFB, 0x00, 0x00, body))
	if err != nil {
		return nil, err
	}
	switch {
	case sw == 0x9000:
		return append([]byte{0x00}, data...), nil
	case sw == 0x6300 && len(data) == 2 && data[0]&1 != 0:
		return data, nil // ISO error response, handed to the driver as is
	case sw == 0x6401:
		return nil, fmt.Errorf("pcsc: %s: %w", op, &SessionError{Op: op, Index: 1, SW: sw})
	}
	return nil, &StatusError{Op: op, SW: sw}
}

// inventoryFromUID answers an Inventory as 00 DSFID UID(LSB first) from GET
// DATA; the reader did the inventory itself. DSFID is unknown here → 00h.
func (t *Transport) inventoryFromUID() ([]byte, error) {
	uid, err := t.getUID()
	if err != nil {
		return nil, err
	}
	out := []byte{0x00, 0x00}
	for i := 7; i >= 0; i-- {
		out = append(out, uid[i])
	}
	return out, nil
}

// getUID: FF CA 00 00 00, normalised to MSB first (E0 first) whichever order
// the reader uses (PC/SC leaves the order open for ISO 15693 and readers
// differ, phonegap-nfc issue #446; the ST25DV UID carries E0h at the MSB end,
// DS13519 §8 Table 243);
// t.mu held.
func (t *Transport) getUID() ([8]byte, error) {
	var uid [8]byte
	const op = "get UID"
	data, sw, err := t.transmit(op, []byte{0xFF, 0xCA, 0x00, 0x00, 0x00})
	if err != nil {
		return uid, err
	}
	if sw != 0x9000 {
		return uid, &StatusError{Op: op, SW: sw}
	}
	if len(data) != 8 {
		return uid, fmt.Errorf("pcsc: %s: %d bytes, want 8", op, len(data))
	}
	copy(uid[:], data)
	if uid[0] != 0xE0 && uid[7] == 0xE0 {
		for i := 0; i < 4; i++ {
			uid[i], uid[7-i] = uid[7-i], uid[i]
		}
	}
	return uid, nil
}

// UID reads the tag UID with GET DATA, MSB first (E0 02 … for ST).
func (t *Transport) UID(ctx context.Context) ([8]byte, error) {
	var uid [8]byte
	err := t.withCard(ctx, func() error {
		var err error
		uid, err = t.getUID()
		return err
	})
	return uid, err
}

// ATR returns the ATR of the card on the reader.
func (t *Transport) ATR(ctx context.Context) ([]byte, error) {
	var atr []byte
	err := t.withCard(ctx, func() error {
		st, err := t.card.Status()
		if err != nil {
			t.drop()
			return t.noTag("card status", err)
		}
		atr = st.Atr
		return nil
	})
	return atr, err
}

// Close ends the transparent session (82 00), disconnects leaving the card,
// and releases the PC/SC context.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.card != nil && t.session {
		_, _, _ = t.transmit("end transparent session", []byte{0xFF, 0xC2, 0x00, 0x00, 0x02, 0x82, 0x00, 0x00})
	}
	t.drop()
	if err := t.ctx.Release(); err != nil {
		return fmt.Errorf("pcsc: release context: %w", err)
	}
	return nil
}
