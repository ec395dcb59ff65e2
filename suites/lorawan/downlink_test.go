package lorawan_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/suites/kit"
)

// Downlinks as ChirpStack v4.19 sends them (the embedded server's golden
// scenarios, emulators/chirpstack/golden_*_test.go, pin the bytes; these
// specs check the device sees the behaviour).
var _ = Describe("downlinks", Label("lorawan", "console", "downlink"), func() {
	// ChirpStack waits network.get_downlink_data_delay (100 ms) after the
	// up event before building the class-A answer (uplink/data.rs
	// start_downlink_data_flow): an application that answers the up event
	// at once is heard in that uplink's receive window, not one uplink late.
	It("hears an application reply enqueued on the up event in the same uplink's receive window", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		awaitJoined(ctx, rig, b, res.DevEUI)

		payload, reply := randomPayload(5), randomPayload(4)
		replied := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			up := awaitUplink(ctx, rig.Network, res.DevEUI, 15, payload) // the up event
			_, err := rig.Network.Enqueue(ctx, lorawan.EUI64(res.DevEUI), 16, false, reply)
			AddReportEntry("reply enqueued on up", fmt.Sprintf("uplink FCnt %d", up.FCnt))
			replied <- err
		}()
		send(ctx, b.Console, 15, false, payload)
		Eventually(replied).WithContext(ctx).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
		// The only uplink sent since carries the reply in its window:
		// "+EVT:<port>:<len>:<hex>" then "+EVT:RX_1…" (lora_at.c).
		want := fmt.Sprintf("16:%02X:%X", len(reply), reply)
		// (Built before the up event, the answer would have waited for a
		// next uplink that never comes.)
		kit.AwaitEvents(ctx, b.Console, 30*time.Second, "+EVT:"+want, func(e at.Event) bool {
			return e.Name == "DATA" && e.Args == want
		})
		rx := kit.AwaitEvents(ctx, b.Console, 10*time.Second, "+EVT:RX_…", func(e at.Event) bool { return strings.HasPrefix(e.Name, "RX_") })
		Expect(rx[len(rx)-1].Name).To(Or(Equal("RX_1"), Equal("RX_2")))
	}, SpecTimeout(2*time.Minute))

	// ChirpStack discards a queue item larger than the data rate allows
	// (EU868 RP002-1.0.3: 51 bytes at DR0–2 … 242 at DR4–7) with a
	// DOWNLINK_PAYLOAD_SIZE log event (downlink/data.rs
	// get_next_device_queue_item).
	It("has a downlink too large for any data rate dropped, with ChirpStack's DOWNLINK_PAYLOAD_SIZE log event", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		awaitJoined(ctx, rig, b, res.DevEUI)

		_, err := rig.Network.Enqueue(ctx, lorawan.EUI64(res.DevEUI), 17, false, randomPayload(243))
		Expect(err).NotTo(HaveOccurred())
		send(ctx, b.Console, 15, false, randomPayload(3))
		for {
			le, err := rig.Network.AwaitLog(ctx, lorawan.EUI64(res.DevEUI))
			Expect(err).NotTo(HaveOccurred())
			if le.Code != "DOWNLINK_PAYLOAD_SIZE" {
				continue
			}
			Expect(le.Description).To(Equal("Device queue-item discarded because it exceeds the max. payload size"))
			Expect(le.Context).To(HaveKeyWithValue("item_size", "243"))
			break
		}
	}, SpecTimeout(2*time.Minute))
})
