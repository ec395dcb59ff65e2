//go:build cgo && !nopcsc

package provisioning_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs"
)

// The same flow with the phone's tag driver on the real PC/SC stack: ebfe/scard
// → pcscd → vpcd → the emulated reader holding the tag twin
// (rigs/emulated-pcsc.yaml). The rig starts pcscd itself.
var _ = Describe("NFC provisioning through a PC/SC reader", Label("e2e", "needs:pcscd"), func() {
	It("taps the board through pcscd + vpcd and sees it join", func(ctx SpecContext) {
		if _, err := pcscd.Check(); err != nil {
			if pcscd.Required() {
				Fail(err.Error() + " (required: CI=true or TAP2JOIN_REQUIRE=pcscd)")
			}
			Skip(err.Error())
		}
		p, err := rigs.Find("rigs/emulated-pcsc.yaml")
		Expect(err).NotTo(HaveOccurred())
		f, err := rigs.Load(p)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Boards[0].NFC.Transport).To(Equal("pcsc"))
		rig := upRig(ctx, f)
		provisionAll(ctx, rig, "pcsc")
	}, SpecTimeout(2*time.Minute))
})
