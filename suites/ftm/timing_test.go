package ftm_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// sizes are the message lengths measured both ways: the powers of two up to
// the whole mailbox and a few odd ones (241: the largest addressed Write
// Message an Android phone sends, SPEC.md §1).
var sizes = []int{1, 2, 3, 4, 8, 16, 17, 32, 64, 100, 128, 241, 255, 256}

// tolerance is how far a measured exchange may be from the model.
const tolerance = 0.05

// reps is how often each exchange is measured. On virtual time the host
// adds nothing to an exchange, so every run must be within the tolerance
// and the slowest is recorded; the repeats show that an exchange does not
// leave the tag (or the MCU's I2C reads between them) costing time later.
const reps = 3

func slowest(d []time.Duration) time.Duration { return slices.Max(d) }

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// extraCommand sends a Read Message Length before every frame with command
// code before, in the same exchange: a driver or reader that costs one RF
// command more than the model.
type extraCommand struct {
	nfc.Transport
	before byte
}

func (e extraCommand) Transceive(ctx context.Context, frame []byte) ([]byte, error) {
	if len(frame) >= 2 && frame[1] == e.before {
		if _, err := e.Transport.Transceive(ctx, []byte{frame[0], cmdReadMsgLen, 0x02}); err != nil {
			return nil, err
		}
	}
	return e.Transport.Transceive(ctx, frame)
}

func writeName(n int) string { return fmt.Sprintf("ftm write %d B", n) }
func readName(n int) string  { return fmt.Sprintf("ftm read %d B", n) }

func sizeEntries() []TableEntry {
	var e []TableEntry
	for _, n := range sizes {
		e = append(e, Entry(fmt.Sprintf("%d B", n), n))
	}
	return e
}

var _ = Describe("FTM mailbox exchanges against the physical model", Label("ftm", "timing:realistic"), func() {
	It("has a model that reproduces DS Table 255 (256 B: write 80.7 ms, read 81 ms typ)", func() {
		Expect(within(rigs.MailboxWriteTime(256, false), 80700*time.Microsecond, 0.01)).To(BeTrue(),
			"Write Message model %v", rigs.MailboxWriteTime(256, false))
		Expect(within(rigs.MailboxReadTime(256, false), 81*time.Millisecond, 0.01)).To(BeTrue(),
			"Read Message model %v", rigs.MailboxReadTime(256, false))
	})

	// Each entry brings the tag up in its own bubble (onVirtualTime): the
	// exchange's time is virtual, its modelled duration and every other
	// wait on the path, and the host's load cannot change it.
	DescribeTable("phone → MCU: RF Write Message, then the MCU reads it over I2C",
		func(n int) {
			msg := pattern(n)
			model := rigs.MailboxWriteTime(n, false)
			var times []time.Duration
			onVirtualTime(func(vb *bubble) {
				b := newTagBench(vb)
				for range reps {
					before := b.model.ModeledTime()
					Expect(b.drv.WriteMessage(vb.ctx, msg)).To(Succeed())
					times = append(times, b.tr.lastExchange(cmdWriteMsg))
					Expect(b.model.ModeledTime()-before).To(Equal(model), "the twin accounts exactly the model")
					Expect(int(b.i2cRead(mbLen, 1)[0]) + 1).To(Equal(n))
					Expect(b.i2cRead(mbBuffer, n)).To(Equal(msg), "the MCU reads what the phone wrote")
				}
			})
			got := slowest(times)
			reports.Record(reports.Duration(writeName(n), "", got))
			for _, d := range times {
				Expect(within(d, model, tolerance)).To(BeTrue(),
					"%d-byte Write Message took %v, model %v (±%.0f %%); runs %v", n, d, model, tolerance*100, times)
			}
		}, sizeEntries())

	DescribeTable("MCU → phone: the MCU writes over I2C, then RF Read Message",
		func(n int) {
			msg := pattern(n)
			model := rigs.MailboxReadTime(n, false)
			var times []time.Duration
			onVirtualTime(func(vb *bubble) {
				b := newTagBench(vb)
				for range reps {
					b.i2cWrite(mbBuffer, msg...)
					before := b.model.ModeledTime()
					got, err := b.drv.ReadMessage(vb.ctx) // Read Message Length, then Read Message
					Expect(err).NotTo(HaveOccurred())
					Expect(got).To(Equal(msg), "the phone reads what the MCU wrote")
					times = append(times, b.tr.lastExchange(cmdReadMsg))
					Expect(b.model.ModeledTime()-before).To(Equal(rigs.MailboxLengthTime(false)+model), "the twin accounts exactly the model")
				}
			})
			got := slowest(times)
			reports.Record(reports.Duration(readName(n), "", got))
			for _, d := range times {
				Expect(within(d, model, tolerance)).To(BeTrue(),
					"%d-byte Read Message took %v, model %v (±%.0f %%); runs %v", n, d, model, tolerance*100, times)
			}
		}, sizeEntries())

	// The control: virtual time is not the model read back. An exchange
	// that costs one RF command more on the path (here a Read Message
	// Length before each Write Message, inside the exchange) takes that
	// much longer, and the ±5 % check rejects it wherever one command is
	// more than 5 % of the exchange: up to ≈ 216 bytes (at 256 B the
	// 3.45 ms command is 4.3 % of 80.8 ms).
	DescribeTable("rejects an exchange that costs one RF command more than the model",
		func(n int) {
			model := rigs.MailboxWriteTime(n, false)
			var got time.Duration
			onVirtualTime(func(vb *bubble) {
				b := newTagBench(vb)
				b.tr.Transport = extraCommand{Transport: b.tr.Transport, before: cmdWriteMsg}
				Expect(b.drv.WriteMessage(vb.ctx, pattern(n))).To(Succeed())
				got = b.tr.lastExchange(cmdWriteMsg)
			})
			Expect(got-model).To(Equal(rigs.MailboxLengthTime(false)), "the extra command's modelled time, exactly")
			Expect(within(got, model, tolerance)).To(BeFalse(),
				"%d-byte Write Message with an extra command took %v, model %v: the check should reject it", n, got, model)
		},
		Entry("1 B", 1), Entry("64 B", 64), Entry("128 B", 128))

	It("is judged by limits that are the model ±5 % (reports/limits/emulated.yaml)", func() {
		p, err := reports.FindLimits("emulated")
		Expect(err).NotTo(HaveOccurred())
		l, err := reports.LoadLimits(p)
		Expect(err).NotTo(HaveOccurred())
		check := func(name string, model time.Duration) {
			GinkgoHelper()
			ms := float64(model) / float64(time.Millisecond)
			i := slices.IndexFunc(l.Entries, func(e reports.Limit) bool { return e.Measurement == name })
			Expect(i).To(BeNumerically(">=", 0), "%s: no limit for %q", p, name)
			e := l.Entries[i]
			Expect(e.Unit).To(Equal("ms"), name)
			Expect(e.Low).NotTo(BeNil(), name)
			Expect(e.High).NotTo(BeNil(), name)
			Expect(*e.Low).To(BeNumerically("~", ms*(1-tolerance), 0.001), "%s: low limit vs model %.3f ms", name, ms)
			Expect(*e.High).To(BeNumerically("~", ms*(1+tolerance), 0.001), "%s: high limit vs model %.3f ms", name, ms)
		}
		for _, n := range sizes {
			check(writeName(n), rigs.MailboxWriteTime(n, false))
			check(readName(n), rigs.MailboxReadTime(n, false))
		}
	})
})
