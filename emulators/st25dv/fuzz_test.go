package st25dv_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tap2join/tap2join/emulators/st25dv"
)

// FuzzTransceive feeds arbitrary frames to a tag with the mailbox enabled and
// a host message pending. The chip must never panic, must answer with a
// well-formed response or silence, and must never reach MB_CTRL_Dyn states
// with both PUT bits set (47h; ST treated it as abnormal in the ST community
// thread "MB_CTRL_Dyn=0x47 what is happening?").
func FuzzTransceive(f *testing.F) {
	for _, s := range []string{
		"", "02", "26", "26 01", "26 01 00", "26 01 40 D9 84 11 06 00 51 02 E0", "06 01 3C FF",
		"02 2B", "22 2B D9 84", "02 3B", "22 3B 1F D9 84 11 06 00 51 02 E0", "02 20", "02 20 00",
		"42 23 00 FF", "02 33 FF FF FF FF", "02 30 FF 07", "02 21 00 01 02 03", "02 24 00 03",
		"02 34 FF 07 03 00 00 00 00 00", "02 AA 02", "02 AA 02 00", "02 AA 02 FF 00", "02 AB 02",
		"02 AC 02 00 00", "02 AC 02 FF FF", "02 AD 02 0D", "02 AE 02 0D 00", "02 A0 02 FF",
		"02 A1 02 05 00", "02 B3 02 00 00 00 00 00 00 00 00 00", "02 B1 02 07", "02 A9 02 80",
		"02 CA 02 00 01", "03 CC 02 00 00", "32 25 D9 84 11 06 00 51 02 E0", "22 02", "FF FF FF",
		"02 22 00", "02 27 05", "02 2A", "02 2C 00 FF", "02 3C 00 08 FF FF", "02 AB 03",
	} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		tag := st25dv.New(st25dv.Config{FTM: 0x03})
		tag.SetVCC(true)
		tag.FieldOn()
		if err := tag.I2C().Tx(0x53, []byte{0x20, 0x06, 0x01}, nil); err != nil {
			t.Fatal(err)
		}
		if err := tag.I2C().Tx(0x53, []byte{0x20, 0x08, 0xAA, 0xBB}, nil); err != nil {
			t.Fatal(err)
		}
		in := bytes.Clone(req)
		for i := 0; i < 2; i++ { // twice: the first may change state
			resp, err := tag.Transceive(context.Background(), req)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if resp != nil {
				switch {
				case len(resp) == 0:
					t.Fatal("empty non-nil response")
				case resp[0] == 0x01 && len(resp) != 2:
					t.Fatalf("malformed error response % X", resp)
				case resp[0] != 0x00 && resp[0] != 0x01:
					t.Fatalf("bad response flags % X", resp)
				}
			}
		}
		if !bytes.Equal(in, req) {
			t.Fatal("Transceive modified its input")
		}
		r := make([]byte, 1)
		if err := tag.I2C().Tx(0x53, []byte{0x20, 0x06}, r); err != nil {
			t.Fatal(err)
		}
		if r[0]&0x06 == 0x06 {
			t.Fatalf("MB_CTRL_Dyn = %02Xh: both PUT bits", r[0])
		}
	})
}
