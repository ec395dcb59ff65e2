package nfc

import (
	"context"
	"errors"
	"fmt"

	"github.com/tap2join/tap2join/fixtures/proto/ndef"
)

// NDEFRecord is an NDEF record (TNF, type, ID, payload).
type NDEFRecord = ndef.Record

// ST25DV64KCMemory is the user memory size of the ST25DV64KC in bytes.
const ST25DV64KCMemory = 8192

// EncodeNDEF returns the Type 5 Tag image for records on an ST25DV64KC:
// 8-byte CC E2 40 00 01 00 00 03 FF, NDEF TLV, message, terminator
// (AN4911 §3.3). Write it at block 0 (RF) or address 0000h (I2C).
func EncodeNDEF(records []NDEFRecord) ([]byte, error) {
	return ndef.EncodeT5T(records, ST25DV64KCMemory)
}

// ReadNDEF reads and parses the NDEF message: the CC at block 0 (4-byte E1h
// or 8-byte form), then the TLVs up to the NDEF TLV, then the message,
// fetching blocks only as needed. An initialised tag (empty NDEF TLV) gives
// no records; a tag without an NDEF TLV gives an error wrapping ndef.ErrNoNDEF.
func (d *ST25DV) ReadNDEF(ctx context.Context) ([]NDEFRecord, error) {
	head, err := d.ReadBlocks(ctx, 0, 2)
	if err != nil {
		return nil, fmt.Errorf("st25dv: read ndef: %w", err)
	}
	cc, err := ndef.ParseCC(head)
	if err != nil {
		return nil, fmt.Errorf("st25dv: read ndef: %w", err)
	}
	r := &blockReader{ctx: ctx, d: d, cache: map[int][]byte{0: head[:4], 1: head[4:]}, limit: (cc.AreaEnd() + blockSize - 1) / blockSize}
	msg, err := ndef.FindNDEF(r, cc.Len(), cc.AreaEnd())
	if err != nil {
		return nil, fmt.Errorf("st25dv: read ndef: %w", err)
	}
	if len(msg) == 0 {
		return nil, nil
	}
	recs, err := ndef.DecodeMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("st25dv: read ndef: %w", err)
	}
	return recs, nil
}

// blockReader is an io.ReaderAt over the tag's blocks with a block cache;
// a miss reads up to WithMaxReadBlocks blocks ahead, within the T5T area.
type blockReader struct {
	ctx   context.Context
	d     *ST25DV
	cache map[int][]byte
	limit int // blocks
}

func (b *blockReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		pos := int(off) + n
		blk := pos / blockSize
		data, ok := b.cache[blk]
		if !ok {
			last := (int(off) + len(p) - 1) / blockSize
			count := max(last-blk+1, min(b.d.maxReadBlocks, b.limit-blk))
			got, err := b.d.ReadBlocks(b.ctx, blk, count)
			if err != nil {
				return n, err
			}
			for i := 0; i < len(got)/blockSize; i++ {
				b.cache[blk+i] = got[i*blockSize : (i+1)*blockSize]
			}
			data = b.cache[blk]
		}
		n += copy(p[n:], data[pos%blockSize:])
	}
	return n, nil
}
