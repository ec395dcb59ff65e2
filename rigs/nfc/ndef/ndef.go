// Package ndef encodes and decodes NFC Forum NDEF messages and the NFC Forum
// Type 5 Tag memory layout (capability container, TLV blocks) used on the
// ST25DV's user EEPROM (AN4911 §3; reference st25dv64kc.md §10).
//
// It is a leaf: it imports only the standard library. That is why it is the
// one package under rigs/ that emulators/ may import — an explicit exception
// to "emulators never import rigs" (ARCHITECTURE.md), so the MCU twin
// (emulators/stm32wl5) writes its NDEF area with the very codec the phone
// side (rigs/nfc) reads it with. Keep it free of other project imports.
package ndef

import (
	"errors"
	"fmt"
	"strings"
)

// TNF is the 3-bit Type Name Format of a record.
type TNF byte

// TNF values (NFC Forum NDEF 1.0 §3.2.6).
const (
	TNFEmpty       TNF = 0x00
	TNFWellKnown   TNF = 0x01
	TNFMedia       TNF = 0x02 // MIME media type (RFC 2046)
	TNFAbsoluteURI TNF = 0x03
	TNFExternal    TNF = 0x04 // NFC Forum external type, e.g. "android.com:pkg"
	TNFUnknown     TNF = 0x05
	TNFUnchanged   TNF = 0x06 // only in middle/last chunks
	TNFReserved    TNF = 0x07
)

// Record header bits.
const (
	hdrMB  = 0x80 // message begin
	hdrME  = 0x40 // message end
	hdrCF  = 0x20 // chunk flag
	hdrSR  = 0x10 // short record (1-byte payload length)
	hdrIL  = 0x08 // ID length present
	hdrTNF = 0x07
)

// Record is one NDEF record.
type Record struct {
	TNF     TNF
	Type    []byte
	ID      []byte
	Payload []byte
}

// Errors returned by the decoders.
var (
	ErrChunked   = errors.New("ndef: chunked records are not supported")
	ErrTruncated = errors.New("ndef: truncated")
	ErrNoNDEF    = errors.New("ndef: no NDEF message TLV")
	ErrBadCC     = errors.New("ndef: not a Type 5 capability container")
)

// EncodeMessage encodes records as one NDEF message: MB on the first, ME on
// the last, short-record form when the payload is under 256 bytes. No
// records encode as the empty message, a single empty record D0 00 00.
func EncodeMessage(recs []Record) ([]byte, error) {
	if len(recs) == 0 {
		return []byte{hdrMB | hdrME | hdrSR, 0x00, 0x00}, nil
	}
	var out []byte
	for i, r := range recs {
		if r.TNF > TNFReserved || r.TNF == TNFUnchanged || r.TNF == TNFReserved {
			return nil, fmt.Errorf("ndef: record %d: TNF %d cannot be encoded", i, r.TNF)
		}
		if len(r.Type) > 255 || len(r.ID) > 255 {
			return nil, fmt.Errorf("ndef: record %d: type or ID longer than 255 bytes", i)
		}
		if r.TNF == TNFEmpty && (len(r.Type)+len(r.ID)+len(r.Payload)) != 0 {
			return nil, fmt.Errorf("ndef: record %d: empty TNF with content", i)
		}
		if uint64(len(r.Payload)) > 0xFFFFFFFF {
			return nil, fmt.Errorf("ndef: record %d: payload too long", i)
		}
		h := byte(r.TNF)
		if i == 0 {
			h |= hdrMB
		}
		if i == len(recs)-1 {
			h |= hdrME
		}
		short := len(r.Payload) < 256
		if short {
			h |= hdrSR
		}
		if len(r.ID) > 0 {
			h |= hdrIL
		}
		out = append(out, h, byte(len(r.Type)))
		if short {
			out = append(out, byte(len(r.Payload)))
		} else {
			n := len(r.Payload)
			out = append(out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		if len(r.ID) > 0 {
			out = append(out, byte(len(r.ID)))
		}
		out = append(out, r.Type...)
		out = append(out, r.ID...)
		out = append(out, r.Payload...)
	}
	return out, nil
}

// DecodeMessage decodes one NDEF message. Chunked records are refused
// (ErrChunked); so are trailing bytes after the ME record.
func DecodeMessage(b []byte) ([]Record, error) {
	var recs []Record
	for off := 0; ; {
		if off >= len(b) {
			return nil, fmt.Errorf("ndef: record %d: %w", len(recs), ErrTruncated)
		}
		h := b[off]
		i := len(recs)
		if (i == 0) != (h&hdrMB != 0) {
			return nil, fmt.Errorf("ndef: record %d: MB flag wrong", i)
		}
		if h&hdrCF != 0 || TNF(h&hdrTNF) == TNFUnchanged {
			return nil, ErrChunked
		}
		off++
		need := 1
		if h&hdrSR != 0 {
			need++
		} else {
			need += 4
		}
		if h&hdrIL != 0 {
			need++
		}
		if off+need > len(b) {
			return nil, fmt.Errorf("ndef: record %d header: %w", i, ErrTruncated)
		}
		typeLen := int(b[off])
		off++
		var payLen int
		if h&hdrSR != 0 {
			payLen = int(b[off])
			off++
		} else {
			n := uint64(b[off])<<24 | uint64(b[off+1])<<16 | uint64(b[off+2])<<8 | uint64(b[off+3])
			if n > uint64(len(b)) {
				return nil, fmt.Errorf("ndef: record %d payload: %w", i, ErrTruncated)
			}
			payLen = int(n)
			off += 4
		}
		idLen := 0
		if h&hdrIL != 0 {
			idLen = int(b[off])
			off++
		}
		if off+typeLen+idLen+payLen > len(b) {
			return nil, fmt.Errorf("ndef: record %d body: %w", i, ErrTruncated)
		}
		r := Record{TNF: TNF(h & hdrTNF)}
		r.Type = append([]byte(nil), b[off:off+typeLen]...)
		off += typeLen
		if idLen > 0 {
			r.ID = append([]byte(nil), b[off:off+idLen]...)
			off += idLen
		}
		r.Payload = append([]byte{}, b[off:off+payLen]...)
		off += payLen
		recs = append(recs, r)
		if h&hdrME != 0 {
			if off != len(b) {
				return nil, fmt.Errorf("ndef: %d bytes after the last record", len(b)-off)
			}
			return recs, nil
		}
	}
}

// uriPrefixes is the URI identifier code table (NFC Forum URI RTD 1.0 §3.2.2;
// ST NDEF middleware ndef_type_uri.c).
var uriPrefixes = [...]string{
	"", "http://www.", "https://www.", "http://", "https://", "tel:", "mailto:",
	"ftp://anonymous:anonymous@", "ftp://ftp.", "ftps://", "sftp://", "smb://", "nfs://",
	"ftp://", "dav://", "news:", "telnet://", "imap:", "rtsp://", "urn:", "pop:", "sip:",
	"sips:", "tftp:", "btspp://", "btl2cap://", "btgoep://", "tcpobex://", "irdaobex://",
	"file://", "urn:epc:id:", "urn:epc:tag:", "urn:epc:pat:", "urn:epc:raw:", "urn:epc:", "urn:nfc:",
}

// URIRecord returns a well-known "U" record with the longest matching
// abbreviation (e.g. "https://example.com/app" → 04 "example.com/app").
func URIRecord(uri string) Record {
	code := 0
	for i, p := range uriPrefixes {
		if p != "" && strings.HasPrefix(uri, p) && len(p) > len(uriPrefixes[code]) {
			code = i
		}
	}
	payload := append([]byte{byte(code)}, uri[len(uriPrefixes[code]):]...)
	return Record{TNF: TNFWellKnown, Type: []byte("U"), Payload: payload}
}

// URI returns the URI of a well-known "U" record.
func (r Record) URI() (string, bool) {
	if r.TNF != TNFWellKnown || string(r.Type) != "U" || len(r.Payload) == 0 || int(r.Payload[0]) >= len(uriPrefixes) {
		return "", false
	}
	return uriPrefixes[r.Payload[0]] + string(r.Payload[1:]), true
}

// AARRecord returns an Android Application Record (external type
// "android.com:pkg", payload = package name), which makes Android dispatch
// the tag to that app (reference §10.3).
func AARRecord(pkg string) Record {
	return Record{TNF: TNFExternal, Type: []byte("android.com:pkg"), Payload: []byte(pkg)}
}

// ExternalRecord returns an NFC Forum external-type record ("domain:type").
func ExternalRecord(typ string, payload []byte) Record {
	return Record{TNF: TNFExternal, Type: []byte(typ), Payload: payload}
}

// MediaRecord returns a MIME-typed record.
func MediaRecord(mime string, payload []byte) Record {
	return Record{TNF: TNFMedia, Type: []byte(mime), Payload: payload}
}

func (r Record) String() string {
	if u, isURI := r.URI(); isURI {
		return fmt.Sprintf("URI %q", u)
	}
	return fmt.Sprintf("TNF %d type %q id %q payload %d B", r.TNF, r.Type, r.ID, len(r.Payload))
}
