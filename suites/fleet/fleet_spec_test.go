package fleet_test

import (
	"fmt"
	"time"

	"github.com/brocaar/lorawan"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/suites/kit"
)

// Each entry brings its own rig up and down (its network server, gateway,
// backend and boards), so under `go tool ginkgo -p` the entries spread over
// processes and each process has its own boards, with ids that carry the
// process number.
var _ = Describe("a fleet tapped at once", Label("fleet", "e2e", "cap:copies"), func() {
	DescribeTable("every board is provisioned, joins and sends its first uplink",
		func(ctx SpecContext, batch, n int, wrapped bool, events string) {
			proc := GinkgoParallelProcess()
			f, err := fleetFile(n, proc, batch)
			kit.SkipIfMissing(err)
			f.Provisioning.Wrapped = wrapped
			if err := withEvents(f, events); err != nil {
				Skip(err.Error())
			}
			rig, err := rigs.Up(ctx, f, rigs.Options{NoConsoles: true, FirmwarePoll: fleetPoll})
			Expect(err).NotTo(HaveOccurred(), "bring up a rig of %d boards", n)
			DeferCleanup(func() { Expect(rig.Close()).To(Succeed()) })
			fmt.Fprintf(GinkgoWriter, "process %d: %d boards, %s .. %s\n", proc, n, f.Boards[0].UniqueID, f.Boards[n-1].UniqueID)

			st, err := provisionFleet(ctx, rig)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.DevAddrs).To(HaveLen(n))
			addrs := map[lorawan.DevAddr]bool{}
			for _, a := range st.DevAddrs {
				addrs[a] = true
			}
			Expect(addrs).To(HaveLen(n), "every board got its own DevAddr")
			// The backend learns each join from the network's join event
			// on the broker (in the encoding the network publishes).
			for name, addr := range st.DevAddrs {
				Eventually(func() string {
					info, err := rig.Backend.Device(ctx, provproto.EUI64(st.DevEUIs[name]))
					if err != nil || info.Joined == nil {
						return ""
					}
					return info.DevAddr
				}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
					Should(Equal(addr.String()), "the backend's record of %s's join", name)
			}
			Expect(rig.BackgroundErrors()).To(Succeed())

			name := fmt.Sprintf("fleet %d", n)
			if wrapped {
				name += " wrapped"
			}
			if events != "" {
				name += " " + events + " events"
			}
			where := fmt.Sprintf("process %d", proc)
			reports.Record(reports.Measurement{Name: name + " devices/s", Value: st.DevicesPerSecond(), Unit: "devices/s", Board: where})
			reports.Record(reports.Duration(name+" tap to first uplink p50", where, st.Percentile(50)))
			reports.Record(reports.Duration(name+" tap to first uplink p99", where, st.Percentile(99)))
			reports.RecordFleet(st.Report(name + " (" + where + ")"))
			AddReportEntry(name, fmt.Sprintf("%s: %d boards in %v: %.0f devices/s, tap → first uplink p50 %v p99 %v, %d uplink frames",
				where, n, st.Wall.Round(time.Millisecond), st.DevicesPerSecond(),
				st.Percentile(50).Round(time.Millisecond), st.Percentile(99).Round(time.Millisecond), st.Uplinks))
		},
		Entry("10 boards", 1, 10, false, "", SpecTimeout(2*time.Minute)),
		Entry("10 boards, keys wrapped to each device (ECDH)", 2, 10, true, "", SpecTimeout(2*time.Minute)),
		Entry("25 boards", 3, 25, false, "", SpecTimeout(2*time.Minute)),
		// The benchmark's setting (bench_test.go): the network's events
		// as Protobuf, read by the same client.
		Entry("25 boards, the network's events as Protobuf", 4, 25, false, rigs.EventsProtobuf, SpecTimeout(2*time.Minute)),
	)
})
