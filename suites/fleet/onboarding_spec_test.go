package fleet_test

import (
	"fmt"
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
)

// The site installer's question (issue 15): N devices tapped through one
// gateway — how long until all are on the network, how many JoinRequests
// each sends, what collides? Hours of air, played as a discrete-event loop
// on the colliding air (rigs.RunOnboardingDay; the model and its sources:
// emulators/onboarding). No rig is brought up: the day is the model's, so
// these run in well under a second each. The HTML report plots every day
// (joins over time, JoinRequests per device) beside the fleets; the
// figures per spreading factor are in the spec's report entry.
var _ = Describe("an onboarding day through one gateway", Label("fleet", "onboarding"), func() {
	const n, seed = 1000, 1
	var entries []TableEntry
	for _, d := range rigs.OnboardingDays(n, seed) {
		entries = append(entries, Entry(d.Name, d))
	}
	DescribeTable("taps 1,000 devices and reports what joining took",
		func(d rigs.NamedOnboardingDay) {
			spec := d.Spec
			f, err := rigs.RunOnboardingDay(spec)
			Expect(err).NotTo(HaveOccurred())
			if spec.TapWindow == 0 {
				// At an installer's pace every device joins within the
				// week; a crew tapping all at once is another matter
				// (LoRaMac-node 4.7.0 retries at once after RX2, without
				// a random back-off: devices that collided retry in step).
				Expect(f.Joined).To(Equal(spec.N), "every device tapped at an installer's pace joins within %v", spec.Horizon)
			}
			// The gateway keeps to its duty cycle (ETSI EN 300 220 bands as
			// concentratord tracks them): 36 s an hour in RX1's band, 360 s
			// in RX2's, over every started hour of the day.
			span := spec.Horizon + time.Minute // the last attempts end by the horizon
			if f.Joined == spec.N {
				span = f.AllJoined + time.Minute
			}
			hours := math.Ceil(span.Hours())
			Expect(f.JA.RX1Airtime.Seconds()).To(BeNumerically("<=", 36*hours), "RX1 airtime in %v h", hours)
			Expect(f.JA.RX2Airtime.Seconds()).To(BeNumerically("<=", 360*hours), "RX2 airtime in %v h", hours)

			label := "onboarding " + d.Name
			where := fmt.Sprintf("N=%d, seed %d", spec.N, spec.Seed)
			if f.Joined == spec.N {
				reports.Record(reports.Measurement{Name: label + " hours until all joined", Value: f.AllJoined.Hours(), Unit: "h", Board: where})
			}
			reports.Record(reports.Measurement{Name: label + " joined", Value: float64(f.Joined), Unit: "devices", Board: where})
			reports.Record(reports.Measurement{Name: label + " JoinRequests per device", Value: f.AttemptsMean, Unit: "JoinRequests", Board: where})
			reports.Record(reports.Measurement{Name: label + " collision rate", Value: f.CollisionRate(), Unit: "lost/sent", Board: where})
			reports.Record(reports.Measurement{Name: label + " device duty-cycle wait", Value: f.DCWait.Hours(), Unit: "h", Board: where})
			fl := reports.Fleet{Name: label + " (" + where + ")", Devices: spec.N, JoinRequests: f.JoinRequests}
			for _, at := range f.JoinedAt {
				fl.JoinedMS = append(fl.JoinedMS, float64(at)/float64(time.Millisecond))
			}
			reports.RecordFleet(fl)
			AddReportEntry(label, f.Summary(spec))
		},
		entries,
	)
})
