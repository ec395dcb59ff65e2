package fleet_test

import (
	"fmt"
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
// (joins over time, JoinRequests per device) beside the fleets.
var _ = Describe("an onboarding day through one gateway", Label("fleet", "onboarding"), func() {
	const n, seed = 1000, 1
	day := func(mod func(*rigs.OnboardingSpec)) rigs.OnboardingSpec {
		s := rigs.OnboardingDay(n, seed)
		if mod != nil {
			mod(&s)
		}
		return s
	}
	DescribeTable("taps 1,000 devices and reports what joining took",
		func(name string, spec rigs.OnboardingSpec, allJoin bool) {
			f, err := rigs.RunOnboardingDay(spec)
			Expect(err).NotTo(HaveOccurred())

			// The per-device figures the report plots agree with the day's.
			Expect(f.JoinRequests).To(HaveLen(spec.N))
			Expect(f.JoinedAt).To(HaveLen(f.Joined))
			sent := 0
			for _, r := range f.JoinRequests {
				Expect(r).To(BeNumerically(">=", 1), "every device tapped sends a JoinRequest")
				sent += r
			}
			tot := f.Total()
			Expect(sent).To(Equal(tot.Sent))
			Expect(tot.Lost+tot.NoDemod+tot.Deaf+tot.Received).To(Equal(tot.Sent), "every JoinRequest has one fate")
			if allJoin {
				Expect(f.Joined).To(Equal(spec.N), "every device joins within the %v horizon", spec.Horizon)
			} else {
				// LoRaMac-node 4.7.0 retries at once after RX2, with no
				// random back-off: devices that collided retry together.
				Expect(f.Joined).To(BeNumerically("<", spec.N), "a crowd retrying in step through one gateway")
			}

			label := "onboarding " + name
			where := fmt.Sprintf("N=%d, seed %d", spec.N, spec.Seed)
			if f.Joined == spec.N {
				reports.Record(reports.Measurement{Name: label + " hours until all joined", Value: f.AllJoined.Hours(), Unit: "h", Board: where})
			}
			reports.Record(reports.Measurement{Name: label + " joined", Value: float64(f.Joined), Unit: "devices", Board: where})
			reports.Record(reports.Measurement{Name: label + " JoinRequests per device", Value: f.AttemptsMean, Unit: "JoinRequests", Board: where})
			reports.Record(reports.Measurement{Name: label + " collision rate", Value: f.CollisionRate(), Unit: "lost/sent", Board: where})
			reports.Record(reports.Measurement{Name: label + " device duty-cycle wait", Value: f.DCWait.Hours(), Unit: "h", Board: where})
			fl := reports.Fleet{Name: label + " (" + where + ")", Devices: spec.N, JoinRequests: f.JoinRequests}
			for _, d := range f.JoinedAt {
				fl.JoinedMS = append(fl.JoinedMS, float64(d)/float64(time.Millisecond))
			}
			reports.RecordFleet(fl)
			AddReportEntry(label, f.Summary(spec))
		},
		Entry("LoRaMac-node 4.7.0 at DR0 (the twin's firmware)", "lmn-4.7.0 DR0", day(nil), true),
		Entry("LoRaMac-node 4.7.0 at DR5", "lmn-4.7.0 DR5", day(func(s *rigs.OnboardingSpec) { s.JoinDR = 5 }), true),
		Entry("LoRaMac-node 4.4.0, data rate by trial", "lmn-4.4.0", day(func(s *rigs.OnboardingSpec) { s.Firmware = rigs.LoRaMacNode440 }), true),
		Entry("devices powered 12 h before their tap", "lmn-4.7.0 DR0 powered 12 h before", day(func(s *rigs.OnboardingSpec) { s.PoweredBefore = 12 * time.Hour }), true),
		Entry("a crew tapping all within 10 minutes", "lmn-4.7.0 DR0 crew 10 min", day(func(s *rigs.OnboardingSpec) { s.TapWindow = 10 * time.Minute }), false),
	)
})
