package vpcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RFTag is the RF side of a tag as the virtual reader's antenna sees it; the
// ST25DV twin (*st25dv.Tag) satisfies it. Transceive takes an ISO 15693
// request without CRC and returns the response without CRC, flags byte
// first; (nil, nil) is silence.
type RFTag interface {
	Transceive(ctx context.Context, req []byte) ([]byte, error)
	FieldOn()
	FieldOff()
}

// Profile selects which reader the virtual reader behaves like.
type Profile int

const (
	// ProfileTransparent is a PC/SC 2.02 Part 3 reader: GET DATA, READ/UPDATE
	// BINARY and the transparent session FF C2 (PC/SC Part 3 and its
	// Supplemental Document for Contactless ICCs rev 2.02).
	ProfileTransparent Profile = iota
	// ProfileACR1552 is ProfileTransparent plus the ACS ACR1552U pass-through
	// FF FB 00 00 (ACS REF-ACR1552U-Series manual, "Pass Through"; the
	// ACR1552U does both, per NXP community thread 2093136 and ST community
	// "Password management in ST25DV64 with ADPU transparent mode").
	ProfileACR1552
)

func (p Profile) String() string {
	switch p {
	case ProfileTransparent:
		return "transparent"
	case ProfileACR1552:
		return "acr1552"
	}
	return fmt.Sprintf("Profile(%d)", int(p))
}

// ParseProfile accepts "transparent" and "acr1552".
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(s) {
	case "transparent", "":
		return ProfileTransparent, nil
	case "acr1552", "acr1552u":
		return ProfileACR1552, nil
	}
	return 0, fmt.Errorf("pcsc: unknown reader profile %q (transparent, acr1552)", s)
}

// ATR returns the PC/SC Part 3 ATR of a contactless storage card on ISO 15693
// part 3 (SCL3711 / CLOUD 47x0 F manuals; pcsc-tools smartcard_list.txt):
// 3B 8F 80 01 80 4F 0C A0 00 00 03 06 0B NN NN
// 00 00 00 00 TCK. cardName 0000h = "not given": PC/SC has no code for the
// ST25DV, and which code (if any) a real reader puts there is UNCONFIRMED.
func ATR(cardName uint16) []byte {
	a := []byte{0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x0B,
		byte(cardName >> 8), byte(cardName), 0x00, 0x00, 0x00, 0x00}
	var tck byte
	for _, b := range a[1:] {
		tck ^= b
	}
	return append(a, tck)
}

// ISO 15693 pieces the reader itself sends (request flags and command codes
// as in ST RFAL rfal_nfcv.h).
const (
	isoHighRate  = 0x02
	isoInventory = 0x04
	isoOneSlot   = 0x20
	isoAddress   = 0x20
	maxReadBurst = 32 // blocks per Read Multiple, as the driver and Android
)

// reader is the APDU interpreter: the firmware of the virtual reader between
// the PC/SC side and the antenna. Its state belongs to one insertion.
type reader struct {
	tag     RFTag
	profile Profile
	uidMSB  bool

	uid      []byte // LSB first (inventory order); nil until an inventory answered
	session  bool   // transparent session started (81 00)
	rfOff    bool   // field switched off by DO 83
	pending  []byte // response of a transmit-only 93, for a following 94
	havePend bool
}

func (r *reader) reset() {
	if r.rfOff {
		r.tag.FieldOn()
	}
	r.session, r.rfOff, r.pending, r.havePend = false, false, nil, false
}

// inventory runs 26 01 00 (1 slot, no mask) and caches the UID, as a reader
// does when it detects the tag.
func (r *reader) inventory(ctx context.Context) bool {
	resp, err := r.tag.Transceive(ctx, []byte{isoHighRate | isoInventory | isoOneSlot, 0x01, 0x00})
	if err != nil || len(resp) != 10 || resp[0]&1 != 0 {
		return false
	}
	r.uid = append([]byte(nil), resp[2:10]...)
	return true
}

// process answers one command APDU; the result always ends in SW1 SW2.
func (r *reader) process(ctx context.Context, raw []byte) (resp []byte) {
	defer func() {
		if p := recover(); p != nil { // never let a bad frame take the slot down
			resp = sw(nil, SWNoDiagnosis)
		}
	}()
	a, err := ParseAPDU(raw)
	if err != nil {
		return sw(nil, SWWrongLength)
	}
	if a.CLA != 0xFF {
		return sw(nil, SWCLANotSupported)
	}
	switch a.INS {
	case 0xCA:
		return r.getData(ctx, a)
	case 0xB0:
		return r.readBinary(ctx, a)
	case 0xD6:
		return r.updateBinary(ctx, a)
	case 0xC2:
		return r.transparent(ctx, a)
	case 0xFB:
		if r.profile == ProfileACR1552 {
			return r.passThrough(ctx, a)
		}
	}
	return sw(nil, SWINSNotSupported)
}

// getData: FF CA 00 00 Le → UID (ACS ACR1281U and SCL3711 manuals; HID
// OMNIKEY sample code ContactlessCardCommunication.cs). The byte order is not fixed
// by PC/SC for ISO 15693 and is UNCONFIRMED per reader; we give it LSB first
// (…02 E0 last), identical to the inventory response and Android's
// Tag.getId(), unless WithUIDOrder(MSBFirst). FF CA 01 00 (ATS) → 6A 81, as
// ACS documents for non-14443-A cards (UNCONFIRMED for 15693).
func (r *reader) getData(ctx context.Context, a APDU) []byte {
	if a.P2 != 0 {
		return sw(nil, SWWrongP1P2)
	}
	if a.P1 != 0 {
		return sw(nil, SWNotSupported)
	}
	if len(a.Data) != 0 {
		return sw(nil, SWWrongLength)
	}
	if r.uid == nil && !r.inventory(ctx) {
		return sw(nil, SWFailed)
	}
	uid := append([]byte(nil), r.uid...)
	if r.uidMSB {
		for i, j := 0, len(uid)-1; i < j; i, j = i+1, j-1 {
			uid[i], uid[j] = uid[j], uid[i]
		}
	}
	switch {
	case a.Le == -1 || a.Le == 256 || a.Le == 65536 || a.Le == len(uid):
		return sw(uid, SWOK)
	case a.Le < len(uid):
		return sw(nil, SWWrongLe|uint16(len(uid)))
	default:
		return sw(uid, SWEndReached)
	}
}

// isoSW maps an ISO 15693 error code onto a storage-card status word
// (status words as in the SCL3711, ACS and ubisys 7047 storage-card tables;
// which one a reader picks for which ISO error is our choice).
func isoSW(code byte) uint16 {
	switch code {
	case 0x10:
		return SWNotFound
	case 0x11, 0x12, 0x15:
		return SWSecurity
	case 0x13, 0x14:
		return SWMemoryFailure
	case 0x01, 0x02, 0x03:
		return SWNotCompatible
	}
	return SWFailed
}

// blockCmd builds a block command, addressed with the cached UID when one is
// known (a quiet tag still answers), with a 16-bit block number (LSB first)
// for the extended commands 30h..34h (ST RFAL rfal_nfcv.c; DS13519 §7.6).
func (r *reader) blockCmd(code byte, ext bool, block int, params ...byte) []byte {
	f := []byte{isoHighRate, code}
	if r.uid != nil {
		f[0] |= isoAddress
		f = append(f, r.uid...)
	}
	if ext {
		f = append(f, byte(block), byte(block>>8))
	} else {
		f = append(f, byte(block))
	}
	return append(f, params...)
}

// readBinary: FF B0 P1 P2 Le, P1P2 = first block number (HID OMNIKEY /
// Identiv convention: HID sample code ExampleWithIso15693.cs, SCL3711
// manual; ACR1552U's own addressing is
// UNCONFIRMED), Le bytes (absent: one block; 00: 256). Reads past the end
// return what exists with 62 82; a start beyond memory gives 6A 82.
func (r *reader) readBinary(ctx context.Context, a APDU) []byte {
	if len(a.Data) != 0 {
		return sw(nil, SWWrongLength)
	}
	if r.uid == nil {
		r.inventory(ctx)
	}
	want := a.Le
	if want < 0 {
		want = 4
	}
	first := int(a.P1)<<8 | int(a.P2)
	blocks := (want + 3) / 4
	var out []byte
	for b := first; b < first+blocks; {
		n := min(maxReadBurst, first+blocks-b)
		ext := b+n-1 > 0xFF
		var f []byte
		switch {
		case n == 1 && ext:
			f = r.blockCmd(0x30, true, b)
		case n == 1:
			f = r.blockCmd(0x20, false, b)
		case ext:
			f = r.blockCmd(0x33, true, b, byte(n-1), byte((n-1)>>8))
		default:
			f = r.blockCmd(0x23, false, b, byte(n-1))
		}
		resp, err := r.tag.Transceive(ctx, f)
		switch {
		case err != nil || len(resp) == 0:
			if len(out) > 0 {
				return sw(trim(out, want), SWEndReached)
			}
			return sw(nil, SWFailed)
		case resp[0]&1 != 0:
			code := byte(0x0F)
			if len(resp) > 1 {
				code = resp[1]
			}
			if len(out) > 0 && code == 0x10 {
				return sw(trim(out, want), SWEndReached)
			}
			return sw(nil, isoSW(code))
		}
		data := resp[1:]
		if len(data) == 0 || len(data)%4 != 0 {
			return sw(nil, SWFailed)
		}
		out = append(out, data...)
		b += len(data) / 4
	}
	return sw(trim(out, want), SWOK)
}

func trim(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// updateBinary: FF D6 P1 P2 Lc data, Lc a multiple of 4, written block by
// block with Write Single Block (21h / 31h above FFh).
func (r *reader) updateBinary(ctx context.Context, a APDU) []byte {
	if len(a.Data) == 0 || len(a.Data)%4 != 0 {
		return sw(nil, SWWrongLength)
	}
	if r.uid == nil {
		r.inventory(ctx)
	}
	first := int(a.P1)<<8 | int(a.P2)
	for i := 0; i < len(a.Data)/4; i++ {
		b := first + i
		code := byte(0x21)
		if b > 0xFF {
			code = 0x31
		}
		f := r.blockCmd(code, b > 0xFF, b, a.Data[4*i:4*i+4]...)
		resp, err := r.tag.Transceive(ctx, f)
		switch {
		case err != nil || len(resp) == 0:
			return sw(nil, SWFailed)
		case resp[0]&1 != 0:
			code := byte(0x0F)
			if len(resp) > 1 {
				code = resp[1]
			}
			return sw(nil, isoSW(code))
		}
	}
	return sw(nil, SWOK)
}

// Transparent-session data objects (wsrf2009/contactless-driver
// mod/src/pcsc.h, an implementation of PC/SC 2.02 Part 3, and the ACR1552
// trace of NXP community thread 2093136).
const (
	doVersion   = 0x80
	doStart     = 0x81
	doEnd       = 0x82
	doRFOff     = 0x83
	doRFOn      = 0x84
	doTimer     = 0x5F46
	doGetParam  = 0xFF6D
	doSetParam  = 0xFF6E
	doTxRxFlags = 0x90
	doTxBits    = 0x91
	doRxBits    = 0x92
	doTransmit  = 0x93
	doReceive   = 0x94
	doXceive    = 0x95
	doRespStat  = 0x96
	doICCResp   = 0x97
	doSwitch    = 0x8F
	doStatus    = 0xC0
)

// doError stops a DO list: the C0 status names the 1-based DO index.
type doError struct {
	sw uint16
}

func (e doError) Error() string { return fmt.Sprintf("DO status %04X", e.sw) }

// transparent runs FF C2 00 P2 (00 manage session, 01 transparent exchange,
// 02 switch protocol). The answer is always "C0 03 ii s1 s2" first, then the
// DOs produced, then 90 00 — the outer SW stays 90 00 when a DO fails, as in
// the ACR1552 trace of NXP community thread 2093136 (C0 03 01 64 01 90 00
// for a timeout).
func (r *reader) transparent(ctx context.Context, a APDU) []byte {
	if a.P1 != 0 || a.P2 > 2 {
		return sw(nil, SWWrongP1P2)
	}
	dos, perr := ParseTLVs(a.Data)
	var out []byte
	failAt, failSW := 0, SWOK
dos:
	for i, do := range dos {
		var err error
		switch a.P2 {
		case 0:
			out, err = r.manage(do, out)
		case 1:
			out, err = r.exchange(ctx, do, out)
		case 2:
			out, err = r.switchProtocol(do, out)
		}
		if err != nil {
			var de doError
			if !errors.As(err, &de) {
				de = doError{SWNoDiagnosis}
			}
			failAt, failSW = i+1, de.sw
			break dos
		}
	}
	if failAt == 0 && perr != nil {
		failAt, failSW = len(dos)+1, SWWrongLength
	}
	res := []byte{doStatus, 0x03, byte(failAt), byte(failSW >> 8), byte(failSW)}
	return sw(append(res, out...), SWOK)
}

func (r *reader) manage(do TLV, out []byte) ([]byte, error) {
	empty := func() error {
		if len(do.Value) != 0 {
			return doError{SWWrongLength}
		}
		return nil
	}
	switch do.Tag {
	case doVersion:
		// The version bytes a real reader reports are UNCONFIRMED; we say
		// 02 02 00 after the Part 3 supplement revision 2.02 we follow.
		if err := empty(); err != nil {
			return out, err
		}
		return AppendTLV(out, doVersion, []byte{0x02, 0x02, 0x00}), nil
	case doStart:
		if err := empty(); err != nil {
			return out, err
		}
		r.session = true
	case doEnd:
		if err := empty(); err != nil {
			return out, err
		}
		// The reader resumes its own polling: the field comes back on.
		r.reset()
	case doRFOff:
		if err := empty(); err != nil {
			return out, err
		}
		if !r.rfOff {
			r.rfOff = true
			r.tag.FieldOff()
		}
	case doRFOn:
		if err := empty(); err != nil {
			return out, err
		}
		if r.rfOff {
			r.rfOff = false
			r.tag.FieldOn()
		}
	case doTimer:
		// In a manage session the timer is a delay; the reader's own time is
		// not modelled (the tag's is), so it is validated and not slept.
		if len(do.Value) != 4 {
			return out, doError{SWWrongLength}
		}
	case doSetParam:
		// FF 6E parameters (e.g. ACR1552 users' "03 01 0F") have UNCONFIRMED
		// meaning; accepted and ignored.
	default:
		return out, doError{SWNotSupported}
	}
	return out, nil
}

func (r *reader) exchange(ctx context.Context, do TLV, out []byte) ([]byte, error) {
	// Exchanges outside a session are refused (69 86, our choice; what real
	// readers do then is UNCONFIRMED). The Part 3 sequence always starts one.
	if !r.session {
		return out, doError{SWNotAllowed}
	}
	switch do.Tag {
	case doTimer:
		// Response timeout in µs, LSB first (wsrf2009 pcsc.c and the NXP
		// community trace's 40 42 0F 00 = 1 s; UNCONFIRMED against the
		// spec). Tag timing is modelled by the tag; no timeout
		// is simulated here.
		if len(do.Value) != 4 {
			return out, doError{SWWrongLength}
		}
	case doTxRxFlags:
		// Only 00 00 (reader handles CRC both ways) is known; other bit
		// meanings are UNCONFIRMED and refused.
		if len(do.Value) != 2 {
			return out, doError{SWWrongLength}
		}
		if do.Value[0] != 0 || do.Value[1] != 0 {
			return out, doError{SWNotSupported}
		}
	case doTxBits, doRxBits:
		if len(do.Value) != 1 {
			return out, doError{SWWrongLength}
		}
		if do.Value[0] != 0 {
			return out, doError{SWNotSupported}
		}
	case doTransmit:
		if len(do.Value) == 0 {
			return out, doError{SWWrongLength}
		}
		resp, err := r.tag.Transceive(ctx, do.Value)
		r.pending, r.havePend = resp, err == nil && resp != nil
	case doReceive:
		if len(do.Value) != 0 {
			return out, doError{SWWrongLength}
		}
		if !r.havePend {
			return out, doError{SWNoICCResponse}
		}
		resp := r.pending
		r.pending, r.havePend = nil, false
		return iccResponse(out, resp), nil
	case doXceive:
		if len(do.Value) == 0 {
			return out, doError{SWWrongLength}
		}
		resp, err := r.tag.Transceive(ctx, do.Value)
		if err != nil || resp == nil {
			return out, doError{SWNoICCResponse}
		}
		return iccResponse(out, resp), nil
	default:
		return out, doError{SWNotSupported}
	}
	return out, nil
}

// iccResponse appends 92 01 00 (all bits of the last byte valid), 96 02 00 00
// (no CRC/collision/parity/framing error) and 97 <flags + payload>, the order
// of the ACR1552 trace.
func iccResponse(out, resp []byte) []byte {
	out = AppendTLV(out, doRxBits, []byte{0x00})
	out = AppendTLV(out, doRespStat, []byte{0x00, 0x00})
	return AppendTLV(out, doICCResp, resp)
}

// switchProtocol accepts 8F 02 02 02/03 (ISO 15693 layer 2 or 3) and answers
// 8F 01 00 as in the ACR1552 trace; other standards find no card (64 01),
// other layers of 15693 do not exist (6A 80).
func (r *reader) switchProtocol(do TLV, out []byte) ([]byte, error) {
	if !r.session {
		return out, doError{SWNotAllowed}
	}
	if do.Tag != doSwitch {
		return out, doError{SWNotSupported}
	}
	if len(do.Value) != 2 {
		return out, doError{SWWrongLength}
	}
	if do.Value[0] != 0x02 {
		return out, doError{SWNoICCResponse}
	}
	if do.Value[1] != 0x02 && do.Value[1] != 0x03 {
		return out, doError{SWWrongValue}
	}
	return AppendTLV(out, doSwitch, []byte{0x00}), nil
}

// passThrough: ACR1552U FF FB 00 00 Lc <cmd params…> (ACS
// REF-ACR1552U-Series manual, "Pass Through"). The
// reader adds non-addressed, high-data-rate request flags (02h). On success
// the answer is the payload without the response-flags byte, then 90 00 —
// what the OpenPrintTag/NfcService code expects (keeping or dropping the
// flags byte is UNCONFIRMED). The error form is UNCONFIRMED too; we answer
// an ISO error response as "01 <code> 63 00" and silence as "64 01", so a
// driver can still tell the tag's error code.
func (r *reader) passThrough(ctx context.Context, a APDU) []byte {
	if a.P1 != 0 || a.P2 != 0 {
		return sw(nil, SWWrongP1P2)
	}
	if len(a.Data) == 0 {
		return sw(nil, SWWrongLength)
	}
	resp, err := r.tag.Transceive(ctx, append([]byte{isoHighRate}, a.Data...))
	switch {
	case err != nil || len(resp) == 0:
		return sw(nil, SWNoICCResponse)
	case resp[0]&1 != 0:
		return sw(resp, SWFailed)
	}
	return sw(resp[1:], SWOK)
}
