package faults_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// Faults only ST's mailbox protocol has (SPEC.md §8; AN5512, st25ftm_rx.c
// and st25ftm_tx.c of fp-sns-smartag2): its segment CRC, its resume after
// a field loss, its receiver's abort. Declared when the run's rig speaks
// ST25FTM (make test: rigs/emulated-st25ftm.yaml).
var _ = func() bool {
	if kit.MailboxProtocol() != phone.MailboxST25FTM {
		return false
	}
	Describe("ST25FTM faults", Label("faults", "st25ftm"), func() {
		It("catches a PROVISION packet corrupted on the air by the segment CRC (81h); the phone resends it and the key arrives whole", func(ctx SpecContext) {
			rig := upRig(ctx, loadRig(), rigs.Options{})
			b := rig.Boards[0]
			be := &backend{c: rig.Backend}
			tag := &packetTag{Tag: phone.NFCTag(b.Tag), corrupt: isProvision}
			res, err := phone.New(tag, be, b.PhoneOptions(phone.Options{})).Provision(ctx, rig.Region, rig.Joins())
			Expect(err).NotTo(HaveOccurred())
			Expect(tag.corrupted).To(Equal(1))
			Expect(tag.provisions).To(Equal(2), "the PROVISION went twice: corrupted, then whole")
			Expect(res.KCV).To(Equal(kcvOf(be.last)), "the ACK names the issued key")
			if root, app, ok := keyKCVs(ctx, b); ok {
				Expect(root).To(Equal(kcvOf(be.last)), "the device holds the whole key")
				Expect(app).To(Equal(root))
			}
			outcome("PROVISION packet corrupted on the air (ST25FTM)",
				fmt.Sprintf("device answered 81h (segment CRC), the phone resent the segment; key KCV %s stored; joined as %s", res.KCV, res.DevAddr))
		}, SpecTimeout(time.Minute))

		// A 4 KiB image is one command of four segments of five packets:
		// the hand lifts the phone before a packet in the middle of the
		// second segment, or after the second segment's last packet (the
		// status byte not yet read), and puts it back at the next poll.
		DescribeTable("resumes a segment when the field comes back after a loss; the image arrives whole", Label("cap:PhoneHand", "cap:FirmwareSlot"),
			func(ctx SpecContext, afterSegmentEnd bool) {
				rig := upRig(ctx, loadRig(), rigs.Options{})
				b := rig.Boards[0]
				hand := kit.Need[rigs.PhoneHand](b)
				slot := kit.Need[rigs.FirmwareSlot](b)
				tag := &packetTag{Tag: phone.NFCTag(b.Tag), hand: hand}
				tag.liftAt = func(p st25ftm.Packet, written bool) bool {
					if tag.segStarts != 1 || tag.lifts > 0 {
						return false // the second segment only, once
					}
					if afterSegmentEnd {
						return written && p.Ctrl.EndsSegment()
					}
					return !written && p.Ctrl.Position == st25ftm.Middle && p.Ctrl.Ack == 0
				}
				p := phone.New(tag, nil, b.PhoneOptions(phone.Options{}))
				img := make([]byte, 4<<10)
				_, _ = rand.Read(img)
				res, err := p.SendFirmware(ctx, img, phone.FirmwareOptions{})
				Expect(err).NotTo(HaveOccurred())
				Expect(tag.lifts).To(Equal(1), "the phone was lifted once")
				Expect(p.Resumes()).To(Equal(1), "the phone resumed once")
				staged := slot.StagedFirmware()
				Expect(staged).NotTo(BeNil())
				Expect(staged.Data).To(Equal(img), "no byte lost or doubled")
				Expect(res.SHA256).To(Equal(staged.SHA256))
				where := "mid-segment"
				if afterSegmentEnd {
					where = "before the segment's status was read"
				}
				outcome("field lost "+where+" (ST25FTM)", "the phone waited for the field, resumed the segment; the 4 KiB image verified")
			},
			Entry("mid-segment", false, SpecTimeout(time.Minute)),
			Entry("before the segment's status was read", true, SpecTimeout(time.Minute)),
		)

		It("aborts (83h) a command longer than its receive buffer, at the first packet; the next request is answered", func(ctx SpecContext) {
			rig := upRig(ctx, loadRig(), rigs.Options{})
			b := rig.Boards[0]
			tag := &packetTag{Tag: phone.NFCTag(b.Tag)}
			p := phone.New(tag, nil, b.PhoneOptions(phone.Options{}))
			// 1 MiB: more than any STM32WL5's RAM (64 KiB) could buffer.
			huge := make([]byte, 1<<20)
			huge[0] = provproto.FTMFirmware
			_, err := p.Command(ctx, huge)
			Expect(errors.Is(err, phone.ErrFTMAborted)).To(BeTrue(), "the device's abort: %v", err)
			Expect(tag.packets).To(BeNumerically("<=", 2), "the abort came at the first packet")
			id, err := p.Identity(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(id.State).To(Equal(provproto.StateFactory))
			outcome("ST25FTM command over the receive buffer", fmt.Sprintf("device answered 83h after %d packet(s); the next GET_IDENTITY was answered", tag.packets))
		}, SpecTimeout(time.Minute))

		It("answers ST's GET_BOARD_INFO (00h) as ST's demos do, so ST's app can identify the board", func(ctx SpecContext) {
			rig := upRig(ctx, loadRig(), rigs.Options{})
			b := rig.Boards[0]
			ans, err := b.Phone.Command(ctx, []byte{0x00})
			Expect(err).NotTo(HaveOccurred())
			Expect(len(ans)).To(BeNumerically(">=", 2))
			Expect(ans[:2]).To(Equal([]byte{0x80, 0x81}), "code | 80h, status OK (81h)")
			AddReportEntry("GET_BOARD_INFO", string(ans[2:]))
		}, SpecTimeout(time.Minute))
	})
	return true
}()

// packetTag is the phone's tag seen packet by packet: it can flip a bit in
// the first packet corrupt selects (a corruption the air's CRC-16 missed),
// and lift the phone at the packet liftAt selects — before its write
// (written false) or after it — putting it back at the phone's next RF
// command, which fails: the field is gone until then.
type packetTag struct {
	phone.Tag
	corrupt   func([]byte) bool
	hand      rigs.PhoneHand
	liftAt    func(p st25ftm.Packet, written bool) bool
	lifted    bool
	segStarts int // segment starts after the first segment's (liftAt's count)

	packets, corrupted, provisions, lifts int
}

func (t *packetTag) WriteMessage(ctx context.Context, msg []byte) error {
	if len(msg) > 1 {
		t.packets++
	}
	if isProvision(msg) {
		t.provisions++
	}
	if t.corrupt != nil && t.corrupted == 0 && t.corrupt(msg) {
		t.corrupted++
		msg = append([]byte(nil), msg...)
		msg[len(msg)-6] ^= 0x01 // a data byte: the packet's CRC is its last four
	}
	pk, perr := st25ftm.Parse(msg)
	isPacket := perr == nil && len(msg) > 1
	if isPacket && pk.Ctrl.Ack == st25ftm.SegmentStart && pk.Ctrl.Position != st25ftm.First {
		t.segStarts++
	}
	if isPacket && t.liftAt != nil && t.liftAt(pk, false) {
		t.lift()
	}
	if t.lifted {
		err := t.Tag.WriteMessage(ctx, msg)
		t.putBack()
		return err
	}
	err := t.Tag.WriteMessage(ctx, msg)
	if err == nil && isPacket && t.liftAt != nil && t.liftAt(pk, true) {
		t.lift()
	}
	return err
}

func (t *packetTag) MailboxPending(ctx context.Context) (rf, host bool, err error) {
	rf, host, err = t.Tag.MailboxPending(ctx)
	if t.lifted {
		t.putBack()
	}
	return rf, host, err
}

func (t *packetTag) lift() {
	Expect(t.hand.Lift()).To(Succeed())
	t.lifted = true
	t.lifts++
}

func (t *packetTag) putBack() {
	Expect(t.hand.Tap()).To(Succeed())
	t.lifted = false
}
