// Package nfc_test is the ST25DV64KC conformance suite of the reader-side
// driver (rigs/nfc): the same specs run over every transport — "direct"
// (in-process, no reader; rigs/tag-direct.yaml) and "pcsc" (the real
// pcsc-lite stack, the vpcd reader, the rigs/nfc/pcsc transport;
// rigs/tag-pcsc.yaml). What passes here over pcsc is what the driver will do
// through a USB reader.
//
// Each spec brings up a fresh rig whose board's MCU runs no firmware
// (firmware: none): a factory-fresh tag, VCC and field on. The specs play the
// MCU over the tag's I2C side (rigs.TagHost: device 53h user/dynamic/mailbox,
// 57h system), as the STM32WL5 firmware would (DS13519 §6; ST x-cube-nfc7 st25dvxxkc driver),
// and lift the phone with rigs.PhoneHand. A rig that lacks one skips the spec.
package nfc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/ndef"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/suites/kit"
)

func TestNFC(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "NFC conformance")
}

// Bench is one fresh tag in the field of one reader, over one transport.
type Bench struct {
	Tr   nfc.Transport
	host rigs.TagHost
	hand rigs.PhoneHand
	wdg  rigs.MailboxWatchdog
}

// Transport names the rig of one kind of transport.
type Transport struct {
	Name   string
	Labels Labels
	// Rig is the rig file: one emulated board with firmware: none.
	Rig string
	// Setup runs once per container (BeforeAll), e.g. to check for pcscd.
	Setup func(ctx SpecContext)
}

// New brings up a fresh rig for the spec (closed when it ends) and returns
// its tag: VCC on, field on, factory content.
func (tr Transport) New(ctx SpecContext) *Bench {
	GinkgoHelper()
	p, err := rigs.Find(tr.Rig)
	Expect(err).NotTo(HaveOccurred())
	f, err := rigs.Load(p)
	Expect(err).NotTo(HaveOccurred())
	b := kit.UpRig(ctx, f, rigs.Options{}).Boards[0]
	return &Bench{
		Tr:   b.Transport(),
		host: kit.NeedOwn[rigs.TagHost](b),
		hand: kit.NeedOwn[rigs.PhoneHand](b),
		wdg:  kit.NeedOwn[rigs.MailboxWatchdog](b),
	}
}

// uid is the tag UID of rigs/tag-*.yaml: E0 02 51 and the last five bytes of
// the board's unique_id 0080E10000000001.
var uid = [8]byte{0xE0, 0x02, 0x51, 0x00, 0x00, 0x00, 0x00, 0x01}

// i2cWrite and i2cRead are the MCU's one-transaction accesses to the tag's
// user memory, dynamic registers and mailbox (kit.TagUser).
func (b *Bench) i2cWrite(addr int, data ...byte) {
	GinkgoHelper()
	kit.TagI2CWrite(b.host, kit.TagUser, addr, data...)
}

func (b *Bench) i2cRead(addr, n int) []byte {
	GinkgoHelper()
	return kit.TagI2CRead(b.host, kit.TagUser, addr, n)
}

// writeUserMemory writes the user EEPROM from addr as the firmware does: one
// write per 16-byte row, ACK polling after each.
func (b *Bench) writeUserMemory(addr int, data []byte) {
	GinkgoHelper()
	for off := 0; off < len(data); {
		n := min(kit.EEPROMRow-(addr+off)%kit.EEPROMRow, len(data)-off)
		b.i2cWrite(addr+off, data[off:off+n]...)
		kit.TagAckPoll(b.host, kit.TagUser)
		off += n
	}
}

// setFTM writes the static FTM register as the firmware does once
// (kit.TagSetFTM: I2C security session, write, ACK polling, read back).
func (b *Bench) setFTM(v byte) {
	GinkgoHelper()
	kit.TagSetFTM(b.host, v)
}

// Lift takes the phone away and Tap brings it back (rigs.PhoneHand): the
// tag's field off and on over direct; over pcsc the card out of its vpcd
// reader and back in, each once pcscd reports it, so the driver goes through
// the reader's card-removal and reconnect path.
func (b *Bench) Lift() {
	GinkgoHelper()
	Expect(b.hand.Lift()).To(Succeed())
}

func (b *Bench) Tap() {
	GinkgoHelper()
	Expect(b.hand.Tap()).To(Succeed())
}

// ExpireWatchdog lets the mailbox watchdog expire now; false when nothing
// was pending.
func (b *Bench) ExpireWatchdog() bool {
	GinkgoHelper()
	ok, err := b.wdg.ExpireMailboxWatchdog()
	Expect(err).NotTo(HaveOccurred())
	return ok
}

// liftAfter forwards to Tr and lifts the phone right before call number n,
// so a multi-request operation loses the field in the middle.
type liftAfter struct {
	nfc.Transport
	n, calls int
	lift     func()
}

func (l *liftAfter) Transceive(ctx context.Context, f []byte) ([]byte, error) {
	l.calls++
	if l.calls == l.n {
		l.lift()
	}
	return l.Transport.Transceive(ctx, f)
}

func isoErr(code byte) error { return &nfc.ISOError{Code: code} }

// conformance declares the shared specs for one transport.
func conformance(tr Transport) bool {
	return Describe("ST25DV64KC over "+tr.Name, tr.Labels, Ordered, func() {
		if tr.Setup != nil {
			BeforeAll(func(ctx SpecContext) { tr.Setup(ctx) })
		}

		It("identifies itself: inventory and extended system info", func(ctx SpecContext) {
			b := tr.New(ctx)
			// Inventory 26 01 00 → 00 DSFID UID(LSB first).
			resp, err := b.Tr.Transceive(ctx, []byte{0x26, 0x01, 0x00})
			Expect(err).NotTo(HaveOccurred())
			Expect(resp).To(Equal([]byte{0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x51, 0x02, 0xE0}))
			// Ext Get System Info, request field 0F, non-addressed: flags 00,
			// info 0F, UID, DSFID, AFI, 07FF blocks−1 LSB first, 03 size−1, IC ref 51.
			resp, err = b.Tr.Transceive(ctx, []byte{0x02, 0x3B, 0x0F})
			Expect(err).NotTo(HaveOccurred())
			Expect(resp).To(Equal([]byte{0x00, 0x0F, 0x01, 0x00, 0x00, 0x00, 0x00, 0x51, 0x02, 0xE0, 0x00, 0x00, 0xFF, 0x07, 0x03, 0x51}))

			d := nfc.NewST25DV(b.Tr)
			got, dsfid, err := d.Inventory(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(uid))
			Expect(dsfid).To(BeZero())
			si, err := d.SystemInfo(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(si).To(Equal(nfc.SystemInfo{UID: uid, Blocks: 2048, BlockSize: 4, ICRef: 0x51}))
			Expect(si.MemoryBytes()).To(Equal(nfc.ST25DV64KCMemory))
		}, SpecTimeout(specTimeout))

		It("serves the CC and NDEF message the MCU wrote, and takes one over RF", func(ctx SpecContext) {
			recs := []nfc.NDEFRecord{
				ndef.URIRecord("https://tap2join.example/p"),
				ndef.ExternalRecord("tap2join.io:deveui", []byte{0x00, 0x80, 0xE1, 0x15, 0x00, 0x00, 0x00, 0x01}),
			}
			img, err := nfc.EncodeNDEF(recs)
			Expect(err).NotTo(HaveOccurred())
			b := tr.New(ctx)
			b.writeUserMemory(0, img) // the MCU writes the message at boot
			d := nfc.NewST25DV(b.Tr)
			cc, err := d.ReadBlocks(ctx, 0, 2)
			Expect(err).NotTo(HaveOccurred())
			Expect(cc).To(Equal([]byte{0xE2, 0x40, 0x00, 0x01, 0x00, 0x00, 0x03, 0xFF})) // 8-byte CC, AN4911 §3.3
			got, err := d.ReadNDEF(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(HaveLen(2))
			Expect(got[1].Payload).To(Equal(recs[1].Payload))

			// The phone rewrites the message; the MCU sees it over I2C.
			img2, err := nfc.EncodeNDEF([]nfc.NDEFRecord{ndef.URIRecord("https://tap2join.example/q")})
			Expect(err).NotTo(HaveOccurred())
			img2 = append(img2, make([]byte, (4-len(img2)%4)%4)...)
			Expect(d.WriteBlocks(ctx, 0, img2)).To(Succeed())
			Expect(b.i2cRead(0, len(img2))).To(Equal(img2))
			got, err = d.ReadNDEF(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(HaveLen(1))
		}, SpecTimeout(specTimeout))

		It("protects an area with a password; a lift closes the session", func(ctx SpecContext) {
			b := tr.New(ctx)
			d := nfc.NewST25DV(b.Tr)
			// Configuration session, then area 1 = blocks 0..31 (ENDA1 = 03h:
			// last byte 32·3+31) and area 2 read+write protected by RF_PWD_2
			// (RFA2SS = 1010b: RW_PROTECTION 10, PWD_CTRL 10; DS §5.6.3).
			Expect(d.WriteConfig(ctx, 0x05, 0x03)).To(MatchError(isoErr(nfc.CodeUnknown)), "no session yet")
			Expect(d.PresentPassword(ctx, 0, [8]byte{})).To(Succeed())
			Expect(d.WriteConfig(ctx, 0x05, 0x03)).To(Succeed())
			Expect(d.WriteConfig(ctx, 0x06, 0x0A)).To(Succeed())
			Expect(d.ReadConfig(ctx, 0x06)).To(Equal(byte(0x0A)))

			_, err := d.ReadBlocks(ctx, 32, 1)
			Expect(err).To(MatchError(isoErr(nfc.CodeReadProtected)))
			Expect(d.WriteBlocks(ctx, 32, []byte{1, 2, 3, 4})).To(MatchError(isoErr(nfc.CodeLocked)))
			Expect(d.ReadBlocks(ctx, 31, 1)).To(HaveLen(4), "area 1 stays open")

			pwd := [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
			Expect(d.PresentPassword(ctx, 2, pwd)).To(MatchError(isoErr(nfc.CodeUnknown)), "wrong password")
			Expect(d.PresentPassword(ctx, 2, [8]byte{})).To(Succeed())
			Expect(d.WriteBlocks(ctx, 32, []byte{1, 2, 3, 4})).To(Succeed())
			Expect(d.WritePassword(ctx, 2, pwd)).To(Succeed())
			Expect(d.ReadBlocks(ctx, 32, 1)).To(Equal([]byte{1, 2, 3, 4}))

			b.Lift()
			b.Tap()
			_, err = d.ReadBlocks(ctx, 32, 1)
			Expect(err).To(MatchError(isoErr(nfc.CodeReadProtected)), "the field loss closed the session")
			Expect(d.PresentPassword(ctx, 2, [8]byte{})).To(MatchError(isoErr(nfc.CodeUnknown)), "old password")
			Expect(d.PresentPassword(ctx, 2, pwd)).To(Succeed())
			Expect(d.ReadBlocks(ctx, 32, 1)).To(Equal([]byte{1, 2, 3, 4}))
			Expect(d.PresentPassword(ctx, 4, pwd)).To(MatchError(isoErr(nfc.CodeBlockNA)), "no password 4")
		}, SpecTimeout(specTimeout))

		It("answers custom commands and rejects bad ones with their codes", func(ctx SpecContext) {
			b := tr.New(ctx)
			b.setFTM(0x01) // MB_MODE
			d := nfc.NewST25DV(b.Tr)
			Expect(d.ReadConfig(ctx, 0x0D)).To(Equal(byte(0x01)))    // FTM: MB_MODE
			Expect(d.ReadDynConfig(ctx, 0x02)).To(Equal(byte(0x0C))) // EH_CTRL_Dyn: FIELD_ON | VCC_ON
			_, err := d.ReadConfig(ctx, 0x20)
			Expect(err).To(MatchError(isoErr(nfc.CodeBlockNA)), "no RF access to IC_REV")
			// Raw frames: Read Config with another manufacturer code → 02h;
			// a parameter missing → 02h; an unknown custom code → 01h.
			for _, tc := range []struct{ req, resp []byte }{
				{[]byte{0x02, 0xA0, 0x02, 0x0D}, []byte{0x00, 0x01}},
				{[]byte{0x02, 0xA0, 0x04, 0x0D}, []byte{0x01, 0x02}},
				{[]byte{0x02, 0xAD, 0x02}, []byte{0x01, 0x02}},
				{[]byte{0x02, 0xBF, 0x02}, []byte{0x01, 0x01}},
			} {
				Expect(b.Tr.Transceive(ctx, tc.req)).To(Equal(tc.resp), "% X", tc.req)
			}
			Expect(d.SetMailbox(ctx, true)).To(Succeed())
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x01)))
			_, err = d.MessageLength(ctx)
			Expect(err).NotTo(HaveOccurred())
			_, err = d.ReadMessage(ctx)
			Expect(err).To(MatchError(isoErr(nfc.CodeUnknown)), "empty mailbox")
		}, SpecTimeout(specTimeout))

		It("moves messages through the FTM mailbox in both directions", func(ctx SpecContext) {
			b := tr.New(ctx)
			b.setFTM(0x01) // MB_MODE
			d := nfc.NewST25DV(b.Tr)
			Expect(d.SetMailbox(ctx, true)).To(Succeed())

			// Phone → MCU: 256 bytes, the whole mailbox.
			req := make([]byte, 256)
			for i := range req {
				req[i] = byte(255 - i)
			}
			Expect(d.WriteMessage(ctx, req)).To(Succeed())
			Expect(d.WriteMessage(ctx, []byte{0})).To(MatchError(isoErr(nfc.CodeUnknown)), "mailbox busy")
			st := b.i2cRead(kit.RegMBCtrl, 2)
			Expect(st).To(Equal([]byte{0x85, 0xFF})) // RF_CURRENT|RF_PUT|MB_EN, MB_LEN 255
			Expect(b.i2cRead(kit.MailboxBuffer, 256)).To(Equal(req))
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x81)), "read by the host: RF_PUT cleared")

			// MCU → phone: 230 bytes, read back in 100-byte chunks too.
			reply := bytes.Repeat([]byte{0x5C, 0xA3}, 115)
			b.i2cWrite(kit.MailboxBuffer, reply...)
			Expect(d.MailboxStatus(ctx)).To(HaveField("HostPut", true))
			Expect(d.MessageLength(ctx)).To(Equal(230))
			chunked := nfc.NewST25DV(b.Tr, nfc.WithMaxMessageChunk(100))
			Expect(chunked.ReadMessage(ctx)).To(Equal(reply))
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x41)), "host message released")
		}, SpecTimeout(specTimeout))

		It("drops an unread message when the watchdog expires", func(ctx SpecContext) {
			// FTM = MB_WDG 001b (30 ms) | MB_MODE (DS Table 16).
			b := tr.New(ctx)
			b.setFTM(0x03)
			d := nfc.NewST25DV(b.Tr)
			Expect(d.SetMailbox(ctx, true)).To(Succeed())
			Expect(d.WriteMessage(ctx, []byte("provision"))).To(Succeed())
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x85)))
			Expect(b.ExpireWatchdog()).To(BeTrue())
			st, err := d.MailboxStatus(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Raw).To(Equal(byte(0x91)), "RF_CURRENT|HOST_MISS|MB_EN, DS Figure 12")
			Expect(st.HostMiss).To(BeTrue())
			Expect(st.Free()).To(BeTrue())
			Expect(d.WriteMessage(ctx, []byte("again"))).To(Succeed())
			Expect(b.ExpireWatchdog()).To(BeTrue())
			Expect(b.ExpireWatchdog()).To(BeFalse(), "nothing pending any more")
		}, SpecTimeout(specTimeout))

		It("survives the field vanishing in the middle of a message", func(ctx SpecContext) {
			b := tr.New(ctx)
			b.setFTM(0x01) // MB_MODE
			d := nfc.NewST25DV(b.Tr)
			Expect(d.SetMailbox(ctx, true)).To(Succeed())
			reply := make([]byte, 200)
			for i := range reply {
				reply[i] = byte(i * 7)
			}
			b.i2cWrite(kit.MailboxBuffer, reply...)

			// Length, chunk 1 (0..99), then the phone is lifted before chunk 2.
			cut := &liftAfter{Transport: b.Tr, n: 3, lift: b.Lift}
			_, err := nfc.NewST25DV(cut, nfc.WithUID(uid), nfc.WithMaxMessageChunk(100)).ReadMessage(ctx)
			Expect(errors.Is(err, nfc.ErrNoResponse)).To(BeTrue(), "got %v", err)

			// The mailbox belongs to VCC, not the field: the message is
			// still there, whole, for the next tap (DS Figure 12).
			b.Tap()
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x43)))
			Expect(d.ReadMessage(ctx)).To(Equal(reply))
			Expect(d.MailboxStatus(ctx)).To(HaveField("Raw", byte(0x41)))
		}, SpecTimeout(specTimeout))
	})
}

// specTimeout bounds each conformance spec (and pcsc presence waits).
const specTimeout = 30 * time.Second
