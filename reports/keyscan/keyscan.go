// Package keyscan proves a run leaked no key: every key issued during a run
// is escrowed (encrypted with a key only the run's driver holds) by the
// processes that saw it, and after the run every output — the console of
// every process the driver started, every file under the run folder — is
// scanned for each of them in every encoding a log line, a report or a dump
// is likely to use:
//
//   - hex, either case, MSB or LSB first, with or without separators
//     (":", "-", " ", ",", ", ", "0x" prefixes: "2B:7E:…", "2b 7e …",
//     "0x2b, 0x7e, …");
//   - decimal bytes as Go prints a []byte ("[43 126 21 …]", also with commas),
//     and %#v's hex ("[]byte{0x2b, …, 0x9, …}": bytes below 10h in one digit);
//   - Go-quoted strings ("+~\x15\x16(\xae…": slog's text handler and %q print
//     a []byte so);
//   - base64 (standard or URL alphabet, padded or not), also inside a longer
//     base64 blob at any byte offset, and as a logfmt value (key=K37h…);
//   - the raw 16 bytes.
//
// A hit names the file, the key by its check value (KCV) and the encoding —
// never the key.
//
// The escrow is a file in the run folder (EscrowFile) of base64 lines, each
// a nonce and the key sealed with AES-256-GCM under the run's escrow key,
// which the driver hands its children in the environment (EnvKey) and never
// writes down. The driver deletes the file after the scan.
package keyscan

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Environment of the run's processes.
const (
	// EnvFile is the escrow file's path.
	EnvFile = "TAP2JOIN_KEY_ESCROW"
	// EnvKey is the escrow key, 64 hex digits.
	EnvKey = "TAP2JOIN_KEY_ESCROW_KEY"
	// EscrowFile is the escrow's name in the run folder; the scan skips it.
	EscrowFile = ".keys.escrow"
)

// NewEscrowKey makes a run's escrow key.
func NewEscrowKey() ([32]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("keyscan: escrow key: %w", err)
	}
	return k, nil
}

var escrowMu sync.Mutex

// Escrow appends keys to the escrow named by the environment (EnvFile,
// EnvKey); without them it does nothing (a process not started by a run's
// driver scans its own outputs, rigs.FindIssuedKeys). Each key is one
// sealed line, appended with O_APPEND so processes share the file.
func Escrow(keys ...[16]byte) error {
	path, khex := os.Getenv(EnvFile), os.Getenv(EnvKey)
	if path == "" && khex == "" {
		return nil
	}
	if err := escrow(path, khex, keys); err != nil {
		// The driver's scan cannot look for a key it never learnt: say so
		// where the driver looks, so the run fails instead of passing
		// without having looked (ReadEscrow).
		if f, ferr := os.OpenFile(path+FailedSuffix, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); ferr == nil {
			_, _ = fmt.Fprintf(f, "pid %d: %v\n", os.Getpid(), err)
			_ = f.Close()
		}
		return err
	}
	return nil
}

// FailedSuffix names, beside the escrow, the file a process that could not
// escrow a key writes (the escrow's path + this).
const FailedSuffix = ".failed"

func escrow(path, khex string, keys [][16]byte) error {
	if path == "" || khex == "" {
		return fmt.Errorf("keyscan: escrow: %s and %s go together", EnvFile, EnvKey)
	}
	aead, err := newAEAD(khex)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, k := range keys {
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return fmt.Errorf("keyscan: escrow: %w", err)
		}
		buf.WriteString(base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, k[:], nil)))
		buf.WriteByte('\n')
	}
	escrowMu.Lock()
	defer escrowMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keyscan: escrow: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	return errors.Join(err, f.Close())
}

func newAEAD(khex string) (cipher.AEAD, error) {
	k, err := hex.DecodeString(khex)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("keyscan: %s is not 64 hex digits", EnvKey)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("keyscan: %w", err)
	}
	return cipher.NewGCM(block)
}

// ReadEscrow opens every line of the escrow at path with key; a missing
// file is no key. Duplicates are dropped. A process that could not escrow a
// key (FailedSuffix) makes it an error: the scan would miss that key.
func ReadEscrow(path string, key [32]byte) ([][16]byte, error) {
	if why, err := os.ReadFile(path + FailedSuffix); err == nil {
		return nil, fmt.Errorf("keyscan: a process could not escrow its keys: %s", strings.TrimSpace(string(why)))
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyscan: read escrow: %w", err)
	}
	aead, err := newAEAD(hex.EncodeToString(key[:]))
	if err != nil {
		return nil, err
	}
	seen := map[[16]byte]bool{}
	var keys [][16]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) < aead.NonceSize() {
			return nil, fmt.Errorf("keyscan: escrow line %d: not a sealed key", n)
		}
		pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
		if err != nil || len(pt) != 16 {
			return nil, fmt.Errorf("keyscan: escrow line %d: does not open with this run's key", n)
		}
		k := [16]byte(pt)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keyscan: read escrow: %w", err)
	}
	return keys, nil
}

// Hit is one key found in one output.
type Hit struct {
	File     string `json:"file"`
	KCV      string `json:"kcv"` // the key's check value (CheckValue)
	Encoding string `json:"encoding"`
}

// CheckValue is a key's check value as the whole project names keys
// (fixtures/proto/provproto.CheckValue; this package, a report, does not
// depend on the codecs): the first 3 bytes of AES-128(key, 0¹⁶), upper-case
// hex.
func CheckValue(key [16]byte) string {
	c, _ := aes.NewCipher(key[:]) // a 16-byte key cannot fail
	var out [16]byte
	c.Encrypt(out[:], make([]byte, 16))
	return fmt.Sprintf("%02X%02X%02X", out[0], out[1], out[2])
}

func (h Hit) String() string { return fmt.Sprintf("%s: key KCV %s as %s", h.File, h.KCV, h.Encoding) }

// Scanner looks for a set of keys.
type Scanner struct {
	hex map[string]hexKey   // 32 lowercase hex digits → key, MSB or LSB first
	raw map[uint32][]rawKey // first 4 bytes → candidates (MSB or LSB first)
	kcv map[[16]byte]string
}

type hexKey struct {
	k   [16]byte
	lsb bool
}

type rawKey struct {
	b   [16]byte
	k   [16]byte
	lsb bool
}

// New returns a scanner for keys.
func New(keys [][16]byte) *Scanner {
	s := &Scanner{hex: map[string]hexKey{}, raw: map[uint32][]rawKey{}, kcv: map[[16]byte]string{}}
	for _, k := range keys {
		s.kcv[k] = CheckValue(k)
		rev := k
		slices.Reverse(rev[:])
		for _, v := range []struct {
			b   [16]byte
			lsb bool
		}{{k, false}, {rev, true}} {
			s.hex[hex.EncodeToString(v.b[:])] = hexKey{k: k, lsb: v.lsb}
			p := binary.BigEndian.Uint32(v.b[:4])
			s.raw[p] = append(s.raw[p], rawKey{b: v.b, k: k, lsb: v.lsb})
		}
	}
	return s
}

// Keys is how many keys the scanner looks for.
func (s *Scanner) Keys() int { return len(s.kcv) }

// Scan returns the keys found in data (name: the output's name in hits),
// one hit per key and encoding.
func (s *Scanner) Scan(name string, data []byte) []Hit {
	if len(s.kcv) == 0 {
		return nil
	}
	found := map[Hit]bool{}
	add := func(k [16]byte, enc string) { found[Hit{File: name, KCV: s.kcv[k], Encoding: enc}] = true }
	order := func(lsb bool) string {
		if lsb {
			return ", LSB first"
		}
		return ""
	}
	// Hex: runs of hex digits, separators and 0x prefixes, compacted.
	for _, run := range hexRuns(data) {
		for i := 0; i+32 <= len(run.digits); i++ {
			if hk, ok := s.hex[string(run.digits[i:i+32])]; ok {
				add(hk.k, run.kind+order(hk.lsb))
			}
		}
	}
	// Decimal bytes, as fmt prints a []byte.
	for _, run := range decimalRuns(data) {
		s.rawWindows(run, func(k [16]byte, lsb bool) { add(k, "decimal bytes"+order(lsb)) })
	}
	// Base64, decoded from each of the 4 character alignments of a run.
	for _, run := range base64Runs(data) {
		for off := 0; off < 4 && off < len(run); off++ {
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				body := run[off:]
				if len(body)%4 == 1 { // a lone character encodes no byte
					body = body[:len(body)-1]
				}
				dec, err := enc.DecodeString(string(body))
				if err != nil {
					continue
				}
				s.rawWindows(dec, func(k [16]byte, lsb bool) { add(k, "base64"+order(lsb)) })
			}
		}
	}
	// Go-quoted strings: slog's text handler and %q print a []byte so.
	for _, run := range quotedRuns(data) {
		s.rawWindows(run, func(k [16]byte, lsb bool) { add(k, "quoted bytes"+order(lsb)) })
	}
	// The raw bytes.
	s.rawWindows(data, func(k [16]byte, lsb bool) { add(k, "raw bytes"+order(lsb)) })

	hits := make([]Hit, 0, len(found))
	for h := range found {
		hits = append(hits, h)
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].KCV != hits[j].KCV {
			return hits[i].KCV < hits[j].KCV
		}
		return hits[i].Encoding < hits[j].Encoding
	})
	return hits
}

func (s *Scanner) rawWindows(b []byte, hit func(k [16]byte, lsb bool)) {
	for i := 0; i+16 <= len(b); i++ {
		cands, ok := s.raw[binary.BigEndian.Uint32(b[i:i+4])]
		if !ok {
			continue
		}
		for _, c := range cands {
			if bytes.Equal(b[i:i+16], c.b[:]) {
				hit(c.k, c.lsb)
			}
		}
	}
}

type hexRun struct {
	digits []byte // lowercase hex digits
	kind   string
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hexRuns splits data into runs of hex digits that separators (":", "-",
// " ", ",", "0x") may join, each compacted to its lowercase digits. kind
// says whether separators were inside ("hex with separators") or not.
func hexRuns(data []byte) []hexRun {
	var runs []hexRun
	var cur []byte
	seps := false
	flush := func() {
		if len(cur) >= 32 {
			kind := "hex"
			if seps {
				kind = "hex with separators"
			}
			runs = append(runs, hexRun{digits: cur, kind: kind})
		}
		cur, seps = nil, false
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '0' && i+2 < len(data) && (data[i+1] == 'x' || data[i+1] == 'X') && isHex(data[i+2]):
			if len(cur) > 0 {
				seps = true
			}
			// Go's %#v of a []byte writes bytes below 10h with one digit
			// (0x9): a lone digit after 0x is a zero-padded byte.
			if i+3 >= len(data) || !isHex(data[i+3]) {
				cur = append(cur, '0', data[i+2]|0x20)
				i += 2
				continue
			}
			i++ // skip "0x"
		case isHex(c):
			cur = append(cur, c|0x20) // lowercase letters; digits unchanged
		case (c == ':' || c == '-' || c == ' ' || c == ',') && len(cur) > 0 && i+1 < len(data):
			seps = true
		default:
			flush()
		}
	}
	flush()
	return runs
}

// decimalRuns returns the byte strings written as decimal numbers 0–255
// separated by a space or a comma (and spaces): "[43 126 21 …]".
func decimalRuns(data []byte) [][]byte {
	var runs [][]byte
	var cur []byte
	flush := func() {
		if len(cur) >= 16 {
			runs = append(runs, cur)
		}
		cur = nil
	}
	for i := 0; i < len(data); {
		if data[i] < '0' || data[i] > '9' {
			if data[i] != ' ' && data[i] != ',' {
				flush()
			}
			i++
			continue
		}
		j, v := i, 0
		for j < len(data) && data[j] >= '0' && data[j] <= '9' && j-i < 4 {
			v = v*10 + int(data[j]-'0')
			j++
		}
		if j-i > 3 || v > 255 || (j < len(data) && data[j] >= '0' && data[j] <= '9') {
			flush()
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			i = j
			continue
		}
		cur = append(cur, byte(v))
		i = j
	}
	flush()
	return runs
}

func isBase64Std(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// base64Runs returns the runs of one alphabet's characters (standard or
// URL) long enough to hold 16 bytes (22 characters). A run ends at any
// other character — "=" too: padding only ends a blob, and logfmt's
// key=value must not glue the key's name to the value.
func base64Runs(data []byte) [][]byte {
	var runs [][]byte
	for _, in := range []func(byte) bool{isBase64Std, isBase64URL} {
		start := -1
		for i := 0; i <= len(data); i++ {
			if i < len(data) && in(data[i]) {
				if start < 0 {
					start = i
				}
				continue
			}
			if start >= 0 && i-start >= 22 {
				runs = append(runs, data[start:i])
			}
			start = -1
		}
	}
	return runs
}

// quotedRuns returns the contents of Go-quoted strings ("…" with \xNN,
// \n, \" escapes), unquoted: how slog's text handler and %q print a
// []byte that is not valid printable text.
func quotedRuns(data []byte) [][]byte {
	var runs [][]byte
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(data) && data[j] != '"' && data[j] != '\n' {
			if data[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(data) || data[j] != '"' {
			break
		}
		if j-i-1 >= 16 && bytes.IndexByte(data[i+1:j], '\\') >= 0 {
			if u, err := strconv.Unquote(string(data[i : j+1])); err == nil {
				runs = append(runs, []byte(u))
			}
		}
		i = j
	}
	return runs
}

// Result is a scanned run folder.
type Result struct {
	Keys  int   `json:"keys"`
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	Hits  []Hit `json:"hits"`
}

// ScanDir scans every regular file under dir but the escrow; names in hits
// are relative to dir.
func (s *Scanner) ScanDir(dir string) (Result, error) {
	res := Result{Keys: s.Keys(), Hits: []Hit{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || d.Name() == EscrowFile || d.Name() == EscrowFile+FailedSuffix {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		res.Files++
		res.Bytes += int64(len(b))
		res.Hits = append(res.Hits, s.Scan(rel, b)...)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("keyscan: scan %s: %w", dir, err)
	}
	return res, nil
}
