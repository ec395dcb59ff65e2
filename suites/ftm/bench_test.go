package ftm_test

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// I2C device select of the user memory / dynamic registers / mailbox (DS
// Table 88, E2 = 0) and the addresses the MCU uses.
const (
	i2cUser  = 0x53
	mbCtrl   = 0x2006
	mbLen    = 0x2007
	mbBuffer = 0x2008
	// i2cHz: the firmware twin clocks I2C1 at 1 MHz (Fm+, DS Table 250 allows
	// 50 kHz .. 1 MHz): a 256-byte mailbox read takes 2.35 ms.
	i2cHz = 1_000_000
)

// Cmd codes of the mailbox exchanges the specs time (DS Table 103).
const (
	cmdWriteMsg = 0xAA
	cmdReadMsg  = 0xAC
)

// timedTransport records the wall time of each exchange by command code, as
// a logic analyser on the antenna would: from the call to the answer.
type timedTransport struct {
	nfc.Transport
	mu   sync.Mutex
	last map[byte]time.Duration
}

func (t *timedTransport) Transceive(ctx context.Context, frame []byte) ([]byte, error) {
	start := time.Now()
	resp, err := t.Transport.Transceive(ctx, frame)
	d := time.Since(start)
	if len(frame) >= 2 {
		t.mu.Lock()
		t.last[frame[1]] = d
		t.mu.Unlock()
	}
	return resp, err
}

// lastExchange returns the wall time of the latest exchange with cmd.
func (t *timedTransport) lastExchange(cmd byte) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[cmd]
}

// bench is one tag twin in realistic time in the field of one reader.
type bench struct {
	tag   *st25dv.Tag
	clock *timing.Clock
	tr    *timedTransport
	drv   *nfc.ST25DV
}

// newBench returns a tag with VCC and field on. The driver is non-addressed
// (a reader alone with one tag; DS Table 255's 80.7 / 81 ms are the
// non-addressed figures), high data rate, normal (not fast) commands.
func newBench(mode timing.Mode, mailbox bool) *bench {
	GinkgoHelper()
	clock := timing.NewClock(mode)
	cfg := st25dv.Config{Clock: clock, I2CClockHz: i2cHz}
	if mailbox {
		cfg.FTM = 0x01 // MB_MODE authorised once by the firmware (EEPROM)
	}
	tag := st25dv.New(cfg)
	tag.SetVCC(true)
	tag.FieldOn()
	tr := &timedTransport{Transport: nfc.NewDirect(tag), last: map[byte]time.Duration{}}
	DeferCleanup(tr.Close)
	b := &bench{tag: tag, clock: clock, tr: tr, drv: nfc.NewST25DV(tr, nfc.WithAddressed(false))}
	if mailbox {
		b.i2cWrite(mbCtrl, 0x01) // MB_EN (DS §5.1.2)
	}
	return b
}

// i2cWrite and i2cRead play the MCU (the firmware's one-transaction accesses).
func (b *bench) i2cWrite(addr int, data ...byte) {
	GinkgoHelper()
	Expect(b.tag.I2C().Tx(i2cUser, append([]byte{byte(addr >> 8), byte(addr)}, data...), nil)).To(Succeed(), "I2C write %04Xh", addr)
}

func (b *bench) i2cRead(addr, n int) []byte {
	GinkgoHelper()
	r := make([]byte, n)
	Expect(b.tag.I2C().Tx(i2cUser, []byte{byte(addr >> 8), byte(addr)}, r)).To(Succeed(), "I2C read %04Xh", addr)
	return r
}
