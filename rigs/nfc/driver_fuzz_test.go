package nfc

import (
	"context"
	"testing"
)

// script is a tag that answers each request with the next response of a
// fuzzed script (a length byte, then that many bytes), then falls silent.
type script struct{ b []byte }

func (s *script) Transceive(context.Context, []byte) ([]byte, error) {
	if len(s.b) == 0 {
		return nil, ErrNoResponse
	}
	n := min(int(s.b[0]), len(s.b)-1)
	resp := s.b[1 : 1+n]
	s.b = s.b[1+n:]
	return append([]byte(nil), resp...), nil
}

func (s *script) Close() error { return nil }

// FuzzDriverResponses: whatever a tag (or a broken reader) answers — any
// flags byte, error codes, short and long payloads, a CC and TLVs that
// point anywhere — the reader-side driver returns data of the size it asked
// for or an error, never a panic. Seeds are the answers an ST25DV64KC gives
// (DS §7.6: flags 00 + payload; error 01 + code).
func FuzzDriverResponses(f *testing.F) {
	f.Add(append([]byte{10, 0x00, 0x00}, 0x34, 0x12, 0x05, 0x00, 0x15, 0x00, 0x02, 0xE0))          // Inventory
	f.Add([]byte{5, 0x00, 0xE2, 0x40, 0x00, 0x01, 5, 0x00, 0x03, 0x2D, 0x00, 0xD1})                // CC + TLV
	f.Add([]byte{2, 0x01, 0x0F, 2, 0x01, 0x10, 1, 0x01})                                           // errors
	f.Add([]byte{2, 0x00, 0x41, 2, 0x00, 0x05, 7, 0x00, 0x80, 0x81, 0x01, 0x02, 0x03, 0x04, 0x05}) // MB_CTRL, length, message
	f.Add([]byte{15, 0x00, 0x0F, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0xFF, 0x03, 0xFF, 0x07, 0x00})      // system info
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		for _, addressed := range []bool{false, true} {
			d := NewST25DV(&script{b: append([]byte(nil), raw...)}, WithAddressed(addressed), WithMaxReadBlocks(8), WithMaxMessageChunk(16))
			if _, _, err := d.Inventory(ctx); err == nil {
				if _, ok := d.UID(); !ok {
					t.Fatal("inventory succeeded without a UID")
				}
			}
			if si, err := d.SystemInfo(ctx); err == nil && si.MemoryBytes() < 0 {
				t.Fatalf("system info with %d bytes", si.MemoryBytes())
			}
			if p, err := d.ReadBlocks(ctx, 0, 3); err == nil && len(p) != 3*blockSize {
				t.Fatalf("ReadBlocks(0, 3) gave %d bytes", len(p))
			}
			if p, err := d.ReadBlocks(ctx, 0x100, 2); err == nil && len(p) != 2*blockSize {
				t.Fatalf("ReadBlocks(0x100, 2) gave %d bytes", len(p))
			}
			_, _ = d.MailboxStatus(ctx)
			if n, err := d.MessageLength(ctx); err == nil && (n < 1 || n > 256) {
				t.Fatalf("message length %d (DS §7.6.32: 1–256)", n)
			}
			_, _ = d.ReadMessage(ctx)
			_, _ = d.ReadNDEF(ctx)
			_, _ = d.ReadDynConfig(ctx, 0x0D)
		}
	})
}
