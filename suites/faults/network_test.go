package faults_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/containers"
	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// twoBoards is the rig with a second board (its unique id one higher), one
// provisioned before a fault and one after.
func twoBoards() *rigs.File {
	GinkgoHelper()
	f := loadRig()
	second := f.Boards[0]
	second.Name = "board-2"
	second.UniqueID = "0080E115000000F2"
	f.Boards = append(f.Boards, second)
	return f
}

var _ = Describe("the MQTT broker and the network server restarting", Label("faults", "cap:BrokerRestart", "cap:NetworkServerRestart"), func() {
	It("reconnects the gateway and the network client; a device provisioned after the restarts joins, one provisioned before keeps its session", func(ctx SpecContext) {
		rig := upRig(ctx, twoBoards(), rigs.Options{})
		broker := kit.NeedOfRig[rigs.BrokerRestart](rig)
		server := kit.NeedOfRig[rigs.NetworkServerRestart](rig)
		before, after := rig.Boards[0], rig.Boards[1]
		res, err := before.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred(), "provisioned before the restarts")

		start := time.Now()
		Expect(broker.RestartBroker(ctx)).To(Succeed())
		Eventually(rig.NetworkReady).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(10 * time.Millisecond).Should(Succeed())
		brokerBack := time.Since(start)

		start = time.Now()
		Expect(server.RestartNetworkServer(ctx)).To(Succeed())
		Eventually(rig.NetworkReady).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(10 * time.Millisecond).Should(Succeed())
		nsBack := time.Since(start)

		// The server kept its state (ChirpStack's database survives a
		// restart): the first device's session still decrypts its uplinks.
		if _, err := before.Console.Command(ctx, "AT"); err != at.ErrNoConsole {
			// The MAC may still run the first uplink's receive windows
			// (AT_BUSY_ERROR): the send is retried until it is taken.
			Eventually(func() error {
				_, err := before.Console.Command(ctx, "AT+SEND=2:0:CAFE")
				return err
			}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())
			uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			up, err := rig.Network.AwaitUplink(uctx, lorawan.EUI64(res.DevEUI))
			Expect(err).NotTo(HaveOccurred(), "an uplink of the device joined before the restarts")
			Expect(up.Data).To(Equal([]byte{0xCA, 0xFE}))
		}
		// A device registered and provisioned after both restarts joins.
		res2, err := after.Phone.Provision(ctx, rig.Region, rig.Joins())
		Expect(err).NotTo(HaveOccurred(), "provisioned after the restarts")
		// The provisioning backend learns joins from the network server's
		// integration events on the broker: after the broker restart it must
		// have subscribed again (a clean session forgets subscriptions), or
		// every later join record is lost while provisioning still works.
		Eventually(func() string {
			info, err := rig.Backend.Device(ctx, res2.DevEUI)
			if err != nil || info.Joined == nil {
				return ""
			}
			return info.DevAddr
		}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
			Should(Equal(res2.DevAddr.String()), "the backend's record of the join after the broker restart (its join-event subscription renewed)")
		outcome("MQTT broker restart", fmt.Sprintf("every MQTT client reconnected and re-subscribed within %v; the backend recorded the next join", brokerBack.Round(time.Millisecond)))
		outcome("network server restart", fmt.Sprintf("API and gateway backend back within %v with their state; the device joined before kept its session (uplink decrypted), the device provisioned after joined as %s",
			nsBack.Round(time.Millisecond), res2.DevAddr))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("the gateway lost", Label("faults", "cap:GatewaySwitch"), func() {
	It("fails the join after the device's attempts, naming the join phase; with the gateway back a rejoin succeeds", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		gateways := kit.NeedOfRig[rigs.GatewaySwitch](rig)
		b := rig.Boards[0]
		if _, err := b.Console.Command(ctx, "AT"); err == at.ErrNoConsole {
			Skip("the join attempts are counted on the console")
		}
		Expect(gateways.CutGateways()).To(Succeed())

		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type result struct {
			res phone.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := b.Phone.Provision(pctx, rig.Region, rig.Joins())
			done <- result{res, err}
		}()
		// The firmware makes its attempts (4 by default), each answered by
		// nobody, then gives up.
		failed := 0
		awaitEvents(ctx, b.Console, "the 4th +EVT:JOIN FAILED", func(e at.Event) bool {
			if e.Name == "JOINED" {
				Fail("joined without a gateway")
			}
			if e.Name == "JOIN FAILED" {
				failed++
			}
			return failed == 4
		})
		Consistently(done).WithTimeout(20*time.Millisecond).ShouldNot(Receive(), "the phone is still waiting for the network's join")
		cancel()
		var r result
		Eventually(done).WithContext(ctx).Should(Receive(&r))
		Expect(r.err).To(HaveOccurred())
		Expect(phone.PhaseOf(r.err)).To(Equal(phone.PhaseJoin))
		Expect(r.err.Error()).To(ContainSubstring(`phase "join" failed`))
		kit.ExpectNoIssuedKeys(r.err.Error(), "the error")
		// The device kept its key: provisioned, not joined.
		id := deviceState(ctx, b)
		Expect(id.State).To(Equal(provproto.StateProvisioned))

		// The gateway back: AT+JOIN=1 (one attempt each) until it joins. The
		// first JoinAccept carries JoinNonce 0, which a LoRaWAN 1.0.4
		// device drops, so a second attempt is expected.
		Expect(gateways.RestoreGateways(ctx)).To(Succeed())
		Eventually(rig.NetworkReady).WithContext(ctx).Should(Succeed())
		attempts := 0
		for joined := false; !joined; {
			attempts++
			Expect(attempts).To(BeNumerically("<=", 4), "a rejoin succeeds within 4 attempts")
			_, err := b.Console.Command(ctx, "AT+JOIN=1")
			Expect(err).NotTo(HaveOccurred())
			evs := awaitEvents(ctx, b.Console, "+EVT:JOINED or +EVT:JOIN FAILED", kit.Named("JOINED", "JOIN FAILED"))
			joined = evs[len(evs)-1].Name == "JOINED"
		}
		jctx, jcancel := context.WithTimeout(ctx, 10*time.Second)
		defer jcancel()
		ev, err := rig.Network.AwaitJoin(jctx, lorawan.EUI64(id.DevEUI))
		Expect(err).NotTo(HaveOccurred(), "the network server reports the join")
		outcome("gateway lost", fmt.Sprintf("4 join attempts failed, phone error names phase %q; key kept (state provisioned); gateway back: rejoined after %d AT+JOIN attempt(s), DevAddr %s",
			phone.PhaseJoin, attempts, ev.DevAddr))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("a network server container crashing", Label("faults", "needs:docker"), func() {
	It("is reported by the fixture, and Terminate still removes everything", func(ctx SpecContext) {
		containers.Need(ctx, GinkgoT())
		f := kit.LoadRigFile(kit.ContainersRigPath())
		opts := []containers.Option{containers.WithRegion(f.Network.Region), containers.WithDeduplicationDelay(5 * time.Millisecond)}
		if f.Network.ImageSet == "upstream" {
			opts = append(opts, containers.WithImageSet(containers.ImageSetUpstream))
		}
		// Registered first, so it runs last: whatever is left goes too.
		DeferCleanup(func(ctx SpecContext) {
			Expect(containers.Reap(ctx)).To(Succeed())
			Expect(containers.Leftovers(ctx)).To(BeEmpty())
		}, NodeTimeout(time.Minute))
		st, err := containers.Run(ctx, opts...)
		Expect(err).NotTo(HaveOccurred())
		terminated := false
		DeferCleanup(func(ctx SpecContext) {
			if !terminated {
				Expect(st.Terminate(ctx)).To(Succeed())
			}
		}, NodeTimeout(time.Minute))
		Expect(st.Check(ctx)).To(Succeed(), "every container runs")

		c, err := lns.Dial(ctx, lns.Config{API: st.APIAddr, Token: st.Token, Region: f.Network.Region})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		_, err = c.EnsureTenant(ctx, "tap2join-faults")
		Expect(err).NotTo(HaveOccurred(), "the API answers before the crash")

		Expect(st.Crash(ctx, "chirpstack")).To(Succeed())
		Eventually(st.Check).WithContext(ctx).WithTimeout(30*time.Second).Should(MatchError(ContainSubstring("chirpstack")), "the fixture reports the dead container")
		report := st.Check(ctx).Error()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = c.EnsureTenant(cctx, "tap2join-faults-2")
		Expect(err).To(HaveOccurred(), "the API is gone")

		Expect(st.Terminate(ctx)).To(Succeed(), "Terminate cleans up a stack with a dead container")
		terminated = true
		Expect(containers.Leftovers(ctx)).To(BeEmpty(), "nothing is left")
		outcome("network server container crash", "fixture reported: "+report+"; API calls failed; Terminate removed every container and the network")
	}, SpecTimeout(5*time.Minute))
})
