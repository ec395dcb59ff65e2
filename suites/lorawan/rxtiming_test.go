package lorawan_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/suites/kit"
)

// On realistic timing the emulated gateway transmits a downlink at the
// instant ChirpStack schedules it (the uplink's context counter + the
// delay), and the device hears it only if its receive window is open then
// (LoRaMac-node's window parameters): RX1/RX2 delays are exercised, and a
// wrong one loses downlinks as it would on air. Wall-clock: the whole join
// takes its real ≈ 25 s (two attempts, JOIN_ACCEPT_DELAY1 5 s, the
// firmware's 10 s back-off; the duty cycle is not enforced); the timings
// asserted are the air's stamps, exact to the gateway counter's 1 µs.
var _ = Describe("receive windows on realistic time", Label("lorawan", "timing:realistic"), func() {
	It("hears each JoinAccept 5.000 s after its JoinRequest ends (RX1), and misses the ACK sent in RX1 when its own RX1 delay is wrong", Label("cap:GatewaySwitch"), func(ctx SpecContext) {
		f := loadRig()
		f.Timing = "realistic"
		// The EU868 duty cycle is accounted, not waited for: on real time
		// the second JoinRequest would wait out the first's 1 % off-time
		// (≈ 2 min at SF12), which this spec is not about.
		rig := kit.UpRig(ctx, f, rigs.Options{DutyCycle: rigs.DutyCycleOff})
		needAir(rig)
		b := rig.Boards[0]
		// Not recorded as "tap to first uplink": the emulated limits are
		// for instant timing; this run's join takes its real ≈ 25 s.
		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred())
		awaitJoined(ctx, rig, b, res.DevEUI)

		// Every downlink answering an uplink, from the air capture: how
		// long after that uplink's end it started.
		after := func(mtype byte) []time.Duration {
			fs := rig.Captured()
			var out []time.Duration
			for _, d := range fs {
				if d.Uplink || d.ReplyTo == 0 || len(d.PHYPayload) == 0 || d.PHYPayload[0]>>5 != mtype {
					continue
				}
				for _, u := range fs {
					if u.Uplink && u.Seq == d.ReplyTo {
						out = append(out, d.Time.Sub(u.Time.Add(u.Airtime)))
					}
				}
			}
			return out
		}
		ja := after(1) // MHDR 001: JoinAccept (TS001-1.0.4 §4.2.1)
		Expect(ja).To(HaveLen(2), "two join attempts: the first JoinAccept (JoinNonce 0) is dropped by a 1.0.4 device")
		for _, d := range ja {
			// To the concentrator's 1 µs counter resolution.
			Expect(d).To(BeNumerically("~", 5*time.Second, time.Microsecond), "JoinAccept in RX1 = end of the JoinRequest + JOIN_ACCEPT_DELAY1")
		}

		// The device listens at +2 s / +3 s, the network answers at +1 s:
		// the ACK goes on the air and is not heard.
		for _, c := range []string{"AT+RX1DL=2000", "AT+RX2DL=3000"} {
			_, err := b.Console.Command(ctx, c)
			Expect(err).NotTo(HaveOccurred(), c)
		}
		send(ctx, b.Console, 21, true, randomPayload(2))
		send(ctx, b.Console, 22, false, randomPayload(2)) // accepted once the first uplink's windows are over
		// The network's answer to the confirmed uplink (MHDR 100): an ACK
		// (FCtrl bit 5), on the air at its end + 1 s.
		var acks []time.Duration
		fs := rig.Captured()
		for _, u := range fs {
			if !u.Uplink || u.PHYPayload[0]>>5 != 4 {
				continue
			}
			for _, d := range fs {
				if !d.Uplink && d.ReplyTo == u.Seq && len(d.PHYPayload) > 5 && d.PHYPayload[5]&0x20 != 0 {
					acks = append(acks, d.Time.Sub(u.Time.Add(u.Airtime)))
				}
			}
		}
		Expect(acks).To(HaveLen(1), "the network's ACK was transmitted")
		Expect(acks[0]).To(BeNumerically("~", time.Second, time.Microsecond), "in RX1 of the network's session: uplink end + 1 s")
		// What the console said meanwhile — lines before the second
		// AT+SEND's OK on the same serial stream, so already parsed: no
		// +EVT:SEND_CONFIRMED.
		var lines []string
		for drained := false; !drained; {
			select {
			case e := <-b.Console.Events():
				lines = append(lines, e.Line)
			default:
				drained = true
			}
		}
		Expect(lines).NotTo(ContainElement("+EVT:SEND_CONFIRMED"), "an ACK sent outside the device's windows was heard")

		// The control: with its windows where the network sends, it is.
		for _, c := range []string{"AT+RX1DL=1000", "AT+RX2DL=2000"} {
			_, err := b.Console.Command(ctx, c)
			Expect(err).NotTo(HaveOccurred(), c)
		}
		send(ctx, b.Console, 23, true, randomPayload(2))
		awaitEvent(ctx, b.Console, "SEND_CONFIRMED")
		AddReportEntry("receive windows", fmt.Sprintf("JoinAccepts at +%v; ACK at +%v missed with RX1 at +2 s, heard with RX1 at +1 s", ja, acks[0]))
	}, SpecTimeout(3*time.Minute))
})
