package stm32wl5

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// The device side of the firmware transfer extension (SPEC.md §7): FW_BEGIN
// opens a transfer, every following mailbox message is raw image data (no
// answer, so the phone streams at the RF rate), FW_END asks for the SHA-256
// verdict. The image is staged in RAM for the (not modelled) bootloader.

const (
	// FirmwareSlotSize is the largest image the firmware accepts: the
	// update slot of the reference firmware (half of the STM32WL55's 256 KiB
	// flash).
	FirmwareSlotSize = 128 << 10
	// FirmwareIdleTimeout abandons a transfer with no chunk for this long
	// (wall clock), so a lifted phone cannot leave the device deaf to
	// requests (SPEC.md §7.2).
	FirmwareIdleTimeout = 5 * time.Second
)

// fwIdleTimeout is FirmwareIdleTimeout; unit tests shorten it.
var fwIdleTimeout = FirmwareIdleTimeout

// fwRx is the receive state of a transfer.
type fwRx struct {
	mu     sync.Mutex
	active bool // data mode: messages are image bytes
	size   int
	want   [32]byte
	buf    []byte
	last   time.Time       // last FW_BEGIN or chunk
	boot   context.Context // the boot that opened it: a reset abandons it
	staged *StagedImage
}

// StagedImage is an image received and verified by FW_END.
type StagedImage struct {
	Size   int
	SHA256 [32]byte
	Data   []byte
}

// StagedFirmware returns the last image that passed its SHA-256 check, or nil.
func (b *MCU) StagedFirmware() *StagedImage {
	b.fw.mu.Lock()
	defer b.fw.mu.Unlock()
	return b.fw.staged
}

// fwData takes msg as image data when a transfer is open. It reports
// whether it did; resp is then nil (a chunk is not answered) or an ERROR
// frame when the chunk overflows the announced size.
func (b *MCU) fwData(msg []byte) (resp []byte, consumed bool) {
	rx := &b.fw
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if !rx.active {
		return nil, false
	}
	if time.Since(rx.last) > fwIdleTimeout || rx.boot != b.bootContext() {
		rx.active = false // abandoned: parse msg as a frame; keep the bytes for a resume
		b.logf("nfc: firmware transfer abandoned at %d/%d bytes", len(rx.buf), rx.size)
		return nil, false
	}
	if len(rx.buf)+len(msg) > rx.size {
		rx.active, rx.buf = false, nil
		b.logf("nfc: firmware chunk of %d bytes overflows the %d-byte image: transfer dropped", len(msg), rx.size)
		return provproto.MarshalError(provproto.BadLength, 0), true
	}
	rx.buf = append(rx.buf, msg...)
	rx.last = time.Now()
	if len(rx.buf) == rx.size {
		rx.active = false // complete: back to frames, FW_END comes next
	}
	return nil, true
}

// fwTouch keeps an open transfer alive: over ST25FTM the image arrives as
// one command, handed over whole, and its packets are the sign of life.
func (b *MCU) fwTouch() {
	b.fw.mu.Lock()
	defer b.fw.mu.Unlock()
	if b.fw.active {
		b.fw.last = time.Now()
	}
}

// fwBegin answers FW_BEGIN with FW_READY (SPEC.md §7.1).
func (b *MCU) fwBegin(body []byte) ([]byte, error) {
	m, err := provproto.ParseFWBegin(body)
	if err != nil {
		return nil, err
	}
	if m.Size == 0 || m.Size > FirmwareSlotSize {
		return nil, reject(provproto.Unsupported, "image size out of the update slot")
	}
	rx := &b.fw
	rx.mu.Lock()
	defer rx.mu.Unlock()
	offset := 0
	if int(m.Size) == rx.size && m.SHA256 == rx.want && len(rx.buf) < rx.size {
		offset = len(rx.buf) // resume the same image
	} else {
		rx.size, rx.want, rx.buf = int(m.Size), m.SHA256, make([]byte, 0, m.Size)
	}
	rx.active, rx.last, rx.boot = true, time.Now(), b.bootContext()
	b.logf("nfc: FW_BEGIN %d bytes, sha256 %x…, from offset %d", m.Size, m.SHA256[:4], offset)
	return provproto.MarshalFWReady(uint32(offset)), nil
}

// fwEnd verifies the image and answers FW_RESULT (SPEC.md §7.3).
func (b *MCU) fwEnd() ([]byte, error) {
	rx := &b.fw
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.size == 0 || len(rx.buf) != rx.size {
		res := provproto.FWResult{Status: provproto.NoTransfer, Size: uint32(len(rx.buf))}
		return res.Marshal()
	}
	res := provproto.FWResult{Status: provproto.OK, Size: uint32(len(rx.buf)), SHA256: sha256.Sum256(rx.buf)}
	if res.SHA256 == rx.want {
		rx.staged = &StagedImage{Size: rx.size, SHA256: res.SHA256, Data: rx.buf}
	} else {
		res.Status = provproto.ImageMismatch
	}
	b.logf("nfc: FW_END %d bytes, sha256 %x…: %s", res.Size, res.SHA256[:4], res.Status)
	rx.size, rx.want, rx.buf = 0, [32]byte{}, nil
	return res.Marshal()
}

// bootContext identifies the current boot (runOnce's context).
func (b *MCU) bootContext() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runCtx
}

// fwOffset is the number of image bytes received so far (for tests).
func (b *MCU) fwOffset() int {
	b.fw.mu.Lock()
	defer b.fw.mu.Unlock()
	return len(b.fw.buf)
}
