package st25dv_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/fixtures/proto/ndef" // leaf codec: the one rigs/ import emulators may use
)

// TestAndroidSequence replays the frames Android's NFC stack sends to an
// ST25DV64KC (AOSP system/nfc src/nfc/tags/rw_i93.cc, src/nfa/rw/nfa_rw_act.cc
// as of Android 12, LineageOS lineage-19.1) against a tag whose MCU wrote a
// URI + AAR NDEF image (AN4911 §3.3 CC; Android NdefRecord.createApplicationRecord).
func TestAndroidSequence(t *testing.T) {
	u := uidAir
	img, err := ndef.EncodeT5T([]ndef.Record{ndef.URIRecord("https://example.com/app"), ndef.AARRecord("com.example.app")}, st25dv.UserSize)
	if err != nil {
		t.Fatal(err)
	}
	tag := newTag(t, st25dv.Config{UserMemory: img})
	steps := []struct{ what, req, want string }{
		{"discovery inventory", "26 01 00", "00 00 " + u},
		{"activation: get system info", "22 2B " + u, "00 0B " + u + " 00 00 51"},
		{"ST UID, no memory size: ext get system info", "22 3B 1F " + u, "00 1F " + u + " 00 00 FF 07 03 51"},
		{"CC read with the extended flag still set", "22 30 " + u + " 00 00", "00 E2 40 00 01"},
		{"CC read, stack without step 2", "22 20 " + u + " 00", "00 E2 40 00 01"},
		{"presence check: full 64-bit mask", "26 01 40 " + u, "00 00 " + u},
	}
	for _, s := range steps {
		got := rf(t, tag, s.req)
		if !bytes.Equal(got, hx(s.want)) {
			t.Fatalf("%s: %s\n got  % X\n want %s", s.what, s.req, got, s.want)
		}
	}
	// TLV search with Ext Read Multiple of 32 blocks (128 bytes).
	got := rf(t, tag, "22 33 "+u+" 00 00 1F 00")
	if len(got) != 1+128 || !bytes.Equal(got[1:1+len(img)], img) {
		t.Fatalf("ext read multiple: % X", got)
	}
	// Read-only check: Ext Get Multiple Block Security Status in chunks of ≤ 253 blocks.
	got = rf(t, tag, "22 3C "+u+" 00 00 FC 00")
	if len(got) != 1+253 || got[0] != 0 || bytes.Count(got[1:], []byte{0}) != 253 {
		t.Fatalf("security status: %d bytes", len(got))
	}
	got = rf(t, tag, "22 3C "+u+" FA 07 FC 00") // runs past the end: no error, truncated
	if len(got) != 1+6 {
		t.Fatalf("security status at the end: % X", got)
	}
	recs, err := ndef.DecodeT5T(img)
	if err != nil || len(recs) != 2 {
		t.Fatalf("image does not decode: %v", err)
	}
}

// FuzzI2C runs arbitrary transactions (device, write bytes, read length)
// against a tag with the mailbox on: no panic, NACK indexes within the
// transaction, never both PUT bits.
func FuzzI2C(f *testing.F) {
	f.Add(byte(0x53), []byte{0x20, 0x08, 1, 2, 3}, uint16(0))
	f.Add(byte(0x53), []byte{0x20, 0x06}, uint16(300))
	f.Add(byte(0x57), []byte{0x09, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0, 0, 0, 0, 0, 0, 0}, uint16(0))
	f.Add(byte(0x57), []byte{0x00, 0x0E, 0x3A}, uint16(1))
	f.Add(byte(0x55), []byte{}, uint16(0))
	f.Add(byte(0x53), []byte{0x1F, 0xFE}, uint16(20))
	f.Fuzz(func(t *testing.T, dev byte, w []byte, rlen uint16) {
		tag := st25dv.New(st25dv.Config{FTM: 0x01})
		tag.SetVCC(true)
		tag.FieldOn()
		tgt := tag.I2C()
		_ = presentI2CPassword(tag, [8]byte{})
		_ = tgt.Tx(0x53, []byte{0x20, 0x06, 0x01}, nil)
		if _, err := tag.Transceive(context.Background(), hx("02 AA 02 00 77")); err != nil {
			t.Fatal(err)
		}
		r := make([]byte, int(rlen)%600)
		err := tgt.Tx(uint16(dev&0x7F), w, r)
		var nack *bus.NACKError
		switch {
		case err == nil:
		case errors.As(err, &nack):
			if nack.Index < 0 || nack.Index > len(w) {
				t.Fatalf("NACK index %d outside a %d-byte write", nack.Index, len(w))
			}
		default:
			t.Fatalf("non-NACK error %v", err)
		}
		var st [1]byte
		if err := tgt.Tx(0x53, []byte{0x20, 0x06}, st[:]); err == nil && st[0]&0x06 == 0x06 {
			t.Fatalf("MB_CTRL_Dyn = %02Xh", st[0])
		}
		if _, err := tag.Transceive(context.Background(), hx("02 2B")); err != nil {
			t.Fatal(err)
		}
	})
}
