package provisioning_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

var _ = Describe("NFC provisioning to OTAA join", Label("e2e"), func() {
	It("taps each board, writes its AppKey through the FTM mailbox and sees it join", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		for _, b := range rig.Boards {
			res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
			for _, t := range res.Timings {
				reports.Record(reports.Duration("phase "+t.Phase, b.Name, t.Wall))
			}
			Expect(err).NotTo(HaveOccurred(), "board %s", b.Name)
			reports.Record(reports.Duration("tap to first uplink", b.Name, res.Total()))
			AddReportEntry(fmt.Sprintf("%s joined", b.Name), fmt.Sprintf("DevEUI %s DevAddr %s AppKey KCV %s", res.DevEUI, res.DevAddr, res.KCV))
		}
	}, SpecTimeout(2*time.Minute))
})

// The flow must be able to fail for the right reason: a firmware that
// acknowledges the key it was sent but stores a corrupted one cannot join,
// and the failure names the join phase.
var _ = Describe("a board that stores a wrong key", Label("e2e", "faults", "cap:firmware-faults"), func() {
	It("does not join, and the failure names the join phase", func(ctx SpecContext) {
		f := loadRig()
		f.Boards = f.Boards[:1]
		kit.NeedFirmwareFaults(f, 0)
		f.Boards[0].Faults.StoreCorruptKey = true
		rig := upRig(ctx, f)
		b := rig.Boards[0]

		joinCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := b.Phone.Provision(joinCtx, rig.Region, rig.Joins())
		Expect(err).To(HaveOccurred())
		Expect(phone.PhaseOf(err)).To(Equal(phone.PhaseJoin))
		Expect(err.Error()).To(ContainSubstring(`phase "join" failed`))
		// The network server said why: the JoinRequest's MIC does not verify
		// with the key it holds.
		Expect(err.Error()).To(MatchRegexp(`(?i)mic`))
		kit.ExpectNoIssuedKeys(err.Error(), "the error")
	}, SpecTimeout(time.Minute))
})

// LoRaWAN 1.1 end to end: a 1.1 device profile makes the backend issue an
// AppKey and a NwkKey, the phone writes both, the board joins with OptNeg=1
// (JoinAccept signed with JSIntKey) and its first uplink carries the 1.1 MIC
// the server checks before decrypting it. Keys appear by KCV only.
var _ = Describe("LoRaWAN 1.1 OTAA", Label("e2e"), func() {
	It("joins with LoRaWAN 1.1 keys", func(ctx SpecContext) {
		f := loadRig()
		f.Boards = f.Boards[:1]
		f.Network.MACVersion = "1.1.0"
		rig := upRig(ctx, f)
		b := rig.Boards[0]
		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred(), "board %s", b.Name)
		// Provision returns after the server has decrypted the first uplink.
		var phases []string
		for _, t := range res.Timings {
			phases = append(phases, t.Phase)
		}
		Expect(phases).To(ContainElements(phone.PhaseJoin, phone.PhaseUplink))
		Expect(res.DevAddr).NotTo(BeZero())
		AddReportEntry("LoRaWAN 1.1 join", fmt.Sprintf("DevEUI %s DevAddr %s AppKey KCV %s", res.DevEUI, res.DevAddr, res.KCV))
		kit.ExpectNoIssuedKeys(fmt.Sprintf("%+v", res), "the result")
	}, SpecTimeout(time.Minute))
})
