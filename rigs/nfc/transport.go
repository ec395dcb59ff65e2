// Package nfc drives an ST25DV64KC dynamic NFC tag from the reader (phone)
// side over an ISO/IEC 15693 Transport: identification, block memory, NDEF,
// configuration, passwords and the Fast Transfer Mode mailbox
// (ST datasheet DS13519 Rev 2, cited as "DS"; AN4911 for the NDEF layout).
//
// The Transport carries request frames without CRC and returns responses
// without CRC, flags byte first — the shape of Android's NfcV.transceive and
// of a PC/SC reader's transparent exchange. Real readers (pcsc) and the
// in-process emulator (NewDirect over emulators/st25dv) plug in the same way;
// this package never imports emulators/.
package nfc

import (
	"context"
	"errors"
	"fmt"
)

// Transport exchanges ISO 15693 frames with one tag.
type Transport interface {
	// Transceive sends a request without CRC and returns the response without
	// CRC (flags byte first). A tag that does not answer gives ErrNoResponse.
	Transceive(ctx context.Context, frame []byte) ([]byte, error)
	Close() error
}

// ErrNoResponse reports that the tag did not answer (out of field, not
// addressed, or a frame the tag ignores).
var ErrNoResponse = errors.New("nfc: no response from tag")

// Air is anything that answers ISO 15693 frames in-process, such as the
// emulated tag. A (nil, nil) result is silence.
type Air interface {
	Transceive(ctx context.Context, req []byte) ([]byte, error)
}

// NewDirect returns an in-process Transport over a: no reader, no pcscd.
// Silence becomes ErrNoResponse, as a reader's timeout would.
func NewDirect(a Air) Transport { return &direct{air: a} }

type direct struct {
	air    Air
	closed bool
}

func (d *direct) Transceive(ctx context.Context, frame []byte) ([]byte, error) {
	if d.closed {
		return nil, errors.New("nfc: direct transport closed")
	}
	resp, err := d.air.Transceive(ctx, frame)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, ErrNoResponse
	}
	return resp, nil
}

func (d *direct) Close() error { d.closed = true; return nil }

// ISO 15693 / ST25DV error codes (DS Table 101).
const (
	CodeNotSupported  byte = 0x01 // command not supported
	CodeFormat        byte = 0x02 // command not recognised (format error)
	CodeOption        byte = 0x03 // option not supported
	CodeUnknown       byte = 0x0F // unspecified error (ST25DV: wrong password, mailbox busy/off, FTM on, ...)
	CodeBlockNA       byte = 0x10 // block or pointer not available
	CodeAlreadyLocked byte = 0x11 // block already locked
	CodeLocked        byte = 0x12 // block locked, content cannot change
	CodeProgramFailed byte = 0x13 // programming failed
	CodeLockFailed    byte = 0x14 // lock failed
	CodeReadProtected byte = 0x15 // block read-protected
)

var codeNames = map[byte]string{
	CodeNotSupported:  "command not supported",
	CodeFormat:        "command not recognised",
	CodeOption:        "option not supported",
	CodeUnknown:       "unspecified error",
	CodeBlockNA:       "block not available",
	CodeAlreadyLocked: "block already locked",
	CodeLocked:        "block locked",
	CodeProgramFailed: "programming failed",
	CodeLockFailed:    "lock failed",
	CodeReadProtected: "block read-protected",
}

// ISOError is an ISO 15693 error response (01h <code>). Use errors.As to get
// the code, or errors.Is(err, &ISOError{Code: CodeLocked}).
type ISOError struct{ Code byte }

// Name is the datasheet name of the code.
func (e *ISOError) Name() string {
	if n, ok := codeNames[e.Code]; ok {
		return n
	}
	if e.Code >= 0xA0 && e.Code <= 0xDF {
		return "custom error"
	}
	return "RFU error"
}

func (e *ISOError) Error() string {
	return fmt.Sprintf("iso15693: error %02Xh (%s)", e.Code, e.Name())
}

// Is matches another *ISOError with the same code.
func (e *ISOError) Is(target error) bool {
	t, ok := target.(*ISOError)
	return ok && t.Code == e.Code
}
