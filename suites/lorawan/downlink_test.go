package lorawan_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
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

// ADR back-off (LoRaWAN 1.0.4 §4.3.1.1; LoRaMac-node LoRaMacAdrCalcNext):
// a device with ADR on counts the uplinks since it last heard a downlink;
// at 64 (ADR_ACK_LIMIT) it sets ADRACKReq, and ChirpStack answers it even
// with nothing to say (an empty downlink: uplink/data.rs must_send), which
// resets the count. Once the link settles, ChirpStack sends nothing, so
// ordinary uplinks get there.
var _ = Describe("ADR acknowledgement requests", Label("lorawan", "adr"), func() {
	It("sets ADRACKReq on the 65th uplink without a downlink, and ChirpStack answers it at once", Label("cap:GatewaySwitch"), func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		needAir(rig)
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		addr := awaitJoined(ctx, rig, b, res.DevEUI)

		// The device's data frames on the air, in order.
		type frame struct{ up, adrAckReq bool }
		frames := func() []frame {
			var out []frame
			for _, f := range rig.Captured() {
				p := f.PHYPayload
				mtype := p[0] >> 5 // MHDR (TS001-1.0.4 §4.2): 2/4 data up, 3/5 data down
				if len(p) < 12 || mtype < 2 || mtype > 5 || !bytes.Equal(p[1:5], []byte{addr[3], addr[2], addr[1], addr[0]}) {
					continue
				}
				out = append(out, frame{up: f.Uplink, adrAckReq: f.Uplink && p[5]&0x40 != 0})
			}
			return out
		}
		// sinceDown is how many uplinks followed the last downlink.
		sinceDown := func(fs []frame) int {
			n := 0
			for _, f := range fs {
				if !f.up {
					n = 0
				} else {
					n++
				}
			}
			return n
		}
		var req int // index of the ADRACKReq uplink
		for sent := 0; ; sent++ {
			Expect(sent).To(BeNumerically("<", 200), "no ADRACKReq after 200 uplinks")
			before := frames()
			send(ctx, b.Console, 3, false, randomPayload(2))
			Eventually(func() int { return len(frames()) }).WithContext(ctx).Should(BeNumerically(">", len(before)))
			fs := frames()
			if i := slices.IndexFunc(fs, func(f frame) bool { return f.adrAckReq }); i >= 0 {
				Expect(sinceDown(fs[:i])).To(Equal(64), "uplinks without a downlink before the ADRACKReq")
				req = i
				break
			}
		}
		// ChirpStack's answer is the next frame, and the device heard it.
		Eventually(func() int { return len(frames()) }).WithContext(ctx).Should(BeNumerically(">", req+1))
		Expect(frames()[req+1].up).To(BeFalse(), "a downlink answers the ADRACKReq")
		// Had the device not heard it, its count would stay ≥ 64.
		send(ctx, b.Console, 3, false, randomPayload(2))
		Eventually(func() int { return len(frames()) }).WithContext(ctx).Should(BeNumerically(">", req+2))
		next := frames()[req+2]
		Expect(next.up && !next.adrAckReq).To(BeTrue(), "the count starts again after the answer")
		AddReportEntry("ADRACKReq", fmt.Sprintf("uplink %d of the session asked, ChirpStack answered in RX1", req+1))
	}, SpecTimeout(3*time.Minute))
})

// LoRaWAN 1.1 §5.10: after a 1.1 join the device repeats RekeyInd in every
// uplink until the network's RekeyConf (ChirpStack maccommand/rekey.rs).
// FOpts are encrypted in 1.1, but their length is in the clear (FCtrl bits
// 3..0): the first uplink carries 2 bytes (RekeyInd), the answer 2
// (RekeyConf), and the uplinks after none.
var _ = Describe("a LoRaWAN 1.1 session", Label("lorawan", "lorawan11"), func() {
	It("is confirmed: RekeyInd in the first uplink, ChirpStack's RekeyConf, none after", Label("cap:GatewaySwitch"), func(ctx SpecContext) {
		f := loadRig()
		f.Boards = f.Boards[:1]
		f.Network.MACVersion = "1.1.0"
		rig := upRig(ctx, f)
		needAir(rig)
		b := rig.Boards[0]
		// ADR off, so that no LinkADRReq/Ans shares the FOpts counted here.
		_, err := b.Console.Command(ctx, "AT+ADR=0")
		Expect(err).NotTo(HaveOccurred())
		res := provision(ctx, rig, b)
		addr := awaitJoined(ctx, rig, b, res.DevEUI)
		send(ctx, b.Console, 5, false, randomPayload(2))
		send(ctx, b.Console, 6, false, randomPayload(2)) // the first uplink's windows are over

		type frame struct {
			up    bool
			fopts int
		}
		var fs []frame
		for _, fr := range rig.Captured() {
			p := fr.PHYPayload
			if len(p) < 12 || p[0]>>5 < 2 || p[0]>>5 > 5 || !bytes.Equal(p[1:5], []byte{addr[3], addr[2], addr[1], addr[0]}) {
				continue
			}
			fs = append(fs, frame{up: fr.Uplink, fopts: int(p[5] & 0x0F)})
		}
		Expect(len(fs)).To(BeNumerically(">=", 3), "uplink, answer, uplink: %+v", fs)
		Expect(fs[0]).To(Equal(frame{up: true, fopts: 2}), "the session's first uplink carries RekeyInd (0B 01)")
		Expect(fs[1]).To(Equal(frame{up: false, fopts: 2}), "ChirpStack answers RekeyConf (0B 01)")
		for _, later := range fs[2:] {
			if later.up {
				Expect(later.fopts).To(BeZero(), "RekeyInd is not repeated once confirmed: %+v", fs)
			}
		}
	}, SpecTimeout(time.Minute))
})

// needAir skips a spec that reads the frames on the air from the rig's
// capture: only emulated gateways put them there (a lab bench's real
// gateway does not), and they come with the GatewaySwitch capability.
func needAir(rig *rigs.Rig) {
	GinkgoHelper()
	kit.NeedOfRig[rigs.GatewaySwitch](rig)
}

// When the network's answers never reach the device (here: its receive
// windows close after 50 ms of wall time, before ChirpStack, which waits
// 100 ms, answers), LoRaMac-node's ADR back-off runs its course
// (LoRaMacAdrCalcNext): ADRACKReq from the 65th uplink, the default TX
// power from the 97th, one data rate lower at the 129th.
var _ = Describe("the ADR back-off", Label("lorawan", "adr"), func() {
	It("asks from the 65th unanswered uplink, returns to the default TX power at the 97th and lowers the data rate at the 129th", Label("cap:GatewaySwitch"), func(ctx SpecContext) {
		rig := kit.UpRig(ctx, loadRig(), rigs.Options{RXWindowCap: 50 * time.Millisecond, DutyCycle: rigs.DutyCycleOff})
		needAir(rig)
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		addr := awaitJoined(ctx, rig, b, res.DevEUI)
		at := func(cmd string) string {
			lines, err := b.Console.Command(ctx, cmd)
			Expect(err).NotTo(HaveOccurred(), cmd)
			if strings.HasSuffix(cmd, "=?") {
				Expect(lines).To(HaveLen(1), cmd)
				return lines[0]
			}
			return ""
		}
		at("AT+DR=5")
		at("AT+TXP=3")
		// The ADRACKReq bit (FCtrl 0x40) of the device's uplinks, in order.
		ackReqs := func() []bool {
			var out []bool
			for _, fr := range rig.Captured() {
				p := fr.PHYPayload
				if fr.Uplink && len(p) >= 12 && p[0]>>5 == 2 && bytes.Equal(p[1:5], []byte{addr[3], addr[2], addr[1], addr[0]}) {
					out = append(out, p[5]&0x40 != 0)
				}
			}
			return out
		}
		// The session's uplinks so far (the provisioning's first one) went
		// unanswered too: count the session's m-th uplink.
		before := len(ackReqs())
		Expect(before).To(BeNumerically(">=", 1))
		for m := before + 1; m <= 129; m++ {
			send(ctx, b.Console, 7, false, []byte{byte(m)})
			switch m {
			case 96:
				Expect(at("AT+TXP=?")).To(Equal("3"), "TX power kept through the 96th uplink")
			case 97:
				Expect(at("AT+TXP=?")).To(Equal("0"), "the default TX power from the 97th (ADR_ACK_LIMIT + ADR_ACK_DELAY)")
			case 128:
				Expect(at("AT+DR=?")).To(Equal("5"), "the data rate kept through the 128th uplink")
			case 129:
				Expect(at("AT+DR=?")).To(Equal("4"), "one data rate lower at the 129th (ADR_ACK_LIMIT + 2 × ADR_ACK_DELAY)")
			}
		}
		reqs := ackReqs()
		first := slices.Index(reqs, true)
		Expect(first).To(Equal(64), "ADRACKReq first in the session's 65th uplink: %v", reqs)
		Expect(slices.Contains(reqs[first:], false)).To(BeFalse(), "and in every uplink after: nothing was heard")
		AddReportEntry("ADR back-off", fmt.Sprintf("ADRACKReq from the session's uplink %d; TX power 3 → 0 at the 97th; DR5 → DR4 at the 129th", first+1))
	}, SpecTimeout(3*time.Minute))
})
