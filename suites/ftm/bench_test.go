package ftm_test

import (
	"context"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/suites/kit"
)

// I2C device selects of the user memory / dynamic registers / mailbox and
// of the system configuration (DS Table 88, E0 = 1), and the addresses the
// MCU uses. The rig's bus runs at the firmware's 1 MHz (rigs.EmulatedI2CHz,
// Fm+, DS Table 250 allows up to 1 MHz): a 256-byte mailbox read takes 2.35 ms.
const (
	i2cUser   = 0x53
	i2cSys    = 0x57
	regFTM    = 0x000D // static FTM: b0 MB_MODE (DS Table 16)
	regI2CPwd = 0x0900 // I2C password present (DS §6.6)
	mbCtrl    = 0x2006
	mbLen     = 0x2007
	mbBuffer  = 0x2008
)

// Rig files: the tag alone in realistic time, its MCU played by the specs
// (firmware: none); and the default emulated board, whose firmware twin
// receives the images.
const (
	tagRig      = "rigs/tag-realistic.yaml"
	firmwareRig = "rigs/emulated.yaml"
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

// loadRig loads one of the suite's rig files; timing overrides its timing
// ("" keeps it).
func loadRig(path, timing string) *rigs.File {
	GinkgoHelper()
	p, err := rigs.Find(path)
	Expect(err).NotTo(HaveOccurred())
	f, err := rigs.Load(p)
	Expect(err).NotTo(HaveOccurred())
	if timing != "" {
		f.Timing = timing
	}
	return f
}

// upBoard brings f up until the current spec (or container, from BeforeAll)
// ends, checking that no part of it stopped on its own, and returns its
// board.
func upBoard(ctx context.Context, f *rigs.File) *rigs.Board {
	GinkgoHelper()
	var rig *rigs.Rig
	DeferCleanup(func() { // after kit.UpRig's Close
		if rig != nil {
			Expect(rig.BackgroundErrors()).To(Succeed(), "rig %s", f.Name)
		}
	})
	rig = kit.UpRig(ctx, f, rigs.Options{})
	return rig.Boards[0]
}

// bench is one board's tag in the field of one reader: the phone side
// times each exchange. The driver is non-addressed (a reader alone with one
// tag; DS Table 255's 80.7 / 81 ms are the non-addressed figures), high data
// rate, normal (not fast) commands.
type bench struct {
	tr  *timedTransport
	drv *nfc.ST25DV
}

func newBench(b *rigs.Board) *bench {
	tr := &timedTransport{Transport: b.Transport(), last: map[byte]time.Duration{}}
	return &bench{tr: tr, drv: nfc.NewST25DV(tr, nfc.WithAddressed(false))}
}

// tagBench is the tag of rigs/tag-realistic.yaml with its mailbox on; the
// spec is its MCU (TagHost) and reads its modelled time (ModelClock).
type tagBench struct {
	*bench
	host  rigs.TagHost
	model rigs.ModelClock
}

func newTagBench(ctx context.Context) *tagBench {
	GinkgoHelper()
	b := upBoard(ctx, loadRig(tagRig, ""))
	tb := &tagBench{bench: newBench(b), host: kit.Need[rigs.TagHost](b), model: kit.Need[rigs.ModelClock](b)}
	tb.enableMailbox()
	return tb
}

// enableMailbox does what the firmware does at boot: MB_MODE authorised
// once (static FTM register, EEPROM: I2C security session with the factory
// password, write, ACK polling until programmed, session closed with a
// wrong password), then MB_EN (DS §5.1.2, §6.6.1).
func (b *tagBench) enableMailbox() {
	GinkgoHelper()
	present := func(pwd [8]byte) {
		GinkgoHelper()
		b.write(i2cSys, regI2CPwd, slices.Concat(pwd[:], []byte{0x09}, pwd[:])...)
	}
	present([8]byte{}) // factory I2C password
	b.write(i2cSys, regFTM, 0x01)
	Eventually(func() error { return b.host.TagI2C(i2cSys, nil, nil) }).
		WithTimeout(time.Second).WithPolling(100*time.Microsecond).Should(Succeed(), "ACK polling after the FTM write")
	present([8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	b.i2cWrite(mbCtrl, 0x01) // MB_EN (DS §5.1.2)
}

func (b *tagBench) write(dev uint16, addr int, data ...byte) {
	GinkgoHelper()
	Expect(b.host.TagI2C(dev, append([]byte{byte(addr >> 8), byte(addr)}, data...), nil)).To(Succeed(), "I2C write %02Xh:%04Xh", dev, addr)
}

// i2cWrite and i2cRead play the MCU (the firmware's one-transaction accesses).
func (b *tagBench) i2cWrite(addr int, data ...byte) {
	GinkgoHelper()
	b.write(i2cUser, addr, data...)
}

func (b *tagBench) i2cRead(addr, n int) []byte {
	GinkgoHelper()
	r := make([]byte, n)
	Expect(b.host.TagI2C(i2cUser, []byte{byte(addr >> 8), byte(addr)}, r)).To(Succeed(), "I2C read %04Xh", addr)
	return r
}
