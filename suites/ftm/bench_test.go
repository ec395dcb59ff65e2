package ftm_test

import (
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// The mailbox addresses the MCU uses on the tag's user device (kit.TagUser,
// DS Table 88). The rig's bus runs at the firmware's 1 MHz
// (rigs.EmulatedI2CHz, Fm+, DS Table 250 allows up to 1 MHz): a 256-byte
// mailbox read takes 2.35 ms.
const (
	mbCtrl   = kit.RegMBCtrl
	mbLen    = kit.RegMBLen
	mbBuffer = kit.MailboxBuffer
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
	cmdWriteMsg   = 0xAA
	cmdReadMsgLen = 0xAB
	cmdReadMsg    = 0xAC
)

// timedTransport records the time of each exchange by command code, as a
// logic analyser on the antenna would: from the call to the answer. In a
// bubble (onVirtualTime) that is virtual time: the exchange's modelled
// duration plus every other wait on the path, and nothing of the host's.
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

// lastExchange returns the time of the latest exchange with cmd.
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
	if path == firmwareRig {
		for i := range f.Boards {
			f.Boards[i].MailboxProtocol = mailboxProtocol
		}
	}
	return f
}

// mailboxProtocol is what the run's rig has its board speak (TAP2JOIN_RIG,
// kit.MailboxProtocol): the firmware specs run the default emulated board
// speaking it, so `make test`'s st25ftm run streams images over ST25FTM.
var mailboxProtocol = kit.MailboxProtocol()

// overST25FTM says the firmware specs run over ST25FTM.
func overST25FTM() bool { return mailboxProtocol == phone.MailboxST25FTM }

// fwName names a firmware measurement for the protocol it was taken on:
// "ftm firmware …" over tap2join framing, "ftm firmware over st25ftm …"
// over ST's, so one limits file never judges one by the other's figures.
func fwName(name string) string {
	if overST25FTM() {
		return strings.Replace(name, "ftm firmware", "ftm firmware over st25ftm", 1)
	}
	return name
}

// upBoard brings f up (rigs.Up: network server, backend, console) until the
// current spec ends, on the wall clock, checking that no part of it stopped
// on its own, and returns its board. The timing specs use upInProcess in a
// bubble instead.
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

// newTagBench brings the tag up in vb's bubble, for the rest of it.
func newTagBench(vb *bubble) *tagBench {
	GinkgoHelper()
	b := upInProcess(vb, loadRig(tagRig, ""))
	tb := &tagBench{bench: newBench(b), host: kit.NeedOwn[rigs.TagHost](b), model: kit.NeedOwn[rigs.ModelClock](b)}
	tb.enableMailbox()
	return tb
}

// enableMailbox does what the firmware does at boot: MB_MODE authorised
// once (static FTM register, EEPROM: kit.TagSetFTM — I2C security session
// with the factory password, write, ACK polling until programmed, read back,
// session closed with a wrong password), then MB_EN (DS §5.1.2, §6.6.1).
func (b *tagBench) enableMailbox() {
	GinkgoHelper()
	kit.TagSetFTM(b.host, 0x01) // MB_MODE
	b.i2cWrite(mbCtrl, 0x01)    // MB_EN (DS §5.1.2)
}

// i2cWrite and i2cRead play the MCU (the firmware's one-transaction accesses
// to the user device).
func (b *tagBench) i2cWrite(addr int, data ...byte) {
	GinkgoHelper()
	kit.TagI2CWrite(b.host, kit.TagUser, addr, data...)
}

func (b *tagBench) i2cRead(addr, n int) []byte {
	GinkgoHelper()
	return kit.TagI2CRead(b.host, kit.TagUser, addr, n)
}
