package ndef

import (
	"bytes"
	"fmt"
	"io"
)

// Type 5 Tag layout (AN4911 §3.1..3.3; NFC Forum T5T): a capability
// container at byte 0 — 4 bytes with magic E1h (area ≤ 2040 bytes) or 8
// bytes with magic E2h (larger tags such as the ST25DV64KC) — followed by
// TLV blocks: 00h NULL, 03h NDEF message, FDh proprietary, FEh terminator.
// TLV lengths are one byte, or FFh followed by a 2-byte big-endian length.

// TLV tags.
const (
	TLVNull        = 0x00
	TLVNDEF        = 0x03
	TLVProprietary = 0xFD
	TLVTerminator  = 0xFE
)

// CC is a parsed capability container.
type CC struct {
	Magic    byte // E1h, or E2h when 2-byte block addressing is needed
	Long     bool // 8-byte CC: byte 2 = 00h, MLEN in bytes 6..7 (big-endian)
	Version  byte // byte 1 b7..b4: 4h = version 1.0
	Access   byte // byte 1 b3..b0: read (b3..b2) / write (b1..b0) access, 0 = always
	MLEN     int  // T5T area size / 8
	Features byte // byte 3: b0 MBREAD (Read Multiple Blocks supported), b2 Android MLEN hint, b3 lock block, b4 special frame
}

// Len is the size of the CC in bytes (4 or 8).
func (c CC) Len() int {
	if c.Long {
		return 8
	}
	return 4
}

// AreaEnd is the offset just past the T5T area the CC declares.
func (c CC) AreaEnd() int { return c.Len() + 8*c.MLEN }

// Bytes encodes the CC.
func (c CC) Bytes() []byte {
	b1 := c.Version<<4 | c.Access&0x0F
	if c.Long {
		return []byte{c.Magic, b1, 0x00, c.Features, 0x00, 0x00, byte(c.MLEN >> 8), byte(c.MLEN)}
	}
	return []byte{0xE1, b1, byte(c.MLEN), c.Features}
}

// NewCC returns the CC for a tag of memBytes user memory, version 1.0, free
// read/write, MBREAD set: E1 40 <mem/8> 01 when that fits one byte (ST's
// convention counts the whole memory), else the 8-byte E2 40 00 01 00 00
// <(mem−8)/8> that ST's SparkFun writer and the NFC Forum rule use for the
// ST25DV64KC: E2 40 00 01 00 00 03 FF (AN4911 §3.3, §4.2).
func NewCC(memBytes int) CC {
	if memBytes/8 <= 0xFF {
		return CC{Magic: 0xE1, Version: 4, MLEN: memBytes / 8, Features: 0x01}
	}
	return CC{Magic: 0xE2, Long: true, Version: 4, MLEN: (memBytes - 8) / 8, Features: 0x01}
}

// ParseCC parses a CC from the start of tag memory. b needs 4 bytes, 8 for
// a long CC. The CC is 8 bytes long when byte 2 (MLEN) is 00h, whatever the
// magic (NFC Forum T5T; AN4911 pairs it with E2h, Android's rw_t5t.cc reads
// the second half whenever byte 2 is zero).
func ParseCC(b []byte) (CC, error) {
	if len(b) < 4 {
		return CC{}, fmt.Errorf("ndef: capability container: %w", ErrTruncated)
	}
	c := CC{Magic: b[0], Version: b[1] >> 4, Access: b[1] & 0x0F, Features: b[3], MLEN: int(b[2])}
	if c.Magic != 0xE1 && c.Magic != 0xE2 {
		return CC{}, fmt.Errorf("%w (magic %02Xh)", ErrBadCC, b[0])
	}
	if c.Version>>2 != 1 {
		return CC{}, fmt.Errorf("%w (major version %d)", ErrBadCC, c.Version>>2)
	}
	if b[2] == 0 {
		if len(b) < 8 {
			return CC{}, fmt.Errorf("ndef: 8-byte capability container: %w", ErrTruncated)
		}
		c.Long = true
		c.MLEN = int(b[6])<<8 | int(b[7])
	}
	return c, nil
}

// EncodeT5T returns the memory image for records on a tag with memBytes of
// user memory: CC, NDEF TLV, message, terminator TLV. It fails if the image
// does not fit.
func EncodeT5T(recs []Record, memBytes int) ([]byte, error) {
	msg, err := EncodeMessage(recs)
	if err != nil {
		return nil, err
	}
	cc := NewCC(memBytes)
	out := cc.Bytes()
	if len(msg) < 0xFF {
		out = append(out, TLVNDEF, byte(len(msg)))
	} else {
		if len(msg) > 0xFFFE {
			return nil, fmt.Errorf("ndef: message of %d bytes too long for a TLV", len(msg))
		}
		out = append(out, TLVNDEF, 0xFF, byte(len(msg)>>8), byte(len(msg)))
	}
	out = append(out, msg...)
	out = append(out, TLVTerminator)
	if len(out) > memBytes {
		return nil, fmt.Errorf("ndef: image of %d bytes does not fit %d bytes of memory", len(out), memBytes)
	}
	return out, nil
}

// FindNDEF walks the TLVs in [start, end) of r and returns the value of the
// first NDEF message TLV (empty for the initialised state, L = 0). It reads
// only what it needs, so r may be a tag read block by block.
func FindNDEF(r io.ReaderAt, start, end int) ([]byte, error) {
	read := func(off, n int) ([]byte, error) {
		if off+n > end {
			return nil, fmt.Errorf("ndef: TLV at %d runs past the T5T area end %d: %w", off, end, ErrTruncated)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return nil, fmt.Errorf("ndef: read %d bytes at %d: %w", n, off, err)
		}
		return b, nil
	}
	for off := start; off < end; {
		t, err := read(off, 1)
		if err != nil {
			return nil, err
		}
		off++
		switch t[0] {
		case TLVNull:
			continue
		case TLVTerminator:
			return nil, ErrNoNDEF
		}
		l, err := read(off, 1)
		if err != nil {
			return nil, err
		}
		off++
		n := int(l[0])
		if n == 0xFF {
			l2, err := read(off, 2)
			if err != nil {
				return nil, err
			}
			off += 2
			n = int(l2[0])<<8 | int(l2[1])
		}
		if t[0] == TLVNDEF {
			if n == 0 {
				return []byte{}, nil
			}
			return read(off, n)
		}
		off += n // proprietary or unknown TLV: skip
	}
	return nil, ErrNoNDEF
}

// DecodeT5T parses a whole memory image: CC, TLVs, NDEF message. An
// initialised tag (NDEF TLV with L = 0) gives no records and no error.
func DecodeT5T(image []byte) ([]Record, error) {
	cc, err := ParseCC(image)
	if err != nil {
		return nil, err
	}
	end := min(cc.AreaEnd(), len(image))
	msg, err := FindNDEF(bytes.NewReader(image), cc.Len(), end)
	if err != nil {
		return nil, err
	}
	if len(msg) == 0 {
		return nil, nil
	}
	return DecodeMessage(msg)
}
