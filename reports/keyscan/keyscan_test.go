package keyscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The AES-128 key of FIPS-197 Appendix A / RFC 4493 §4, whose
// AES-128(K, 0¹²⁸) is RFC 4493's L = 7df76b0c… (§4, "Subkey Generation").
var key = [16]byte{0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C}

func TestCheckValue(t *testing.T) {
	if got := CheckValue(key); got != "7DF76B" {
		t.Fatalf("KCV %s, want 7DF76B (RFC 4493 §4: L = 7df76b0c…)", got)
	}
}

func TestScanFindsEveryEncoding(t *testing.T) {
	s := New([][16]byte{key})
	b64 := base64.StdEncoding.EncodeToString(key[:])
	for _, tc := range []struct {
		text, enc string
	}{
		{"appkey=2b7e151628aed2a6abf7158809cf4f3c\n", "hex"},
		{"AppKey 2B7E151628AED2A6ABF7158809CF4F3C", "hex"},
		{"key: 2b7E151628aEd2a6ABF7158809cf4f3C.", "hex"},
		{"2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F:3C", "hex with separators"},
		{"2b 7e 15 16 28 ae d2 a6 ab f7 15 88 09 cf 4f 3c", "hex with separators"},
		{"2B-7E-15-16-28-AE-D2-A6-AB-F7-15-88-09-CF-4F-3C", "hex with separators"},
		{"{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}", "hex with separators"},
		{"3c4fcf098815f7aba6d2ae2816157e2b", "hex, LSB first"},
		{"[43 126 21 22 40 174 210 166 171 247 21 136 9 207 79 60]", "decimal bytes"},
		{"[43, 126, 21, 22, 40, 174, 210, 166, 171, 247, 21, 136, 9, 207, 79, 60]", "decimal bytes"},
		{`{"appKey":"` + b64 + `"}`, "base64"},
		{`"` + strings.TrimRight(b64, "=") + `"`, "base64"},
		{base64.URLEncoding.EncodeToString(append([]byte{0xFB, 0xFF}, key[:]...)), "base64"},
		{"frame " + base64.StdEncoding.EncodeToString(append([]byte{1, 2, 3, 4, 5}, append(key[:], 9, 9)...)), "base64"},
		{"bin:" + string(key[:]) + ":end", "raw bytes"},
		{fmt.Sprintf("%#v", key[:]), "hex with separators"},
		{fmt.Sprintf("%q", key[:]), "quoted bytes"},
		{slogLine(), "quoted bytes"},
		{"level=DEBUG appkey=" + base64.RawStdEncoding.EncodeToString(key[:]) + " dev=1", "base64"},
		{"appkey=" + b64 + " next", "base64"},
		{"/v1/keys/" + base64.RawURLEncoding.EncodeToString(append([]byte{0xFF, 0xFE}, key[:]...)), "base64"},
	} {
		hits := s.Scan("out.txt", []byte(tc.text))
		var encs []string
		for _, h := range hits {
			encs = append(encs, h.Encoding)
			if h.KCV != CheckValue(key) || h.File != "out.txt" {
				t.Errorf("%q: hit %+v", tc.text, h)
			}
		}
		if !strings.Contains(strings.Join(encs, "|"), tc.enc) {
			t.Errorf("%q: found %v, want %q", tc.text, encs, tc.enc)
		}
	}
}

// slogLine is a debug line as slog's text handler writes a []byte value.
func slogLine() string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})).Debug("nvm: store", "key", key[:])
	return b.String()
}

func TestScanNoFalseHits(t *testing.T) {
	s := New([][16]byte{key})
	near := key
	near[15] ^= 1
	for _, text := range []string{
		hex.EncodeToString(near[:]),
		"2b7e151628aed2a6abf7158809cf4f",        // 15 bytes
		"2b7e151628aed2a6 key abf7158809cf4f3c", // a word between the halves

		base64.StdEncoding.EncodeToString(near[:]),
		"DevEUI 0080E11500000001 JoinEUI 70B3D57ED0000001 KCV " + CheckValue(key),
		"[43 126 21 22 40 174 210 166 171 247 21 136 9 207 79 61]",
	} {
		if hits := s.Scan("x", []byte(text)); len(hits) != 0 {
			t.Errorf("%q: %v", text, hits)
		}
	}
}

func TestEscrowRoundTripAndScanDir(t *testing.T) {
	dir := t.TempDir()
	ek, err := NewEscrowKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFile, filepath.Join(dir, EscrowFile))
	t.Setenv(EnvKey, hex.EncodeToString(ek[:]))
	other := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if err := Escrow(key, other); err != nil {
		t.Fatal(err)
	}
	if err := Escrow(key); err != nil { // a duplicate
		t.Fatal(err)
	}
	esc, _ := os.ReadFile(filepath.Join(dir, EscrowFile))
	if bytes.Contains(bytes.ToLower(esc), []byte(hex.EncodeToString(key[:]))) || bytes.Contains(esc, key[:]) {
		t.Fatal("the escrow holds a key in clear")
	}
	keys, err := ReadEscrow(filepath.Join(dir, EscrowFile), ek)
	if err != nil || len(keys) != 2 || keys[0] != key || keys[1] != other {
		t.Fatalf("escrow read back %d keys, %v", len(keys), err)
	}
	// A process that could not escrow (a wrong key in its environment):
	// the escrow no longer reads, so the run cannot pass unchecked.
	t.Setenv(EnvKey, "00")
	if err := Escrow(key); err == nil {
		t.Fatal("escrow with a malformed key")
	}
	if _, err := ReadEscrow(filepath.Join(dir, EscrowFile), ek); err == nil || !strings.Contains(err.Error(), "could not escrow") {
		t.Fatalf("after a failed escrow: %v", err)
	}
	os.Remove(filepath.Join(dir, EscrowFile+FailedSuffix))
	var wrong [32]byte
	if _, err := ReadEscrow(filepath.Join(dir, EscrowFile), wrong); err == nil {
		t.Fatal("the escrow opened with another key")
	}

	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "console.log"), []byte("ok\nDEBUG AppKey="+hex.EncodeToString(key[:])+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "report.json"), []byte(`{"k":"`+base64.StdEncoding.EncodeToString(other[:])+`"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "clean.txt"), []byte("nothing here"), 0o644)
	res, err := New(keys).ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Keys != 2 {
		t.Errorf("files %d keys %d, want 3 and 2 (the escrow skipped)", res.Files, res.Keys)
	}
	got := fmt.Sprint(res.Hits)
	if len(res.Hits) != 2 || !strings.Contains(got, "console.log: key KCV "+CheckValue(key)+" as hex") ||
		!strings.Contains(got, filepath.Join("sub", "report.json")+": key KCV "+CheckValue(other)+" as base64") {
		t.Errorf("hits %v", got)
	}
	if strings.Contains(got, hex.EncodeToString(key[:])) {
		t.Error("a hit names the key")
	}
}

// BenchmarkScan: a debug log's worth of text (hex payloads, EUIs, base64
// frames) against a fleet's keys. Reports MB/s.
func BenchmarkScan(b *testing.B) {
	keys := make([][16]byte, 1000)
	for i := range keys {
		keys[i][0], keys[i][1], keys[i][15] = byte(i), byte(i>>8), 0xA5
	}
	s := New(keys)
	var buf bytes.Buffer
	for i := 0; buf.Len() < 8<<20; i++ {
		fmt.Fprintf(&buf, "time=2026-12-06T20:00:00Z level=DEBUG msg=\"lorawan: uplink\" dev=0080E115%08X payload=%x frame=%s\n",
			i, []byte(fmt.Sprint(i*7919)), base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("frame %d of the fleet run", i))))
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if hits := s.Scan("log", data); len(hits) != 0 {
			b.Fatal(hits)
		}
	}
}
