package nfc_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/rigs/nfc"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// recorder is a fake Transport: it records every frame and plays scripted
// replies in order ("" = silence).
type recorder struct {
	sent    [][]byte
	replies []string
	closed  bool
}

func (r *recorder) Transceive(_ context.Context, frame []byte) ([]byte, error) {
	r.sent = append(r.sent, bytes.Clone(frame))
	if len(r.replies) == 0 {
		return nil, fmt.Errorf("recorder: unexpected frame % X", frame)
	}
	rep := r.replies[0]
	r.replies = r.replies[1:]
	if rep == "" {
		return nil, nfc.ErrNoResponse
	}
	return hx(rep), nil
}

func (r *recorder) Close() error { r.closed = true; return nil }

var (
	uidMSB = [8]byte{0xE0, 0x02, 0x51, 0x00, 0x06, 0x11, 0x84, 0xD9}
)

const uidAir = "D9 84 11 06 00 51 02 E0"

// TestPinnedFrames pins the frames each method sends and how it reads the
// answers.
func TestPinnedFrames(t *testing.T) {
	u := uidAir
	ctx := context.Background()
	addressed := []nfc.Option{nfc.WithUID(uidMSB)}
	tests := []struct {
		name    string
		opts    []nfc.Option
		call    func(d *nfc.ST25DV) (any, error)
		replies []string
		frames  []string
		want    string // fmt %v of the result
	}{
		{"inventory", nil,
			func(d *nfc.ST25DV) (any, error) {
				uid, dsfid, err := d.Inventory(ctx)
				return fmt.Sprintf("% X/%02X", uid, dsfid), err
			},
			[]string{"00 00 " + u}, []string{"26 01 00"}, "E0 02 51 00 06 11 84 D9/00"},
		{"inventory low rate", []nfc.Option{nfc.WithHighDataRate(false)},
			func(d *nfc.ST25DV) (any, error) { _, _, err := d.Inventory(ctx); return nil, err },
			[]string{"00 00 " + u}, []string{"24 01 00"}, "<nil>"},
		{"addressed without UID runs inventory first", nil,
			func(d *nfc.ST25DV) (any, error) { return d.ReadDynConfig(ctx, 0x0D) },
			[]string{"00 00 " + u, "00 85"}, []string{"26 01 00", "22 AD 02 " + u + " 0D"}, "133"},
		{"system info", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.SystemInfo(ctx) },
			[]string{"00 0F " + u + " 00 00 FF 07 03 51"}, []string{"22 3B 0F " + u},
			"{[224 2 81 0 6 17 132 217] 0 0 2048 4 81}"},
		{"system info non-addressed", []nfc.Option{nfc.WithAddressed(false)},
			func(d *nfc.ST25DV) (any, error) { si, err := d.SystemInfo(ctx); return si.MemoryBytes(), err },
			[]string{"00 0F " + u + " 00 00 FF 07 03 51"}, []string{"02 3B 0F"}, "8192"},
		{"read single block", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0, 1) },
			[]string{"00 E2 40 00 01"}, []string{"22 20 " + u + " 00"}, "[226 64 0 1]"},
		{"read two blocks", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0, 2) },
			[]string{"00 E2 40 00 01 00 00 03 FF"}, []string{"22 23 " + u + " 00 01"}, "[226 64 0 1 0 0 3 255]"},
		{"read above block FFh uses extended", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0x100, 2) },
			[]string{"00 01 02 03 04 05 06 07 08"}, []string{"22 33 " + u + " 00 01 01 00"}, "[1 2 3 4 5 6 7 8]"},
		{"read single block 7FFh", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0x7FF, 1) },
			[]string{"00 01 02 03 04"}, []string{"22 30 " + u + " FF 07"}, "[1 2 3 4]"},
		{"read crossing FFh uses extended for all", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0xFF, 2) },
			[]string{"00 01 02 03 04 05 06 07 08"}, []string{"22 33 " + u + " FF 00 01 00"}, "[1 2 3 4 5 6 7 8]"},
		{"read split in chunks", append([]nfc.Option{nfc.WithMaxReadBlocks(2)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 4, 3) },
			[]string{"00 01 01 01 01 02 02 02 02", "00 03 03 03 03"},
			[]string{"22 23 " + u + " 04 01", "22 20 " + u + " 06"}, "[1 1 1 1 2 2 2 2 3 3 3 3]"},
		{"read truncated at area border continues", append([]nfc.Option{nfc.WithMaxReadBlocks(4)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 6, 4) },
			[]string{"00 01 01 01 01 02 02 02 02", "00 03 03 03 03 04 04 04 04"},
			[]string{"22 23 " + u + " 06 03", "22 23 " + u + " 08 01"}, "[1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 4]"},
		{"fast read single", append([]nfc.Option{nfc.WithFastCommands(true)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 3, 1) },
			[]string{"00 01 02 03 04"}, []string{"22 C0 02 " + u + " 03"}, "[1 2 3 4]"},
		{"fast ext read multiple", append([]nfc.Option{nfc.WithFastCommands(true)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.ReadBlocks(ctx, 0x200, 2) },
			[]string{"00 01 02 03 04 05 06 07 08"}, []string{"22 C5 02 " + u + " 00 02 01 00"}, "[1 2 3 4 5 6 7 8]"},
		{"write single blocks", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteBlocks(ctx, 5, hx("01020304 05060708")) },
			[]string{"00", "00"}, []string{"22 21 " + u + " 05 01 02 03 04", "22 21 " + u + " 06 05 06 07 08"}, "<nil>"},
		{"write above FFh uses extended", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteBlocks(ctx, 0x400, hx("AABBCCDD")) },
			[]string{"00"}, []string{"22 31 " + u + " 00 04 AA BB CC DD"}, "<nil>"},
		{"write multiple, 4-block aligned groups", append([]nfc.Option{nfc.WithMultiBlockWrite(true)}, addressed...),
			func(d *nfc.ST25DV) (any, error) {
				return nil, d.WriteBlocks(ctx, 2, hx("11111111 22222222 33333333"))
			},
			[]string{"00", "00"},
			[]string{"22 24 " + u + " 02 01 11 11 11 11 22 22 22 22", "22 21 " + u + " 04 33 33 33 33"}, "<nil>"},
		{"read config", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadConfig(ctx, 0x0D) },
			[]string{"00 01"}, []string{"22 A0 02 " + u + " 0D"}, "1"},
		{"write config", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteConfig(ctx, 0x0D, 0x01) },
			[]string{"00"}, []string{"22 A1 02 " + u + " 0D 01"}, "<nil>"},
		{"read dyn config", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadDynConfig(ctx, 0x02) },
			[]string{"00 0C"}, []string{"22 AD 02 " + u + " 02"}, "12"},
		{"write dyn config", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteDynConfig(ctx, 0x0D, 0x01) },
			[]string{"00"}, []string{"22 AE 02 " + u + " 0D 01"}, "<nil>"},
		{"fast write dyn config", append([]nfc.Option{nfc.WithFastCommands(true)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return nil, d.SetMailbox(ctx, true) },
			[]string{"00"}, []string{"22 CE 02 " + u + " 0D 01"}, "<nil>"},
		{"present password", addressed,
			func(d *nfc.ST25DV) (any, error) {
				return nil, d.PresentPassword(ctx, 0, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
			},
			[]string{"00"}, []string{"22 B3 02 " + u + " 00 01 02 03 04 05 06 07 08"}, "<nil>"},
		{"write password", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WritePassword(ctx, 1, [8]byte{9}) },
			[]string{"00"}, []string{"22 B1 02 " + u + " 01 09 00 00 00 00 00 00 00"}, "<nil>"},
		{"mailbox status", addressed,
			func(d *nfc.ST25DV) (any, error) { m, err := d.MailboxStatus(ctx); return m.String(), err },
			[]string{"00 85"}, []string{"22 AD 02 " + u + " 0D"}, "85h[MB_EN|RF_PUT|RF_CURRENT]"},
		{"write message", addressed,
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteMessage(ctx, hx("01 02 03 04")) },
			[]string{"00"}, []string{"22 AA 02 " + u + " 03 01 02 03 04"}, "<nil>"},
		{"write message non-addressed (datasheet example)", []nfc.Option{nfc.WithAddressed(false)},
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteMessage(ctx, hx("01 02 03 04")) },
			[]string{"00"}, []string{"02 AA 02 03 01 02 03 04"}, "<nil>"},
		{"fast write message", append([]nfc.Option{nfc.WithFastCommands(true)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return nil, d.WriteMessage(ctx, hx("55")) },
			[]string{"00"}, []string{"22 CA 02 " + u + " 00 55"}, "<nil>"},
		{"read message whole", addressed,
			func(d *nfc.ST25DV) (any, error) { return d.ReadMessage(ctx) },
			[]string{"00 03", "00 01 02 03 04"},
			[]string{"22 AB 02 " + u, "22 AC 02 " + u + " 00 00"}, "[1 2 3 4]"},
		{"read message chunked", append([]nfc.Option{nfc.WithMaxMessageChunk(2)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.ReadMessage(ctx) },
			[]string{"00 04", "00 01 02", "00 03 04", "00 05"},
			[]string{"22 AB 02 " + u, "22 AC 02 " + u + " 00 01", "22 AC 02 " + u + " 02 01", "22 AC 02 " + u + " 04 00"},
			"[1 2 3 4 5]"},
		{"read message low rate", append([]nfc.Option{nfc.WithHighDataRate(false)}, addressed...),
			func(d *nfc.ST25DV) (any, error) { return d.MessageLength(ctx) },
			[]string{"00 FF"}, []string{"20 AB 02 " + u}, "256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{replies: tc.replies}
			d := nfc.NewST25DV(rec, tc.opts...)
			got, err := tc.call(d)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if s := fmt.Sprintf("%v", got); s != tc.want {
				t.Errorf("result %s, want %s", s, tc.want)
			}
			if len(rec.sent) != len(tc.frames) {
				t.Fatalf("sent %d frames, want %d: % X", len(rec.sent), len(tc.frames), rec.sent)
			}
			for i, f := range tc.frames {
				if !bytes.Equal(rec.sent[i], hx(f)) {
					t.Errorf("frame %d\n got  % X\n want % X", i, rec.sent[i], hx(f))
				}
			}
			if len(rec.replies) != 0 {
				t.Errorf("%d scripted replies unused", len(rec.replies))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{replies: []string{"01 0F"}}
	d := nfc.NewST25DV(rec, nfc.WithUID(uidMSB))
	err := d.WriteMessage(ctx, []byte{1})
	var iso *nfc.ISOError
	if !errors.As(err, &iso) || iso.Code != nfc.CodeUnknown {
		t.Fatalf("err = %v, want ISOError 0Fh", err)
	}
	if !errors.Is(err, &nfc.ISOError{Code: 0x0F}) || errors.Is(err, &nfc.ISOError{Code: 0x10}) {
		t.Fatal("errors.Is on ISOError codes")
	}
	if want := "st25dv: write message: iso15693: error 0Fh (unspecified error)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}

	// Out-of-range messages are refused before anything is sent.
	for _, n := range []int{0, 257} {
		if err := d.WriteMessage(ctx, make([]byte, n)); err == nil {
			t.Fatalf("WriteMessage(%d bytes) accepted", n)
		}
	}
	for _, call := range []func() error{
		func() error { return d.WriteBlocks(ctx, 0, []byte{1, 2, 3}) },
		func() error { _, err := d.ReadBlocks(ctx, -1, 1); return err },
		func() error { _, err := d.ReadBlocks(ctx, 0, 0); return err },
	} {
		if call() == nil {
			t.Fatal("invalid argument accepted")
		}
	}
	if len(rec.sent) != 1 {
		t.Fatalf("frames sent for invalid calls: % X", rec.sent[1:])
	}

	// Silence and malformed answers.
	rec = &recorder{replies: []string{"", "01", "00 01 02"}}
	d = nfc.NewST25DV(rec, nfc.WithUID(uidMSB))
	if _, err := d.ReadDynConfig(ctx, 0x0D); !errors.Is(err, nfc.ErrNoResponse) {
		t.Fatalf("silence: %v", err)
	}
	if _, err := d.ReadDynConfig(ctx, 0x0D); err == nil {
		t.Fatal("error flag without code accepted")
	}
	if _, err := d.ReadDynConfig(ctx, 0x0D); err == nil {
		t.Fatal("2-byte value accepted for a register")
	}
	if err := d.Close(); err != nil || !rec.closed {
		t.Fatal("Close not passed to the transport")
	}
}

func TestISOErrorNames(t *testing.T) {
	for code, want := range map[byte]string{0x01: "command not supported", 0x12: "block locked", 0x15: "block read-protected", 0xA3: "custom error", 0x40: "RFU error"} {
		if got := (&nfc.ISOError{Code: code}).Name(); got != want {
			t.Errorf("%02Xh: %q, want %q", code, got, want)
		}
	}
}

func TestParseMBCtrl(t *testing.T) {
	for v, want := range map[byte]nfc.MBCtrl{
		0x00: {},
		0x01: {Enabled: true, Raw: 0x01},
		0x43: {Enabled: true, HostPut: true, HostCurrent: true, Raw: 0x43},
		0x85: {Enabled: true, RFPut: true, RFCurrent: true, Raw: 0x85},
		0x61: {Enabled: true, RFMiss: true, HostCurrent: true, Raw: 0x61},
		0x91: {Enabled: true, HostMiss: true, RFCurrent: true, Raw: 0x91},
	} {
		if got := nfc.ParseMBCtrl(v); got != want {
			t.Errorf("%02Xh: %+v, want %+v", v, got, want)
		}
	}
	if !nfc.ParseMBCtrl(0x41).Free() || nfc.ParseMBCtrl(0x43).Free() || nfc.ParseMBCtrl(0x00).Free() {
		t.Error("Free()")
	}
}

// TestReadNDEFPinned: CC + first TLV bytes from blocks 0..1, then the rest
// of the TLV, within the T5T area.
func TestReadNDEFPinned(t *testing.T) {
	u := uidAir
	// URI https://a.b on a 512-byte tag: E1 CC, NDEF TLV of 8 bytes, terminator.
	image := hx("E1 40 40 01 03 08 D1 01 04 55 04 61 2E 62 FE 00")
	rec := &recorder{replies: []string{
		"00 " + hex.EncodeToString(image[:8]),
		"00 " + hex.EncodeToString(image[8:16]),
	}}
	d := nfc.NewST25DV(rec, nfc.WithUID(uidMSB), nfc.WithMaxReadBlocks(2))
	recs, err := d.ReadNDEF(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	if uri, ok := recs[0].URI(); !ok || uri != "https://a.b" {
		t.Fatalf("URI %q", uri)
	}
	want := []string{"22 23 " + u + " 00 01", "22 23 " + u + " 02 01"}
	if len(rec.sent) != len(want) {
		t.Fatalf("frames % X, want %v", rec.sent, want)
	}
	for i, f := range want {
		if !bytes.Equal(rec.sent[i], hx(f)) {
			t.Fatalf("frame %d % X, want %s", i, rec.sent[i], f)
		}
	}
}
