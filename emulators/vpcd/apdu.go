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
		a.Le = int(body[0])
		if a.Le == 0 {
			a.Le = 256
		}
		return a, nil
	case body[0] != 0: // case 3/4 short
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			a.Le = int(body[1+lc])
			if a.Le == 0 {
				a.Le = 256
			}
		default:
			return a, fmt.Errorf("%w: Lc %d, %d bytes follow", ErrAPDULength, lc, len(body)-1)
		}
		a.Data = body[1 : 1+lc]
		return a, nil
	}
	// body[0] == 0 and at least two bytes: extended form.
	a.Extended = true
	if len(body) == 3 { // case 2 extended
		a.Le = int(body[1])<<8 | int(body[2])
		if a.Le == 0 {
			a.Le = 65536
		}
		return a, nil
	}
	if len(body) < 3 {
		return a, fmt.Errorf("%w: truncated extended length", ErrAPDULength)
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return a, fmt.Errorf("%w: extended Lc 0", ErrAPDULength)
	}
	switch len(body) {
	case 3 + lc:
	case 5 + lc:
		a.Le = int(body[3+lc])<<8 | int(body[4+lc])
		if a.Le == 0 {
			a.Le = 65536
		}
	default:
		return a, fmt.Errorf("%w: extended Lc %d, %d bytes follow", ErrAPDULength, lc, len(body)-3)
	}
	a.Data = body[3 : 3+lc]
	return a, nil
}

// Status words used by the virtual reader (reference §1.4, §2.1).
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

// TLV is one BER-TLV data object of the transparent session (reference §2.1):
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
