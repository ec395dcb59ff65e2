package faults_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/brocaar/lorawan"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// join waits for the network server's join and first uplink of dev.
func join(ctx context.Context, rig *rigs.Rig, dev provproto.EUI64) lorawan.DevAddr {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := rig.Joins().AwaitJoin(ctx, dev)
	Expect(err).NotTo(HaveOccurred(), "join of %s", dev)
	addr, err := rig.Joins().AwaitUplink(ctx, dev)
	Expect(err).NotTo(HaveOccurred(), "first uplink of %s", dev)
	return addr
}

// When the hand lifts the phone off the tag as it writes the PROVISION.
type liftAt int

const (
	liftBeforeWrite liftAt = iota // as the phone sends it: it never reaches the tag
	liftAfterWrite                // between the Write Message and the device's answer
)

// liftedMidWrite is a provisioning the phone was lifted out of.
type liftedMidWrite struct {
	rig  *rigs.Rig
	b    *rigs.Board // the board provisioned
	hand rigs.PhoneHand
	be   *backend
	err  error // the phone's
}

// liftMidWrite brings a rig up and provisions its board through a phone the
// hand lifts off the tag at the second message of the exchange (PROVISION,
// after GET_IDENTITY), at the moment named; the provisioning must fail in
// the write-key phase.
func liftMidWrite(ctx context.Context, at liftAt) liftedMidWrite {
	GinkgoHelper()
	rig := upRig(ctx, loadRig(), rigs.Options{})
	b := rig.Boards[0]
	hand := kit.Need[rigs.PhoneHand](b)
	be := &backend{c: rig.Backend}
	tag := &tapTag{Tag: phone.NFCTag(b.Tag)}
	lift := func(msg []byte) {
		if isProvision(msg) {
			Expect(hand.Lift()).To(Succeed())
		}
	}
	if at == liftBeforeWrite {
		tag.before = lift
	} else {
		tag.after = lift
	}
	p := phone.New(tag, be, b.PhoneOptions(phone.Options{}))
	_, err := p.Provision(ctx, rig.Region, rig.Joins())
	Expect(err).To(HaveOccurred())
	Expect(phone.PhaseOf(err)).To(Equal(phone.PhaseWriteKey))
	return liftedMidWrite{rig: rig, b: b, hand: hand, be: be, err: err}
}

var _ = Describe("the phone lifted mid-write", Label("faults", "cap:PhoneHand"), func() {
	It("fails naming the phase when the PROVISION never reaches the tag; the device holds no key; a re-tap writes it and it joins", func(ctx SpecContext) {
		// The phone leaves the field as it sends the PROVISION.
		l := liftMidWrite(ctx, liftBeforeWrite)
		rig, b, hand, be, err := l.rig, l.b, l.hand, l.be, l.err
		Expect(err.Error()).To(ContainSubstring(`phase "write key" failed`))
		Expect(errors.Is(err, nfc.ErrNoResponse)).To(BeTrue(), "the error says the tag did not answer: %v", err)
		kit.ExpectNoIssuedKeys(err.Error(), "the error")

		// Re-tap: the device never saw the key.
		Expect(hand.Tap()).To(Succeed())
		id := deviceState(ctx, b)
		Expect(id.State).To(Equal(provproto.StateFactory), "no key stored")

		// Retry of the failed phase with the key the app still holds.
		retry := phone.New(phone.NFCTag(b.Tag), be, b.PhoneOptions(phone.Options{}))
		id, err = retry.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		ack, err := retry.WriteKey(ctx, id, be.last, rig.Region)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.AppKCV).To(Equal(kcvOf(be.last)))
		addr := join(ctx, rig, id.DevEUI)
		root, app, ok := keyKCVs(ctx, b)
		if ok {
			Expect(root).To(Equal(kcvOf(be.last)), "the device joins with the full new key")
			Expect(app).To(Equal(root))
		}
		outcome("tag lifted before the PROVISION reached the tag",
			fmt.Sprintf("phone error names phase %q; device kept no key (state %s); re-tapped, retried and joined as %s with key KCV %s",
				phone.PhaseWriteKey, provproto.StateFactory, addr, kcvOf(be.last)))
	}, SpecTimeout(time.Minute))

	It("fails naming the phase when the field goes between Write Message and the answer; the device holds the full new key; the re-tap reads the ACK and it joins", func(ctx SpecContext) {
		l := liftMidWrite(ctx, liftAfterWrite)
		rig, b, hand, be, err := l.rig, l.b, l.hand, l.be, l.err
		Expect(errors.Is(err, nfc.ErrNoResponse)).To(BeTrue(), "the error says the tag did not answer: %v", err)

		// The device read the whole message over I2C (the field plays no
		// part there), stored the key and posted its ACK.
		want := kcvOf(be.last)
		awaitEvents(ctx, b.Console, "+EVT:NFC_PROVISIONED", kit.Named("NFC_PROVISIONED"))
		Expect(hand.Tap()).To(Succeed())
		Eventually(func(g Gomega) {
			st, err := b.Tag.MailboxStatus(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.HostPut).To(BeTrue(), "the device's answer waits in the mailbox: %s", st)
		}).WithContext(ctx).Should(Succeed())
		f, err := b.Phone.PendingAnswer(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Type).To(Equal(provproto.TypeProvisionAck))
		ack, err := provproto.ParseAck(f.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.AppKCV).To(Equal(want), "the ACK names the issued key")

		nid, err := b.Phone.ReadNDEFIdentity(ctx)
		Expect(err).NotTo(HaveOccurred())
		addr := join(ctx, rig, nid.DevEUI)
		id := deviceState(ctx, b)
		Expect(id.State).To(Equal(provproto.StateJoined))
		root, app, ok := keyKCVs(ctx, b)
		if ok {
			Expect(root).To(Equal(want), "the full new key, not a part of it")
			Expect(app).To(Equal(want))
		}
		outcome("tag lifted between Write Message and the device's answer",
			fmt.Sprintf("phone error names phase %q; device stored the full new key (KCV %s); re-tap read the pending ACK; joined as %s", phone.PhaseWriteKey, want, addr))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("the phone lifted before it read the answer", Label("faults", "cap:PhoneHand"), func() {
	It("leaves the answer in the mailbox; the next tap reads it out, discards it and provisions", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		hand := kit.Need[rigs.PhoneHand](b)
		// GET_IDENTITY written, then the phone goes before the answer.
		Expect(b.Phone.Post(ctx, provproto.MarshalGetIdentity())).To(Succeed())
		Eventually(func(g Gomega) {
			st, err := b.Tag.MailboxStatus(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.HostPut).To(BeTrue(), "the device's answer waits in the mailbox: %s", st)
		}).WithContext(ctx).Should(Succeed())
		Expect(hand.Lift()).To(Succeed())
		Expect(hand.Tap()).To(Succeed())

		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Phone.StaleAnswers()).To(Equal(1), "the phone found the old answer and discarded it")
		outcome("phone lifted before reading the IDENTITY answer",
			fmt.Sprintf("the answer stayed in the mailbox; the next tap drained it (Write Message 0Fh → Read Message), provisioned (KCV %s) and joined as %s", res.KCV, res.DevAddr))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("corrupted and replayed PROVISION messages", Label("faults"), func() {
	It("rejects them with BAD_CRC and REPLAY and keeps the key", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		tag := &tapTag{Tag: phone.NFCTag(b.Tag)}
		be, res := provision(ctx, rig, b, tag)
		Expect(tag.provisions).To(HaveLen(1), "the PROVISION on the air, captured")
		old := kcvOf(be.last)
		unchanged := func(what string) {
			GinkgoHelper()
			id := deviceState(ctx, b)
			Expect(id.State).To(Equal(provproto.StateJoined), "%s: state", what)
			Expect(id.JoinEUI).To(Equal(res.JoinEUI), "%s: JoinEUI", what)
			if root, app, ok := keyKCVs(ctx, b); ok {
				Expect(root).To(Equal(old), "%s: root key", what)
				Expect(app).To(Equal(old), "%s: AppKey", what)
			}
		}
		p := phone.New(phone.NFCTag(b.Tag), nil, b.PhoneOptions(phone.Options{Reprovision: true}))

		// A PROVISION for the current nonce with a new key, one byte flipped.
		id, err := p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		var k provproto.Keys
		_, _ = rand.Read(k.AppKey[:])
		frame, err := provproto.Provision{Nonce: id.Nonce, Reprovision: true, Region: rig.Region, JoinEUI: res.JoinEUI, Keys: k}.MarshalClear()
		Expect(err).NotTo(HaveOccurred())
		frame[len(frame)/2] ^= 0x01
		_, err = p.Exchange(ctx, frame)
		st, ok := provproto.StatusOf(err)
		Expect(ok).To(BeTrue(), "an ERROR answer: %v", err)
		Expect(st).To(Equal(provproto.BadCRC))
		unchanged("after BAD_CRC")
		outcome("corrupted PROVISION", "BAD_CRC rejected, device unchanged (key KCV "+old.String()+")")

		// The captured PROVISION again: its nonce is spent.
		_, err = p.Exchange(ctx, tag.provisions[0])
		st, ok = provproto.StatusOf(err)
		Expect(ok).To(BeTrue(), "an ERROR answer: %v", err)
		Expect(st).To(Equal(provproto.Replay))
		// The BAD_CRC before may have been reported too: tolerated.
		awaitEvents(ctx, b.Console, "+EVT:NFC_REJECTED REPLAY", func(e at.Event) bool { return e.Line == "+EVT:NFC_REJECTED REPLAY" }, "NFC_REJECTED")
		unchanged("after the replay")
		// And after a fresh IDENTITY (a new nonce) it is still a replay.
		_, err = p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		_, err = p.Exchange(ctx, tag.provisions[0])
		st, _ = provproto.StatusOf(err)
		Expect(st).To(Equal(provproto.Replay))
		unchanged("after the replay on a fresh nonce")
		outcome("replayed PROVISION", "REPLAY rejected, device unchanged (key KCV "+old.String()+")")
	}, SpecTimeout(time.Minute))
})

// SPEC §5.1: the nonce of an IDENTITY is single-use — the PROVISION that
// spends it, accepted or not, consumes it. A device that only rotates its
// nonce on the next IDENTITY read accepts the PROVISION it just applied a
// second time: an eavesdropper replaying a captured re-provisioning frame
// while the phone is still on the tag re-keys the device again. The spec
// above always reads an IDENTITY before its replays, so it cannot see that.
var _ = Describe("a PROVISION replayed right after it was applied, before any new IDENTITY", Label("faults"), func() {
	It("is rejected with REPLAY (the nonce was spent by the first), first provisioning and re-provisioning alike", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		tag := &tapTag{Tag: phone.NFCTag(b.Tag)}
		be, _ := provision(ctx, rig, b, tag)
		Expect(tag.provisions).To(HaveLen(1), "the PROVISION on the air, captured")
		raw := phone.New(phone.NFCTag(b.Tag), nil, b.PhoneOptions(phone.Options{}))
		replay := func(frame []byte, what string) {
			GinkgoHelper()
			_, err := raw.Exchange(ctx, frame)
			st, ok := provproto.StatusOf(err)
			Expect(ok).To(BeTrue(), "%s: an ERROR answer, got %v", what, err)
			Expect(st).To(Equal(provproto.Replay), "%s: a device that kept the spent nonce answers ALREADY_PROVISIONED or applies it again", what)
			awaitEvents(ctx, b.Console, "+EVT:NFC_REJECTED REPLAY", func(e at.Event) bool { return e.Line == "+EVT:NFC_REJECTED REPLAY" }, "NFC_REJECTED")
		}
		replay(tag.provisions[0], "the first provisioning's PROVISION")
		first := kcvOf(be.last)

		// Re-provisioning: the backend issues a new key, the device applies
		// it and joins; then the same frame again, no IDENTITY between.
		_, err := phone.New(tag, be, b.PhoneOptions(phone.Options{Reprovision: true})).Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred())
		Expect(tag.provisions).To(HaveLen(2))
		second := kcvOf(be.last)
		Expect(second).NotTo(Equal(first), "re-provisioning issued a new key")
		replay(tag.provisions[1], "the re-provisioning PROVISION")
		id := deviceState(ctx, b)
		Expect(id.State).To(Equal(provproto.StateJoined), "the device keeps its session")
		if root, app, ok := keyKCVs(ctx, b); ok {
			Expect(root).To(Equal(second), "root key")
			Expect(app).To(Equal(second), "AppKey")
		}
		outcome("PROVISION replayed before the next IDENTITY", "REPLAY rejected (first and re-provisioning), key KCV "+second.String()+" kept")
	}, SpecTimeout(time.Minute))
})

var _ = Describe("wrong RF passwords", Label("faults", "cap:MCUControl"), func() {
	It("answers the chip's error, keeps the area protected, and opens it for the right password", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		mcu := kit.Need[rigs.MCUControl](b)
		d := b.Tag
		var factory, secret, wrong [8]byte
		copy(secret[:], "t2j-pwd1")
		copy(wrong[:], "t2j-pwd2")
		// Configuration session (RF_PWD_0): area 2 from byte 2048, read and
		// write protected by RF_PWD_1 (RFA2SS = 1001b, DS Table 44); then
		// RF_PWD_1 changed from its factory value.
		Expect(d.PresentPassword(ctx, 0, factory)).To(Succeed())
		Expect(d.WriteConfig(ctx, 0x05, 0x3F)).To(Succeed()) // ENDA1
		Expect(d.WriteConfig(ctx, 0x06, 0x09)).To(Succeed()) // RFA2SS
		Expect(d.PresentPassword(ctx, 1, factory)).To(Succeed())
		Expect(d.WritePassword(ctx, 1, secret)).To(Succeed())
		const area2 = 2048 / 4 // first block of area 2
		// RF writes to user memory need the mailbox off (DS §5.1.2), which the
		// firmware turns back on: it is halted meanwhile.
		Expect(mcu.HaltMCU()).To(Succeed())
		Expect(d.SetMailbox(ctx, false)).To(Succeed())

		// A wrong password: ISO error 0Fh, every RF session closed.
		err := d.PresentPassword(ctx, 1, wrong)
		Expect(err).To(MatchError(&nfc.ISOError{Code: nfc.CodeUnknown}))
		_, err = d.ReadBlocks(ctx, area2, 1)
		Expect(err).To(MatchError(&nfc.ISOError{Code: nfc.CodeReadProtected}), "area 2 stays read-protected")
		Expect(d.WriteBlocks(ctx, area2, []byte{1, 2, 3, 4})).To(MatchError(&nfc.ISOError{Code: nfc.CodeLocked}), "and write-protected")
		// The factory password no longer opens it either.
		Expect(d.PresentPassword(ctx, 1, factory)).To(MatchError(&nfc.ISOError{Code: nfc.CodeUnknown}))
		_, err = d.ReadBlocks(ctx, area2, 1)
		Expect(err).To(MatchError(&nfc.ISOError{Code: nfc.CodeReadProtected}))

		// The right one opens it.
		Expect(d.PresentPassword(ctx, 1, secret)).To(Succeed())
		Expect(d.WriteBlocks(ctx, area2, []byte{1, 2, 3, 4})).To(Succeed())
		got, err := d.ReadBlocks(ctx, area2, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal([]byte{1, 2, 3, 4}))
		// Area 1 (the NDEF identity) is not behind the password: with every
		// session closed again the phone still reads the device, whose
		// firmware (reset) serves the mailbox again.
		Expect(d.PresentPassword(ctx, 1, wrong)).NotTo(Succeed())
		Expect(mcu.ResetMCU(ctx)).To(Succeed())
		kit.AwaitMailbox(ctx, b)
		_, err = b.Phone.ReadNDEFIdentity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(deviceState(ctx, b).State).To(Equal(provproto.StateFactory))
		outcome("wrong RF password", "ISO error 0Fh; area 2 stayed read- and write-protected (15h/12h); the right password opened it")
	}, SpecTimeout(time.Minute))
})

var _ = Describe("an MCU that does not read its mailbox", Label("faults", "cap:MCUControl", "cap:MailboxWatchdog"), func() {
	It("gets the message released by the mailbox watchdog, the phone a clear timeout, and a reset board answers again", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		mcu := kit.Need[rigs.MCUControl](b)
		wdg := kit.Need[rigs.MailboxWatchdog](b)
		d := b.Tag
		// MB_WDG = 1: 30 ms (DS Table 16), set by the phone in the
		// configuration session; MB_MODE stays 1.
		var factory [8]byte
		Expect(d.PresentPassword(ctx, 0, factory)).To(Succeed())
		ftm, err := d.ReadConfig(ctx, 0x0D)
		Expect(err).NotTo(HaveOccurred())
		Expect(ftm&0x01).To(BeEquivalentTo(1), "the firmware enabled MB_MODE")
		Expect(d.WriteConfig(ctx, 0x0D, 0x01|1<<1)).To(Succeed())

		Expect(mcu.HaltMCU()).To(Succeed())
		const timeout = 50 * time.Millisecond
		p := phone.New(phone.NFCTag(d), nil, b.PhoneOptions(phone.Options{ReplyTimeout: timeout}))
		_, err = p.Identity(ctx)
		Expect(err).To(HaveOccurred())
		Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue())
		Expect(err.Error()).To(ContainSubstring("no answer from the device within " + timeout.String()))
		st, err := d.MailboxStatus(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.RFPut).To(BeTrue(), "the request still waits for the device: %s", st)
		Expect(st.Free()).To(BeFalse())

		expired, err := wdg.ExpireMailboxWatchdog()
		Expect(err).NotTo(HaveOccurred())
		Expect(expired).To(BeTrue(), "MB_WDG released the message")
		st, err = d.MailboxStatus(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Raw).To(BeEquivalentTo(0x91), "RF_CURRENT | HOST_MISS | MB_EN (DS Figure 12): %s", st)
		Expect(st.HostMiss).To(BeTrue(), "the host missed the RF message")
		Expect(st.RFMiss).To(BeFalse())
		Expect(st.Free()).To(BeTrue(), "the mailbox takes a new message")

		// The device comes back: a reset, and the same phone is answered.
		Expect(mcu.ResetMCU(ctx)).To(Succeed())
		kit.AwaitMailbox(ctx, b)
		id, err := phone.New(phone.NFCTag(d), nil, b.PhoneOptions(phone.Options{})).Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.State).To(Equal(provproto.StateFactory))
		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred())
		outcome("MCU not reading the mailbox",
			fmt.Sprintf("phone: no answer within %v; MB_WDG released the message (MB_CTRL_Dyn 91h, HOST_MISS); after a reset the device answered, was provisioned and joined as %s", timeout, res.DevAddr))
	}, SpecTimeout(time.Minute))
})
