package pcsc

import (
	"errors"
	"testing"
)

// FuzzParseSession feeds arbitrary FF C2 answers to the driver-side parser:
// no panic; an answer is accepted only with a C0 status of "DO 0, 90 00".
func FuzzParseSession(f *testing.F) {
	for _, s := range [][]byte{
		{},
		{0xC0, 0x03, 0x00, 0x90, 0x00},
		{0xC0, 0x03, 0x01, 0x64, 0x01},
		{0xC0, 0x03, 0x00, 0x90, 0x00, 0x92, 0x01, 0x00, 0x96, 0x02, 0x00, 0x00, 0x97, 0x02, 0x01, 0x10},
		{0xC0, 0x03, 0x00, 0x90, 0x00, 0x97, 0x81, 0x01, 0x00},
		{0x5F, 0x46, 0x04, 0x00},
	} {
		f.Add(s, uint16(0x9000))
	}
	f.Fuzz(func(t *testing.T, body []byte, sw uint16) {
		resp, err := parseSession("fuzz", body, sw)
		if err == nil && sw != 0x9000 {
			t.Fatal("accepted a non-9000 answer")
		}
		var se *SessionError
		if errors.As(err, &se) && se.SW == 0x9000 && se.Index == 0 {
			t.Fatal("SessionError for a good status")
		}
		if err == nil && len(resp) > len(body) {
			t.Fatal("response longer than the answer")
		}
	})
}
