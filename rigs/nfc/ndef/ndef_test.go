package ndef_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/rigs/nfc/ndef"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func asHex(s string) string { return hex.EncodeToString([]byte(s)) }

// TestWorkedExample is the image of reference §10.3: URI
// https://example.com/app + AAR com.example.app on a 64KC → 64 bytes.
func TestWorkedExample(t *testing.T) {
	recs := []ndef.Record{ndef.URIRecord("https://example.com/app"), ndef.AARRecord("com.example.app")}
	img, err := ndef.EncodeT5T(recs, 8192)
	if err != nil {
		t.Fatal(err)
	}
	want := hx("E2 40 00 01 00 00 03 FF" + "03 35" +
		"91 01 10 55 04" + asHex("example.com/app") +
		"54 0F 0F" + asHex("android.com:pkg") + asHex("com.example.app") + "FE")
	if !bytes.Equal(img, want) {
		t.Fatalf("image\n got  % X\n want % X", img, want)
	}
	if len(img) != 64 {
		t.Fatalf("image is %d bytes, want 64 (blocks 00h..0Fh)", len(img))
	}
	got, err := ndef.DecodeT5T(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	if u, ok := got[0].URI(); !ok || u != "https://example.com/app" {
		t.Fatalf("URI = %q, %v", u, ok)
	}
	if got[1].TNF != ndef.TNFExternal || string(got[1].Type) != "android.com:pkg" || string(got[1].Payload) != "com.example.app" {
		t.Fatalf("AAR = %v", got[1])
	}
}

func TestEncodeT5T(t *testing.T) {
	long := bytes.Repeat([]byte{0x5A}, 300)
	tests := []struct {
		name string
		recs []ndef.Record
		mem  int
		want string // hex prefix of the image
	}{
		{"empty message, 4-byte CC (04KC, 512 B)", nil, 512, "E1 40 40 01 03 03 D0 00 00 FE"},
		{"empty message, 8-byte CC (64KC)", nil, 8192, "E2 40 00 01 00 00 03 FF 03 03 D0 00 00 FE"},
		{"record with ID", []ndef.Record{{TNF: ndef.TNFMedia, Type: []byte("a/b"), ID: []byte("7"), Payload: []byte{1}}}, 512,
			"E1 40 40 01 03 09 DA 03 01 01 612F62 37 01 FE"},
		{"long record, 3-byte TLV length", []ndef.Record{ndef.MediaRecord("x/y", long)}, 8192,
			"E2 40 00 01 00 00 03 FF 03 FF 01 35 C2 03 00 00 01 2C 782F79"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ndef.EncodeT5T(tc.recs, tc.mem)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(img, hx(tc.want)) {
				t.Fatalf("image % X\nwant prefix % X", img, hx(tc.want))
			}
			back, err := ndef.DecodeT5T(img)
			if err != nil {
				t.Fatal(err)
			}
			if tc.recs == nil {
				if len(back) != 1 || back[0].TNF != ndef.TNFEmpty {
					t.Fatalf("empty message decoded as %v", back)
				}
				return
			}
			if len(back) != len(tc.recs) || !bytes.Equal(back[0].Payload, tc.recs[0].Payload) || !bytes.Equal(back[0].ID, tc.recs[0].ID) {
				t.Fatalf("round trip: %v", back)
			}
		})
	}
	if _, err := ndef.EncodeT5T([]ndef.Record{ndef.MediaRecord("x/y", long)}, 256); err == nil {
		t.Fatal("oversized image accepted")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		image   string
		want    error // nil: success
		records int
	}{
		{"initialised (L=0)", "E1 40 40 01 03 00 FE", nil, 0},
		{"null and proprietary TLVs skipped", "E1 40 40 01 00 FD 02 AA BB 03 03 D0 00 00 FE", nil, 1},
		{"terminator only", "E1 40 40 01 FE", ndef.ErrNoNDEF, 0},
		{"8-byte CC with E1 magic", "E1 40 00 01 00 00 00 10 03 03 D0 00 00 FE", nil, 1},
		{"bad magic", "E3 40 40 01 03 00 FE", ndef.ErrBadCC, 0},
		{"bad major version", "E1 80 40 01 03 00 FE", ndef.ErrBadCC, 0},
		{"chunked record", "E1 40 40 01 03 04 B1 01 00 55 FE", ndef.ErrChunked, 0},
		{"truncated record", "E1 40 40 01 03 04 D1 01 05 55 FE", ndef.ErrTruncated, 0},
		{"TLV past the area", "E1 40 01 01 03 10 D0 00 00", ndef.ErrTruncated, 0},
		{"short CC", "E1 40", ndef.ErrTruncated, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ndef.DecodeT5T(hx(tc.image))
			if tc.want == nil {
				if err != nil || len(recs) != tc.records {
					t.Fatalf("recs %v, err %v", recs, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	for _, msg := range []string{
		"51 01 00 55",          // MB missing
		"D1 01 01 55 00 00",    // trailing bytes
		"91 01 01 55 00",       // ME never comes
		"C1 01 00 00 01 00 55", // long payload length beyond the buffer
	} {
		if _, err := ndef.DecodeMessage(hx(msg)); err == nil {
			t.Errorf("DecodeMessage(%s) accepted", msg)
		}
	}
}

func TestURIRecord(t *testing.T) {
	for uri, code := range map[string]byte{
		"https://www.st.com": 0x02, "https://example.com": 0x04, "tel:+33123": 0x05,
		"urn:epc:id:sgtin": 0x1E, "urn:x": 0x13, "foo:bar": 0x00,
	} {
		r := ndef.URIRecord(uri)
		if r.Payload[0] != code {
			t.Errorf("%s: code %02Xh, want %02Xh", uri, r.Payload[0], code)
		}
		if back, ok := r.URI(); !ok || back != uri {
			t.Errorf("%s: round trip %q", uri, back)
		}
	}
}

func TestEncodeMessageRejects(t *testing.T) {
	for _, r := range []ndef.Record{
		{TNF: ndef.TNFUnchanged},
		{TNF: 9},
		{TNF: ndef.TNFEmpty, Payload: []byte{1}},
		{TNF: ndef.TNFMedia, Type: make([]byte, 256)},
	} {
		if _, err := ndef.EncodeMessage([]ndef.Record{r}); err == nil {
			t.Errorf("EncodeMessage(%v) accepted", r)
		}
	}
}

func FuzzDecodeT5T(f *testing.F) {
	f.Add(hx("E2 40 00 01 00 00 03 FF 03 03 D0 00 00 FE"))
	f.Add(hx("E1 40 40 01 00 FD 02 AA BB 03 03 D0 00 00 FE"))
	f.Add(hx("E1 40 40 01 03 FF 00 05 C1 01 00 00 00 01 55 00"))
	f.Fuzz(func(t *testing.T, img []byte) {
		recs, err := ndef.DecodeT5T(img)
		if err != nil || len(recs) == 0 {
			return
		}
		// Whatever decodes must re-encode and decode to the same records.
		msg, err := ndef.EncodeMessage(recs)
		if err != nil {
			return // e.g. TNF 7 read from the tag
		}
		back, err := ndef.DecodeMessage(msg)
		if err != nil || len(back) != len(recs) {
			t.Fatalf("re-decode: %v %v", back, err)
		}
	})
}
