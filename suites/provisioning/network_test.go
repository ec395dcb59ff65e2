package provisioning_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/containers"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/suites/kit"
)

// provisionAll runs the whole flow on every board of rig and records it; it
// returns the boards' DevEUIs, in order.
func provisionAll(ctx context.Context, rig *rigs.Rig, what string) []provproto.EUI64 {
	GinkgoHelper()
	var devs []provproto.EUI64
	for _, b := range rig.Boards {
		res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
		for _, t := range res.Timings {
			reports.Record(reports.Duration(what+" phase "+t.Phase, b.Name, t.Wall))
		}
		Expect(err).NotTo(HaveOccurred(), "board %s", b.Name)
		reports.Record(reports.Duration(what+" tap to first uplink", b.Name, res.Total()))
		AddReportEntry(fmt.Sprintf("%s joined (%s)", b.Name, what), fmt.Sprintf("DevEUI %s DevAddr %s AppKey KCV %s", res.DevEUI, res.DevAddr, res.KCV))
		devs = append(devs, res.DevEUI)
	}
	return devs
}

var _ = Describe("NFC provisioning to OTAA join, network server in containers", Label("e2e", "needs:docker"), func() {
	DescribeTable("taps each board and sees it join a ChirpStack reached through published container ports",
		func(ctx SpecContext, events string) {
			containers.Need(ctx, GinkgoT())
			f := kit.LoadRigFile(kit.ContainersRigPath())
			Expect(f.Network.Kind).To(Equal("containers"), "rig %s", f.Path)
			if events != "" {
				f.Network.Events = events
			}
			// Registered first, so it runs last: whatever an interrupted rig
			// start or close left of this run goes too.
			DeferCleanup(func(ctx SpecContext) {
				Expect(containers.Reap(ctx)).To(Succeed())
				Expect(containers.Leftovers(ctx)).To(BeEmpty())
			}, NodeTimeout(time.Minute))
			rig := upRig(ctx, f)
			what := "containers"
			if events != "" {
				what += " " + events + " events"
			}
			// The backend learns the joins from the server's integration
			// events on the containers' broker, in the encoding it publishes.
			for _, dev := range provisionAll(ctx, rig, what) {
				Eventually(func() bool {
					info, err := rig.Backend.Device(ctx, dev)
					return err == nil && info.Joined != nil
				}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(20*time.Millisecond).
					Should(BeTrue(), "the backend's record of %s's join", dev)
			}
		},
		Entry("events as the rig file says (JSON)", "", SpecTimeout(5*time.Minute)),
		Entry("events as Protobuf (integration.mqtt.json = false)", rigs.EventsProtobuf, SpecTimeout(5*time.Minute)),
	)
})

var _ = Describe("wrapped-key provisioning", Label("e2e"), func() {
	It("joins while the phone only ever holds the wrapped PROVISION frame", func(ctx SpecContext) {
		f := loadRig()
		f.Provisioning.Wrapped = true
		rig := upRig(ctx, f)
		provisionAll(ctx, rig, "wrapped")
	}, SpecTimeout(2*time.Minute))
})

// The network's broker carries every uplink (gateway events) and every
// integration event (joins, decoded payloads): a client without the account
// must not read them (MQTT 3.1.1 §3.2.2.3 CONNACK 5 "not authorized"; a
// Mosquitto may answer a wrong password with 4 "bad user name or password"
// instead: UNCONFIRMED, see emulators/chirpstack/server.go).
// The gateways, the network server and the backend's notifications all
// connect with the account — the provisioning
// flow and its join records working proves it.
var _ = Describe("the network's MQTT broker", Label("e2e"), func() {
	It("refuses an anonymous client and a wrong password, and serves the account the rig's clients use", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		u, err := url.Parse(rig.NetworkInfo.MQTT)
		Expect(err).NotTo(HaveOccurred())
		if u.User == nil {
			Skip(fmt.Sprintf("network kind %q: its broker takes no account (rig file network.mqtt without credentials)", rig.File.Network.Kind))
		}
		user := u.User.Username()
		pass, _ := u.User.Password()
		u.User = nil
		connect := func(user, pass string) error {
			opts := paho.NewClientOptions().AddBroker(u.String()).SetClientID("tap2join-auth-probe").
				SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
			if user != "" {
				opts.SetUsername(user).SetPassword(pass)
			}
			c := paho.NewClient(opts)
			tok := c.Connect()
			Expect(tok.WaitTimeout(10*time.Second)).To(BeTrue(), "a CONNACK")
			if tok.Error() == nil {
				DeferCleanup(func() { c.Disconnect(0) })
			}
			return tok.Error()
		}
		Expect(connect("", "")).To(MatchError(packets.ErrorRefusedNotAuthorised), "anonymous")
		Expect(connect(user, pass+"-wrong")).To(Or(MatchError(packets.ErrorRefusedBadUsernameOrPassword), MatchError(packets.ErrorRefusedNotAuthorised)), "wrong password")
		Expect(connect(user, pass)).To(Succeed(), "the account")
		provisionAll(ctx, rig, "broker with an account")
	}, SpecTimeout(time.Minute))
})
