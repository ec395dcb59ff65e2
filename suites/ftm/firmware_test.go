package ftm_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/reports/progress"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// firmwareBench is the default emulated board (rigs/emulated.yaml): the
// tag twin wired to the STM32WL5 firmware twin (I2C at 1 MHz and the GPO
// line), and the phone app on the reader side.
type firmwareBench struct {
	*bench
	slot  rigs.FirmwareSlot
	tag   phone.Tag
	phone *phone.Phone
	opts  phone.Options // the board's (its mailbox protocol)
}

// newFirmwareBench is the phone's side of board b: the rig returned once
// the firmware had booted (NDEF written, MB_MODE and MB_EN set by the
// firmware itself).
func newFirmwareBench(ctx context.Context, board *rigs.Board) *firmwareBench {
	GinkgoHelper()
	b := newBench(board)
	slot := kit.NeedOwn[rigs.FirmwareSlot](board)
	Eventually(func() bool {
		st, err := b.drv.MailboxStatus(ctx)
		return err == nil && st.Enabled
	}).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(BeTrue())
	tag := phone.NFCTag(b.drv)
	opts := board.PhoneOptions(phone.Options{})
	return &firmwareBench{bench: b, slot: slot, tag: tag, phone: phone.New(tag, nil, opts), opts: opts}
}

func randomImage(n int) []byte {
	GinkgoHelper()
	img := make([]byte, n)
	_, err := rand.Read(img)
	Expect(err).NotTo(HaveOccurred())
	return img
}

// rfLimit is the physical ceiling of phone → device throughput: a whole
// mailbox per non-addressed 256-byte Write Message (80.78 ms, DS Table 255:
// 80.7 ms), ≈ 3169 B/s, with no status polls, no I2C and no protocol.
func rfLimit() float64 { return 256 / rigs.MailboxWriteTime(256, false).Seconds() }

// streamed is what a firmware transfer on virtual time left for the spec
// to judge and record.
type streamed struct {
	res    phone.FirmwareResult
	staged *rigs.StagedImage
}

// streamFirmware streams img to the firmware twin of rigs/emulated.yaml in
// realistic timing, in a bubble (onVirtualTime: its time is the modelled
// time of every RF exchange, I2C transaction and poll timer on the path),
// through tag — the board's phone.Tag, or one a spec wraps around it —
// and returns the result and the staged image.
func streamFirmware(img []byte, name string, wrap func(phone.Tag) phone.Tag) streamed {
	GinkgoHelper()
	return streamFirmwareAs(img, name, wrap, nil)
}

// streamFirmwareAs is streamFirmware paced by a phone or reader profile.
func streamFirmwareAs(img []byte, name string, wrap func(phone.Tag) phone.Tag, profile *phone.Profile) streamed {
	GinkgoHelper()
	var out streamed
	onVirtualTime(func(vb *bubble) {
		fb := newFirmwareBench(vb.ctx, upInProcess(vb, loadRig(firmwareRig, "realistic")))
		p := fb.phone
		if wrap != nil {
			p = phone.New(wrap(fb.tag), nil, fb.opts)
		}
		size := len(img)
		fmt.Fprintf(GinkgoWriter, "%s: %d B over %s, RF limit %.0f B/s (virtual time)\n", name, size, mailboxProtocol, rfLimit())
		next := size / 4
		// The console's progress lines run on the bubble's clock: the
		// elapsed time is the modelled one.
		bar := progress.NewCounter(name+" (modelled time)", size, "B", nil)
		res, err := p.SendFirmware(vb.ctx, img, phone.FirmwareOptions{
			Profile: profile,
			Progress: func(p phone.FirmwareProgress) {
				bar.Set(p.Sent, 0)
				if p.Sent < next && p.Sent < p.Size {
					return
				}
				next += size / 4
				bps := float64(p.Sent) / p.Elapsed.Seconds()
				fmt.Fprintf(GinkgoWriter, "  %6d / %d B (%3.0f %%) %6.2f s  %4.0f B/s = %.1f %% of the RF limit\n",
					p.Sent, p.Size, 100*float64(p.Sent)/float64(p.Size), p.Elapsed.Seconds(), bps, 100*bps/rfLimit())
			},
		})
		Expect(err).NotTo(HaveOccurred())
		out = streamed{res: res, staged: fb.slot.StagedFirmware()}
	})
	return out
}

var _ = Describe("a firmware image over FTM", Label("ftm", "firmware"), func() {
	DescribeTable(streamTitle(),
		Label("timing:realistic"),
		func(size int) {
			if size > 16<<10 && !strings.Contains(GinkgoLabelFilter(), "slow") {
				// Plain go test has no label filter; make emulate leaves it out.
				Skip("the 64 KiB image (≈ 23 s modelled, < 1 s of wall time): go tool ginkgo --label-filter=slow ./suites/ftm")
			}
			img := randomImage(size)
			name := fwName(fmt.Sprintf("ftm firmware %d KiB", size>>10))
			st := streamFirmware(img, name, nil)
			res := st.res
			Expect(st.staged).NotTo(BeNil(), "the device staged no image")
			Expect(st.staged.SHA256).To(Equal(sha256.Sum256(img)))
			Expect(st.staged.Data).To(Equal(img))

			bps := res.BytesPerSecond()
			ratio := 100 * bps / rfLimit()
			reports.Record(reports.Measurement{Name: name + " throughput", Value: bps, Unit: "B/s"})
			reports.Record(reports.Measurement{Name: name + " ratio", Value: ratio, Unit: "%"})
			reports.Record(reports.Duration(name+" transfer", "", res.Wall))
			AddReportEntry(name, fmt.Sprintf("%d chunks, %d status polls, %v modelled: %.0f B/s, %.1f %% of the RF limit (%.0f B/s)",
				res.Chunks, res.Polls, res.Wall.Round(time.Millisecond), bps, ratio, rfLimit()))
		},
		Entry("16 KiB", 16<<10),
		Entry("64 KiB", Label("slow"), 64<<10),
	)

	// The control: the throughput is the path's modelled time, not a
	// constant. A phone that reads MB_CTRL_Dyn once more per message (one
	// RF command, ≈ 4 ms on an ≈ 87 ms chunk) is slower, and over
	// tap2join framing falls under the 90 % target.
	It("is slower with one more RF command per message (under 90 % of the RF limit over tap2join framing)", Label("timing:realistic"), func() {
		img := randomImage(16 << 10)
		plain := streamFirmware(img, fwName("ftm firmware 16 KiB"), nil)
		st := streamFirmware(img, fwName("ftm firmware 16 KiB, one more poll per message"), func(t phone.Tag) phone.Tag {
			return &pollingTag{Tag: t}
		})
		Expect(st.staged).NotTo(BeNil(), "the device staged no image")
		ratio := 100 * st.res.BytesPerSecond() / rfLimit()
		Expect(st.res.Wall).To(BeNumerically(">", plain.res.Wall), "the extra polls cost modelled time")
		if !overST25FTM() {
			Expect(ratio).To(BeNumerically("<", 90), "%.1f %% of the RF limit", ratio)
		}
	})

	if overST25FTM() {
		// ST25FTM's own integrity check: the segment CRC (STM32 CRC unit)
		// catches the flipped bit, the device answers 81h and the phone
		// sends the segment again, same parity (AN5512; st25ftm_rx.c).
		It("resends a segment whose packet was corrupted on the way (status 81h); the image verifies", func(ctx SpecContext) {
			fb := newFirmwareBench(ctx, upBoard(ctx, loadRig(firmwareRig, "instant")))
			// Message 1 is FW_BEGIN, 2 the phone's status for FW_READY,
			// 3 the data command's first packet.
			bad := &corruptingTag{Tag: fb.tag, at: 3}
			p := phone.New(bad, nil, fb.opts)
			img := randomImage(4 << 10)
			_, err := p.SendFirmware(ctx, img, phone.FirmwareOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(bad.firsts).To(Equal(2), "the first segment went twice")
			Expect(fb.slot.StagedFirmware()).NotTo(BeNil())
			Expect(fb.slot.StagedFirmware().Data).To(Equal(img))
		})
	} else {
		It("fails with IMAGE_MISMATCH when a chunk is corrupted on the way, and stages nothing", func(ctx SpecContext) {
			fb := newFirmwareBench(ctx, upBoard(ctx, loadRig(firmwareRig, "instant")))
			// Message 1 is FW_BEGIN; message 3 the second chunk.
			bad := &corruptingTag{Tag: fb.tag, at: 3}
			p := phone.New(bad, nil, fb.opts)
			_, err := p.SendFirmware(ctx, randomImage(4<<10), phone.FirmwareOptions{})
			Expect(err).To(MatchError(ContainSubstring("IMAGE_MISMATCH")))
			Expect(fb.slot.StagedFirmware()).To(BeNil())
			// The device is back to frames: a request is answered.
			_, err = p.Identity(ctx)
			Expect(err).NotTo(HaveOccurred())
		})
	}
})

// streamTitle says how the image travels on the run's protocol.
func streamTitle() string {
	if overST25FTM() {
		return "streams the image as one ST25FTM command, segments acknowledged by status byte; the device verifies the SHA-256"
	}
	return "streams 256-byte chunks with no per-chunk answer; the device verifies the SHA-256"
}

// corruptingTag flips one bit of the at-th message written: a corruption the
// air's CRC-16 missed, or a bug in the phone's buffer handling.
type corruptingTag struct {
	phone.Tag
	n, at  int
	firsts int // ST25FTM packets in First position written (a segment resent counts twice)
}

func (c *corruptingTag) WriteMessage(ctx context.Context, msg []byte) error {
	c.n++
	if p, err := st25ftm.Parse(msg); err == nil && len(msg) > 1 && p.Ctrl.Position == st25ftm.First {
		c.firsts++
	}
	if c.n == c.at {
		msg = append([]byte(nil), msg...)
		msg[len(msg)/2] ^= 0x01
	}
	return c.Tag.WriteMessage(ctx, msg)
}

// pollingTag reads MB_CTRL_Dyn once more after every message it writes: a
// phone that costs one RF command more per chunk.
type pollingTag struct {
	phone.Tag
}

func (p *pollingTag) WriteMessage(ctx context.Context, msg []byte) error {
	if err := p.Tag.WriteMessage(ctx, msg); err != nil {
		return err
	}
	_, _, err := p.MailboxPending(ctx)
	return err
}

// The same 16 KiB image as real phones and readers pace it (rigs/phone
// Profiles: their poll interval and the gap they leave between commands;
// sources in profile.go, guesses marked UNCONFIRMED there). ST estimates
// ≈ 2.4 kB/s for its Android app; users measure 0.18–0.75 kB/s. On virtual
// time: the figures are the model's, whatever the host's load.
var _ = Describe("a firmware image over FTM, per phone and reader", Label("ftm", "firmware", "profiles"), func() {
	for _, name := range phone.ProfileNames() {
		It("streams 16 KiB as "+name+" paces it", Label("timing:realistic"), func() {
			pr := phone.Profiles[name]
			img := randomImage(16 << 10)
			st := streamFirmwareAs(img, fwName("ftm firmware 16 KiB ("+name+")"), nil, &pr)
			Expect(st.staged).NotTo(BeNil(), "the device staged no image")
			Expect(st.staged.Data).To(Equal(img))
			bps := st.res.BytesPerSecond()
			reports.Record(reports.Measurement{Name: fwName("ftm firmware throughput " + name), Value: bps, Unit: "B/s"})
			reports.Record(reports.Measurement{Name: fwName("ftm firmware share of the RF limit " + name), Value: 100 * bps / rfLimit(), Unit: "%"})
			AddReportEntry("profile "+name, fmt.Sprintf("%.0f B/s = %.1f %% of the RF limit (%.0f B/s); %s", bps, 100*bps/rfLimit(), rfLimit(), pr.Source))
			if pr.CommandGap > 0 {
				// A command gap caps the rate at one chunk per gap.
				Expect(bps).To(BeNumerically("<=", float64(pr.Chunk)/pr.CommandGap.Seconds()))
			}
		})
	}
})
