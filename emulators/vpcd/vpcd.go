package vpcd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// vpcd control bytes: a message of length 1 from vpcd (vsmartcard
// doc/api.txt, src/vpcd/vpcd.h).
const (
	CtrlPowerOff byte = 0x00
	CtrlPowerOn  byte = 0x01
	CtrlReset    byte = 0x02
	CtrlGetATR   byte = 0x04
)

// MaxFrame is the largest vpcd payload (16-bit length field, vsmartcard
// vpcd.c sendToVICC).
const MaxFrame = 0xFFFF

// ErrFrameTooLong reports a payload that does not fit the 16-bit length.
var ErrFrameTooLong = errors.New("pcsc: vpcd frame longer than 65535 bytes")

// ReadFrame reads one vpcd message: 2-byte big-endian length, then that many
// bytes. A zero length gives an empty, non-nil payload (vpcd itself never
// sends one; the caller decides what it means). After each of the two reads
// afterRead (if non-nil) runs — the card re-arms TCP_QUICKACK there.
func ReadFrame(r io.Reader, afterRead func()) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if afterRead != nil {
		afterRead()
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("pcsc: vpcd frame of %d bytes: %w", n, err)
	}
	if afterRead != nil {
		afterRead()
	}
	return buf, nil
}

// AppendFrame appends length + payload, ready for a single write (one write
// per reply keeps our own side from splitting it, the trap vsmartcard PR #252
// fixed in vpcd).
func AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxFrame {
		return dst, ErrFrameTooLong
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)))
	return append(dst, payload...), nil
}
