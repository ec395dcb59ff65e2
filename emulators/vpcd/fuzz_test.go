package vpcd_test

import (
	"bytes"
	"testing"

	"github.com/tap2join/tap2join/emulators/vpcd"
)

// FuzzAPDU feeds arbitrary command APDUs to the virtual reader (both
// profiles, ST25DV twin in the field). It must never panic and must always
// answer with at least SW1 SW2; the parsers must agree with themselves.
func FuzzAPDU(f *testing.F) {
	for _, s := range []string{
		"", "FF", "FF CA 00", "FF CA 00 00 00", "FF CA 00 00", "FF B0 00 00 00", "FF B0 07 FF 08",
		"FF B0 00 00 00 00 00", "FF D6 00 00 04 01 02 03 04", "FF D6 07 FF 04 01 02 03 04",
		"FF C2 00 00 02 81 00 00", "FF C2 00 02 04 8F 02 02 03 00", "FF C2 00 01 05 95 03 26 01 00 00",
		"FF C2 00 01 10 5F 46 04 40 42 0F 00 90 02 00 00 95 03 02 20 00 00", "FF C2 00 01 03 95 81 02",
		"FF C2 00 01 04 95 82 00 01", "FF C2 00 00 02 83 00", "FF C2 00 01 02 94 00",
		"FF FB 00 00 02 20 00", "FF FB 00 00 03 AD 02 0D", "00 A4 04 00 00",
	} {
		f.Add(hx(s), false)
		f.Add(hx(s), true)
	}
	f.Fuzz(func(t *testing.T, apdu []byte, acr bool) {
		tag := newTag()
		tag.FieldOn()
		p := vpcd.ProfileTransparent
		if acr {
			p = vpcd.ProfileACR1552
		}
		c := vpcd.NewCard(tag, vpcd.WithProfile(p))
		// Open a session first so exchanges reach the tag.
		c.Transmit(t.Context(), hx("FF C2 00 00 02 81 00 00"))
		resp := c.Transmit(t.Context(), apdu)
		if len(resp) < 2 {
			t.Fatalf("answer % X without SW", resp)
		}
		if a, err := vpcd.ParseAPDU(apdu); err == nil && len(a.Data) > len(apdu) {
			t.Fatal("data longer than the APDU")
		}
		if dos, err := vpcd.ParseTLVs(apdu); err == nil {
			var re []byte
			for _, d := range dos {
				re = vpcd.AppendTLV(re, d.Tag, d.Value)
			}
			if dos2, err := vpcd.ParseTLVs(re); err != nil || len(dos2) != len(dos) {
				t.Fatalf("TLV re-encoding does not parse back: %v", err)
			}
		}
	})
}

// FuzzVPCDFraming reads vpcd frames from an arbitrary byte stream until it
// ends: no panic, every frame re-encodes to exactly the bytes it came from.
func FuzzVPCDFraming(f *testing.F) {
	for _, s := range []string{"", "00", "00 01 04", "00 01 01 00 05 FF CA 00 00 00", "00 00", "FF FF 00", "00 03 FF"} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		var again []byte
		for {
			before := r.Len()
			msg, err := vpcd.ReadFrame(r, nil)
			if err != nil {
				break
			}
			var e error
			again, e = vpcd.AppendFrame(again, msg)
			if e != nil {
				t.Fatal(e)
			}
			if before-r.Len() != 2+len(msg) {
				t.Fatalf("consumed %d bytes for a %d-byte frame", before-r.Len(), len(msg))
			}
		}
		if !bytes.HasPrefix(stream, again) {
			t.Fatalf("re-encoded frames % X are not a prefix of the stream", again)
		}
	})
}
