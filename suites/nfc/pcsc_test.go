//go:build cgo && !nopcsc

package nfc_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

var daemon *pcscd.Daemon

// The real PC/SC stack: pcscd + vpcd (started by fixtures/pcscd), the twin
// as a card in "Virtual PCD 00 00", the transparent-exchange transport.
var _ = conformance(Transport{
	Name:   "pcsc",
	Labels: Label("transport:pcsc", "needs:pcscd"),
	Setup: func(ctx SpecContext) {
		if _, err := pcscd.Check(); err != nil {
			if pcscd.Required() {
				Fail(err.Error() + " (required: CI=true or TAP2JOIN_REQUIRE=pcscd)")
			}
			Skip(err.Error())
		}
		d, err := pcscd.Start(ctx)
		Expect(err).NotTo(HaveOccurred())
		daemon = d
		DeferCleanup(d.Stop)
	},
	New: func(ctx SpecContext, cfg st25dv.Config) *Bench {
		tag := st25dv.New(cfg)
		tag.SetVCC(true)
		card := vpcd.NewCard(tag)
		tr, err := pcsc.Open(pcsc.Config{Reader: daemon.ReaderName(0)})
		Expect(err).NotTo(HaveOccurred())
		wctx, cancel := context.WithCancel(context.Background())
		w := tr.Watch(wctx)
		DeferCleanup(func() {
			cancel()
			Expect(card.Remove()).To(Succeed())
			Expect(tr.Close()).To(Succeed())
		})
		await := func(present bool) {
			GinkgoHelper()
			Eventually(w).WithTimeout(specTimeout).Should(Receive(HaveField("Present", present)))
		}
		await(false)
		b := &Bench{Tag: tag, Tr: tr}
		b.Tap = func() {
			GinkgoHelper()
			Expect(card.Insert(ctx, daemon.VPCDAddr(0))).To(Succeed())
			await(true)
		}
		b.Lift = func() {
			GinkgoHelper()
			Expect(card.Remove()).To(Succeed())
			await(false)
		}
		b.Tap()
		return b
	},
})
