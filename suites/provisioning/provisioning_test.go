package provisioning_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/phone"
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
			reports.Record(reports.Duration("tap to join", b.Name, res.Total()))
			AddReportEntry(fmt.Sprintf("%s joined", b.Name), fmt.Sprintf("DevEUI %s DevAddr %s AppKey KCV %s", res.DevEUI, res.DevAddr, res.KCV))
		}
	}, SpecTimeout(2*time.Minute))
})

// The flow must be able to fail for the right reason: a firmware that
// acknowledges the key it was sent but stores a corrupted one cannot join,
// and the failure names the join phase.
var _ = Describe("a board that stores a wrong key", Label("e2e", "faults"), func() {
	It("does not join, and the failure names the join phase", func(ctx SpecContext) {
		f := loadRig()
		f.Boards = f.Boards[:1]
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
		Expect(rigs.FindIssuedKeys([]byte(err.Error()))).To(BeEmpty())
	}, SpecTimeout(time.Minute))
})
