package vpcd

import (
	"errors"
	"fmt"
)

// APDU is a parsed ISO/IEC 7816-4 command APDU (short or extended form).
type APDU struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Le is the expected response length: -1 when absent; 256 (short) or
	// 65536 (extended) when coded as 00 / 00 00 ("as much as available").
	Le       int
	Extended bool
}

// Errors of ParseAPDU.
var (
	ErrAPDUShort  = errors.New("pcsc: APDU shorter than 4 bytes")
	ErrAPDULength = errors.New("pcsc: APDU length field does not match its body")
)

// ParseAPDU decodes the four ISO 7816-4 cases in short and extended form.
// It never panics on any input.
func ParseAPDU(b []byte) (APDU, error) {
	a := APDU{Le: -1}
	if len(b) < 4 {
		return a, ErrAPDUShort
	}
	a.CLA, a.INS, a.P1, a.P2 = b[0], b[1], b[2], b[3]
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return a, nil
	case len(body) == 1: // case 2 short
		a.Le = leField(body)
		return a, nil
	case body[0] != 0: // case 3/4 short
		return withData(a, body, 1, int(body[0]), 1)
	}
	// body[0] == 0 and at least two bytes: extended form.
	a.Extended = true
	if len(body) == 3 { // case 2 extended
		a.Le = leField(body[1:])
		return a, nil
	}
	if len(body) < 3 {
		return a, fmt.Errorf("%w: truncated extended length", ErrAPDULength)
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return a, fmt.Errorf("%w: extended Lc 0", ErrAPDULength)
	}
	return withData(a, body, 3, lc, 2)
}

// withData completes a case 3 or 4 APDU: lc data bytes follow the Lc field
// (the first lcEnd bytes of body), then an Le field of leLen bytes or nothing.
func withData(a APDU, body []byte, lcEnd, lc, leLen int) (APDU, error) {
	switch len(body) {
	case lcEnd + lc:
	case lcEnd + lc + leLen:
		a.Le = leField(body[lcEnd+lc:])
	default:
		kind := "Lc"
		if a.Extended {
			kind = "extended Lc"
		}
		return a, fmt.Errorf("%w: %s %d, %d bytes follow", ErrAPDULength, kind, lc, len(body)-lcEnd)
	}
	a.Data = body[lcEnd : lcEnd+lc]
	return a, nil
}

// leField decodes an Le field of one (short) or two (extended) bytes, MSB
// first; zero codes the maximum, 256 or 65536.
func leField(b []byte) int {
	v := 0
	for _, c := range b {
		v = v<<8 | int(c)
	}
	if v == 0 {
		return 1 << (8 * len(b))
	}
	return v
}

// Status words used by the virtual reader (storage-card tables of the SCL3711,
// ACS and ubisys 7047 manuals; inner C0 statuses of wsrf2009 pcsc.c).
const (
	SWOK              uint16 = 0x9000
	SWEndReached      uint16 = 0x6282 // fewer bytes than Le: end of memory
	SWFailed          uint16 = 0x6300 // operation failed, no information
	SWNoICCResponse   uint16 = 0x6401 // no response from the card (transparent DO status)
	SWMemoryFailure   uint16 = 0x6581 // write failed
	SWWrongLength     uint16 = 0x6700
	SWNotCompatible   uint16 = 0x6981 // command incompatible with this card
	SWSecurity        uint16 = 0x6982 // security status not satisfied
	SWNotAllowed      uint16 = 0x6986
	SWWrongValue      uint16 = 0x6A80 // DO with a wrong value
	SWNotSupported    uint16 = 0x6A81 // function / DO not supported
	SWNotFound        uint16 = 0x6A82 // address beyond memory
	SWWrongP1P2       uint16 = 0x6B00
	SWWrongLe         uint16 = 0x6C00 // | correct length
	SWINSNotSupported uint16 = 0x6D00
	SWCLANotSupported uint16 = 0x6E00
	SWNoDiagnosis     uint16 = 0x6F00
)

func sw(data []byte, s uint16) []byte {
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return append(out, byte(s>>8), byte(s))
}

// TLV is one BER-TLV data object of the transparent session (PC/SC Part 3
// supplement rev 2.02, as in wsrf2009/contactless-driver mod/src/pcsc.h):
// a one- or two-byte tag (5F 46, FF 6D, FF 6E) and a length coded as
// 1 byte (< 80h), 81 LL or 82 LL LL.
type TLV struct {
	Tag   uint16
	Value []byte
}

// ErrTLV reports a malformed data object list.
var ErrTLV = errors.New("pcsc: malformed data object")

// ParseTLVs splits b into data objects; it never panics.
func ParseTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		tag := uint16(b[0])
		b = b[1:]
		if tag&0x1F == 0x1F { // two-byte tag (ISO 7816-4 BER: 5F 46, FF 6E, …)
			if len(b) == 0 {
				return out, fmt.Errorf("%w: truncated tag", ErrTLV)
			}
			tag = tag<<8 | uint16(b[0])
			b = b[1:]
		}
		if len(b) == 0 {
			return out, fmt.Errorf("%w: tag %X without length", ErrTLV, tag)
		}
		n := int(b[0])
		b = b[1:]
		switch {
		case n < 0x80:
		case n == 0x81 && len(b) >= 1:
			n, b = int(b[0]), b[1:]
		case n == 0x82 && len(b) >= 2:
			n, b = int(b[0])<<8|int(b[1]), b[2:]
		default:
			return out, fmt.Errorf("%w: tag %X: length byte %02X", ErrTLV, tag, n)
		}
		if n > len(b) {
			return out, fmt.Errorf("%w: tag %X: length %d, %d bytes left", ErrTLV, tag, n, len(b))
		}
		out = append(out, TLV{Tag: tag, Value: b[:n]})
		b = b[n:]
	}
	return out, nil
}

// AppendTLV appends one data object with the shortest BER length form.
func AppendTLV(dst []byte, tag uint16, v []byte) []byte {
	if tag > 0xFF {
		dst = append(dst, byte(tag>>8))
	}
	dst = append(dst, byte(tag))
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
