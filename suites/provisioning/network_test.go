package provisioning_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/containers"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/suites/kit"
)

// provisionAll runs the whole flow on every board of rig and records it.
func provisionAll(ctx context.Context, rig *rigs.Rig, what string) {
	GinkgoHelper()
	for _, b := range rig.Boards {
		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		for _, t := range res.Timings {
			reports.Record(reports.Duration(what+" phase "+t.Phase, b.Name, t.Wall))
		}
		Expect(err).NotTo(HaveOccurred(), "board %s", b.Name)
		reports.Record(reports.Duration(what+" tap to first uplink", b.Name, res.Total()))
		AddReportEntry(fmt.Sprintf("%s joined (%s)", b.Name, what), fmt.Sprintf("DevEUI %s DevAddr %s AppKey KCV %s", res.DevEUI, res.DevAddr, res.KCV))
	}
}

var _ = Describe("NFC provisioning to OTAA join, network server in containers", Label("e2e", "needs:docker"), func() {
	It("taps each board and sees it join a ChirpStack reached through published container ports", func(ctx SpecContext) {
		containers.Need(ctx, GinkgoT())
		f := kit.LoadRigFile(kit.ContainersRigPath())
		Expect(f.Network.Kind).To(Equal("containers"), "rig %s", f.Path)
		// Registered first, so it runs last: whatever an interrupted rig
		// start or close left of this run goes too.
		DeferCleanup(func(ctx SpecContext) {
			Expect(containers.Reap(ctx)).To(Succeed())
			Expect(containers.Leftovers(ctx)).To(BeEmpty())
		}, NodeTimeout(time.Minute))
		rig := upRig(ctx, f)
		provisionAll(ctx, rig, "containers")
	}, SpecTimeout(5*time.Minute))
})

var _ = Describe("wrapped-key provisioning", Label("e2e"), func() {
	It("joins while the phone only ever holds the wrapped PROVISION frame", func(ctx SpecContext) {
		f := loadRig()
		f.Provisioning.Wrapped = true
		rig := upRig(ctx, f)
		provisionAll(ctx, rig, "wrapped")
	}, SpecTimeout(2*time.Minute))
})
