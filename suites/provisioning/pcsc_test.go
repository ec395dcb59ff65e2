//go:build cgo && !nopcsc

package provisioning_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/lease"
	"github.com/tap2join/tap2join/suites/kit"
)

// The same flow with the phone's tag driver on the real PC/SC stack: ebfe/scard
// → pcscd → vpcd → the emulated reader holding the tag twin
// (rigs/emulated-pcsc.yaml). The rig starts pcscd itself.
var _ = Describe("NFC provisioning through a PC/SC reader", Label("e2e", "needs:pcscd"), func() {
	It("taps the board through pcscd + vpcd and sees it join", func(ctx SpecContext) {
		kit.NeedPCSCD()
		f := kit.LoadRigFile("rigs/emulated-pcsc.yaml")
		Expect(f.Boards[0].NFC.Transport).To(Equal("pcsc"))
		rig := upRig(ctx, f)
		provisionAll(ctx, rig, "pcsc")
	}, SpecTimeout(2*time.Minute))
})

// A lab rig: the board, the reader and the gateway are "real" to the rig — it
// reaches the board only through a serial port and a PC/SC reader, the
// network server by URL and API token, and holds the board's lease — exactly
// what it does on a NUCLEO-WL55JC bench (rigs/lab-nucleo-wl55.yaml). Behind
// those interfaces sits a second, emulated rig in the role of the hardware
// (like `go run ./rigs/cmd/emulate --rig rigs/emulated-pcsc.yaml`): the
// twin's AT shell on a pty, its tag as a card in vpcd, its gateway forwarding
// to the embedded ChirpStack.
var _ = Describe("a lab rig driving a board through its serial port and PC/SC reader", Label("e2e", "lab", "needs:pcscd"), func() {
	It("takes the board's lease, checks its firmware, taps it and sees it join", func(ctx SpecContext) {
		kit.NeedPCSCD()
		hwFile := kit.LoadRigFile("rigs/emulated-pcsc.yaml")
		hw, err := rigs.Up(ctx, hwFile, rigs.Options{DetachedConsoles: true})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(hw.Close()).To(Succeed()) })
		dut := hw.Boards[0]
		Expect(dut.SerialPath).NotTo(BeEmpty())
		Expect(dut.Console.Transcript()).To(BeEmpty(), "the hardware side keeps no reader on the port")

		leases := GinkgoT().TempDir()
		GinkgoT().Setenv("TAP2JOIN_TEST_NS_TOKEN", hw.NetworkInfo.Token)
		lab, err := rigs.Parse(fmt.Appendf(nil, `
name: lab-over-emulated-hardware
timing: instant
network:
  kind: external
  api: %s
  token: $TAP2JOIN_TEST_NS_TOKEN
  mqtt: %s
gateways:
  - id: %s
    emulated: false
    hardware: {model: emulated gateway of the hardware rig, forwarder: chirpstack-mqtt}
boards:
  - name: dut
    emulated: false
    nfc:
      transport: pcsc
      reader: %s
    serial:
      port: %s
    hardware:
      mcu: NUCLEO-WL55JC1
      tag: X-NUCLEO-NFC07A1
      i2c: {bus: I2C2, scl: PA12, sda: PA11, hz: 1000000}
      gpo: {pin: PA6, exti: 6}
      firmware:
        version: 1.3.1
    lease:
      resource: dut-1
      ttl: 5s
      dir: %s
`, hw.NetworkInfo.API, hw.NetworkInfo.MQTT, hwFile.Gateways[0].ID, dut.Reader(), dut.SerialPath, leases))
		Expect(err).NotTo(HaveOccurred())

		rig := upRig(ctx, lab)
		b := rig.Boards[0]
		held, ok, err := lease.Inspect(leases, "dut-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue(), "Up holds the board's lease")
		Expect(held.PID).To(Equal(os.Getpid()))

		provisionAll(ctx, rig, "lab")
		// The console is the board's: its DevEUI is the one the phone read.
		lines, err := b.Console.Command(ctx, "AT+DEUI=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(HaveLen(1))
		id, err := b.Phone.ReadNDEFIdentity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.ReplaceAll(lines[0], ":", "")).To(Equal(id.DevEUI.String()))

		Expect(rig.Close()).To(Succeed())
		_, ok, err = lease.Inspect(leases, "dut-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "Close releases the lease")
	}, SpecTimeout(2*time.Minute))
})
