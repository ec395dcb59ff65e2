package lorawan_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

// awaitUplink waits for the network server's uplink event carrying payload on
// port (earlier uplinks, e.g. the firmware's first one after a join, are
// skipped).
func awaitUplink(ctx context.Context, ns lns.NetworkServer, dev provproto.EUI64, port uint8, payload []byte) lns.UplinkEvent {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		up, err := ns.AwaitUplink(ctx, lorawan.EUI64(dev))
		Expect(err).NotTo(HaveOccurred())
		if up.FPort == port && bytes.Equal(up.Data, payload) {
			return up
		}
	}
}

func randomPayload(n int) []byte {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}

var _ = Describe("LoRaWAN on the AT console", Label("lorawan", "console"), func() {
	It("joins after NFC provisioning and says so on the console", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		ev := awaitEvent(ctx, b.Console, "NFC_PROVISIONED")
		Expect(ev.Args).To(Equal("KCV=" + res.KCV.String()))
		// The console's DevAddr is one the network server assigned in a
		// join event.
		awaitJoined(ctx, rig, b, res.DevEUI)
	}, SpecTimeout(2*time.Minute))

	It("sends uplinks that the network server decrypts", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		awaitJoined(ctx, rig, b, res.DevEUI)

		payload := randomPayload(11)
		start := time.Now()
		accepted := send(ctx, b.Console, 10, false, payload)
		up := awaitUplink(ctx, rig.Network, res.DevEUI, 10, payload)
		reports.Record(reports.Duration("AT+SEND busy wait", b.Name, accepted.Sub(start)))
		reports.Record(reports.Duration("AT+SEND OK to uplink event", b.Name, time.Since(accepted)))
		Expect(up.Confirmed).To(BeFalse())

		// A confirmed uplink is acknowledged by the network in RX1/RX2:
		// +EVT:SEND_CONFIRMED (lora_at.c AT_event_confirm).
		payload = randomPayload(4)
		send(ctx, b.Console, 11, true, payload)
		up = awaitUplink(ctx, rig.Network, res.DevEUI, 11, payload)
		Expect(up.Confirmed).To(BeTrue())
		awaitEvent(ctx, b.Console, "SEND_CONFIRMED")
	}, SpecTimeout(2*time.Minute))

	It("re-provisions with a new key over NFC and rejoins with it", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		first := provision(ctx, rig, b)
		oldAddr := awaitJoined(ctx, rig, b, first.DevEUI)

		// The backend issues a new key for the registered device; the
		// network keeps the old one until the device acknowledged the new.
		iss, err := rig.Backend.RegisterClear(ctx, provapi.ClearRequest{DevEUI: first.DevEUI, Reprovision: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(iss.Pending).To(BeTrue(), "a registered device's new key waits for the device's acknowledgement")
		kcv := provproto.CheckValue(iss.Keys.AppKey)
		Expect(kcv).NotTo(Equal(first.KCV))
		p := phone.New(phone.NFCTag(b.Tag), nil, b.PhoneOptions(phone.Options{Reprovision: true}))
		id, err := p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.State).To(Equal(provproto.StateJoined))
		ack, err := p.WriteKey(ctx, id, iss, rig.Region)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.AppKCV).To(Equal(kcv))
		Expect(awaitEvent(ctx, b.Console, "NFC_PROVISIONED").Args).To(Equal("KCV=" + kcv.String()))
		Expect(rig.Backend.Confirm(ctx, first.DevEUI, ack.AppKCV)).To(Succeed(), "the new key replaces the old one at the network")

		newAddr := awaitJoined(ctx, rig, b, first.DevEUI) // rejoined with the new key
		Expect(newAddr).NotTo(Equal(oldAddr))
		payload := randomPayload(6)
		send(ctx, b.Console, 12, false, payload)
		awaitUplink(ctx, rig.Network, first.DevEUI, 12, payload) // the new session's keys decrypt it
	}, SpecTimeout(2*time.Minute))

	It("has its reused DevNonces rejected after a factory reset, and joins once its counter passes them", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		awaitJoined(ctx, rig, b, res.DevEUI)

		// AT+RFS erases the context: the DevNonce counter restarts at 0
		// (STM32CubeWL lora_at.c AT_restore_factory_settings erases the
		// context page), while ChirpStack remembers the
		// DevNonces it has seen.
		_, err := b.Console.Command(ctx, "AT+RFS")
		Expect(err).NotTo(HaveOccurred())
		lines, err := b.Console.Command(ctx, "AT+APPEUI=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(Equal([]string{"00:00:00:00:00:00:00:00"}), "factory JoinEUI after AT+RFS")

		iss, err := rig.Backend.RegisterClear(ctx, provapi.ClearRequest{DevEUI: res.DevEUI, Reprovision: true})
		Expect(err).NotTo(HaveOccurred())
		p := phone.New(phone.NFCTag(b.Tag), nil, b.PhoneOptions(phone.Options{}))
		id, err := p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.State).To(Equal(provproto.StateFactory))
		ack, err := p.WriteKey(ctx, id, iss, rig.Region)
		Expect(err).NotTo(HaveOccurred())
		Expect(rig.Backend.Confirm(ctx, res.DevEUI, ack.AppKCV)).To(Succeed())

		// ChirpStack: log event OTAA "DevNonce has already been used"
		// (ChirpStack v4 uplink/join.rs validate_dev_nonce_and_get_device_keys,
		// storage/device_keys.rs validate_incr_join_and_store_dev_nonce).
		rejected := 0
		for rejected == 0 {
			le, err := rig.Network.AwaitLog(ctx, lorawan.EUI64(res.DevEUI))
			Expect(err).NotTo(HaveOccurred())
			if strings.Contains(le.Description, "DevNonce has already been used") {
				Expect(le.Context).To(HaveKeyWithValue("dev_nonce", "1"))
				rejected++
			}
		}
		awaitEvent(ctx, b.Console, "JOIN FAILED")
		awaitJoined(ctx, rig, b, res.DevEUI) // once the DevNonce counter passes the used ones
		AddReportEntry("DevNonce reuse", "DevNonce 1 rejected by the network server after AT+RFS; the board joined with a fresh DevNonce")
	}, SpecTimeout(2*time.Minute))

	It("answers ST's AT command set", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		con := b.Console

		lines, err := con.Command(ctx, "AT")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(BeEmpty())

		lines, err = con.Command(ctx, "AT+VER=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(HaveLen(5))
		for i, prefix := range []string{"APPLICATION_VERSION:", "MW_LORAWAN_VERSION:", "MW_RADIO_VERSION:", "L2_SPEC_VERSION:", "RP_SPEC_VERSION:"} {
			Expect(lines[i]).To(HavePrefix(prefix))
		}
		Expect(lines[3]).To(HaveSuffix("V1.0.4"))

		nid, err := b.Phone.ReadNDEFIdentity(ctx)
		Expect(err).NotTo(HaveOccurred())
		lines, err = con.Command(ctx, "AT+DEUI=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(Equal([]string{at.FormatEUI(nid.DevEUI)}), "the console's DevEUI is the one on the NFC tag")

		lines, err = con.Command(ctx, "AT+BAND=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(Equal([]string{"5:EU868"}))

		for _, c := range []struct {
			cmd  string
			want error
		}{
			{"AT+FOO=?", at.ErrAT},           // unknown command
			{"ATFOO", at.ErrAT},              // unknown command
			{"AT+VER=1", at.ErrAT},           // operation the command does not have
			{"AT+JOINEUI=?", at.ErrAT},       // not in ST's set: it is AT+APPEUI
			{"AT+DR=42", at.ErrParam},        // out of range
			{"AT+SEND=2", at.ErrParam},       // no ack flag, no payload
			{"AT+SEND=2:0:ABC", at.ErrParam}, // odd hex
			{"AT+DEUI=00:11", at.ErrParam},   // short EUI
			{"AT+SEND=2:0:AB", at.ErrNotJoined},
			{"AT+CLASS=B", at.ErrNoClassB},
		} {
			_, err := con.Command(ctx, c.cmd)
			Expect(err).To(MatchError(c.want), "%s", c.cmd)
		}
	}, SpecTimeout(time.Minute))
})

var _ = Describe("key read-back on the console", Label("security", "console"), func() {
	It("finds no AppKey on the console of the provisioning firmware", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		Expect(keyLeak(ctx, b.Console, res.KCV)).To(BeEmpty(), "the firmware prints its AppKey")
		_, err := b.Console.Command(ctx, "AT+APPKEY=?")
		Expect(err).To(MatchError(at.ErrAT), "a refused key read answers AT_ERROR")
	}, SpecTimeout(time.Minute))

	It("reports a board whose firmware prints the AppKey on AT+APPKEY=?", Label("cap:firmware-faults"), func(ctx SpecContext) {
		f := loadRig()
		f.Boards = f.Boards[:1]
		kit.NeedFirmwareFaults(f, 0)
		f.Boards[0].Faults.KeyReadBack = true // ST's default build: KEY_EXTRACTABLE 1
		rig := upRig(ctx, f)
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		leaks := keyLeak(ctx, b.Console, res.KCV)
		Expect(leaks).To(ContainElement("AT+APPKEY=?"), "the check must detect the leak")
		AddReportEntry("key leak detected", "AppKey KCV "+res.KCV.String()+" printed by "+strings.Join(leaks, ", "))
		// What the board printed is kept out of the transcript and errors.
		kit.ExpectNoIssuedKeys(at.FormatTranscript(b.Console.Transcript()), "the console transcript")
	}, SpecTimeout(time.Minute))
})

// awaitRX waits for the console's next downlink reception (+EVT:RX_<slot>).
func awaitRX(ctx context.Context, con at.Console) at.RX {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var seen []string
	for {
		select {
		case ev, ok := <-con.Events():
			Expect(ok).To(BeTrue(), "console closed while waiting for +EVT:RX_")
			if strings.HasPrefix(ev.Name, "RX_") {
				rx, err := at.ParseRX(ev)
				Expect(err).NotTo(HaveOccurred())
				return rx
			}
			seen = append(seen, ev.Line)
		case <-ctx.Done():
			Fail(fmt.Sprintf("no +EVT:RX_ on the console (saw %q)", seen))
		}
	}
}

// requiredSNR is the demodulation floor ChirpStack subtracts for a
// LinkCheckAns margin (config.rs get_required_snr_for_sf), EU868 DR0..5 =
// SF12..7.
func requiredSNR(dr uint32) float32 { return -20 + 2.5*float32(dr) }

var _ = Describe("MAC commands on the AT console", Label("lorawan", "console", "mac"), func() {
	It("answers the network's DevStatusReq with its battery and margin, follows its ADR, and shows a link check", func(ctx SpecContext) {
		f := loadRig()
		f.Network.DeviceStatusReqInterval = 1 // once a day: the first downlink after the join asks
		rig := upRig(ctx, f)
		b := rig.Boards[0]
		res := provision(ctx, rig, b)
		awaitJoined(ctx, rig, b, res.DevEUI)

		// The firmware's first uplink after the join is answered in RX1/RX2
		// by a MAC-only downlink carrying DevStatusReq.
		req := awaitRX(ctx, b.Console)
		Expect(req.Port).To(BeZero(), "a MAC-only downlink has no application port")

		// ChirpStack's ADR rode along (the board's uplinks set ADR): the
		// board now sends at the data rate the network chose, and the
		// network sees it.
		lines, err := b.Console.Command(ctx, "AT+DR=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(HaveLen(1))
		dr, err := strconv.Atoi(lines[0])
		Expect(err).NotTo(HaveOccurred())

		// The next uplink carries DevStatusAns (and LinkADRAns): the margin
		// is the SNR the board printed for the request; the battery comes
		// from VDD.
		statusPayload := randomPayload(3)
		send(ctx, b.Console, 2, false, statusPayload)
		Expect(awaitUplink(ctx, rig.Network, res.DevEUI, 2, statusPayload).DR).To(BeEquivalentTo(dr), "uplink DR vs AT+DR=? after ADR")
		// ADR settles: as the board turns its power down the network sees
		// the margin shrink, and within a few uplinks nothing changes any
		// more (no oscillation).
		// Seen from the network: the data rate and SNR of each uplink
		// reflect the LinkADRReq answered in the one before.
		var trail []string
		prev := ""
		settled := false
		for i := 0; i < 8 && !settled; i++ {
			p := randomPayload(2)
			send(ctx, b.Console, 4, false, p)
			up := awaitUplink(ctx, rig.Network, res.DevEUI, 4, p)
			cur := fmt.Sprintf("DR%d@%.0fdB", up.DR, up.SNR)
			trail = append(trail, cur)
			settled = cur == prev
			prev = cur
		}
		Expect(settled).To(BeTrue(), "ADR did not settle: %v", trail)
		AddReportEntry("ADR", fmt.Sprintf("%s: after the network's LinkADRReq DR%d; then %v", b.Name, dr, trail))
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := rig.Network.AwaitStatus(sctx, lorawan.EUI64(res.DevEUI))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Margin).To(Equal(max(-32, min(31, req.SNR))), "DevStatusAns margin vs the SNR on the RX line")
		mv, err := b.Console.Command(ctx, "AT+BAT=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(st.BatteryUnavailable).To(BeFalse())
		if !st.ExternalPower {
			Expect(st.BatteryPercent).To(BeNumerically(">", 0))
			Expect(st.BatteryPercent).To(BeNumerically("<=", 100))
		}
		AddReportEntry("device status", fmt.Sprintf("%s: margin %d dB, battery %.1f %% (AT+BAT %v mV), external power %t",
			b.Name, st.Margin, st.BatteryPercent, strings.Join(mv, ""), st.ExternalPower))

		// AT+LINKC piggybacks LinkCheckReq on the next uplink; the answer
		// shows as DMODM/GWN on the RX line.
		_, err = b.Console.Command(ctx, "AT+LINKC")
		Expect(err).NotTo(HaveOccurred())
		payload := randomPayload(2)
		send(ctx, b.Console, 3, false, payload)
		up := awaitUplink(ctx, rig.Network, res.DevEUI, 3, payload)
		rx := awaitRX(ctx, b.Console)
		for rx.LinkCheck == nil { // RX lines of the ADR exchanges above come first
			rx = awaitRX(ctx, b.Console)
		}
		Expect(rx.LinkCheck.Gateways).To(Equal(len(up.Gateways)))
		Expect(rx.LinkCheck.Margin).To(Equal(int(max(up.SNR-requiredSNR(up.DR), 0))),
			"LinkCheckAns margin: uplink SNR %.1f dB at DR%d", up.SNR, up.DR)
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("moving a device to another network", Label("lorawan", "console", "reprovision", "cap:OtherNetworks"), func() {
	It("re-provisions it over NFC with the other network's key; it rejoins there with that network's NetID", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig())
		networks := kit.NeedOfRig[rigs.OtherNetworks](rig)
		b := rig.Boards[0]
		first := provision(ctx, rig, b)
		addrA := awaitJoined(ctx, rig, b, first.DevEUI)

		// Network B covers the same site: its own ChirpStack (NetID 000013),
		// gateway and provisioning backend.
		netB := lorawan.NetID{0x00, 0x00, 0x13}
		other, err := networks.StartOtherNetwork(ctx, rigs.OtherNetworkConfig{
			NetID: netB, GatewayID: [8]byte{0x00, 0x16, 0xC0, 0x01, 0xFF, 0x10, 0xB0, 0x02},
			JoinEUI: provproto.EUI64{0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x00, 0x02},
		})
		Expect(err).NotTo(HaveOccurred())

		// The app registers the device with network B and gets B's key.
		dev := first.DevEUI
		reg, err := other.Backend.Register(ctx, dev, other.JoinEUI, nil)
		Expect(err).NotTo(HaveOccurred())
		iss := reg

		// Without the re-provisioning flag the provisioned device refuses
		// (SPEC.md §5.3) and keeps network A's key.
		p := other.Phone(b, phone.Options{})
		id, err := p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.State).To(Equal(provproto.StateJoined))
		_, err = p.WriteKey(ctx, id, iss, rig.Region)
		var perr *provproto.Error
		Expect(errors.As(err, &perr)).To(BeTrue(), "device refusal expected, got %v", err)
		Expect(perr.Status).To(Equal(provproto.AlreadyProvisioned))
		Expect(awaitEvent(ctx, b.Console, "NFC_REJECTED").Args).To(Equal("ALREADY_PROVISIONED"), "the console says why")

		// With it, after a fresh IDENTITY: the key is B's, and the board
		// rejoins through B's gateway.
		p = other.Phone(b, phone.Options{Reprovision: true})
		id, err = p.Identity(ctx)
		Expect(err).NotTo(HaveOccurred())
		ack, err := p.WriteKey(ctx, id, iss, rig.Region)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.AppKCV).To(Equal(reg.KCV))
		Expect(reg.KCV).NotTo(Equal(first.KCV))
		Expect(awaitEvent(ctx, b.Console, "NFC_PROVISIONED").Args).To(Equal("KCV=" + reg.KCV.String()))
		addrB := awaitJoinedOn(ctx, other.Network, b, dev)
		Expect(addrB.IsNetID(netB)).To(BeTrue(), "DevAddr %s is not in NetID %s", addrB, netB)
		lines, err := b.Console.Command(ctx, "AT+APPEUI=?")
		Expect(err).NotTo(HaveOccurred())
		Expect(lines).To(Equal([]string{"70:B3:D5:7E:D0:00:00:02"}), "network B's JoinEUI")

		// Its data now belongs to network B.
		payload := randomPayload(5)
		send(ctx, b.Console, 7, false, payload)
		up := awaitUplink(ctx, other.Network, dev, 7, payload)
		Expect(up.DevAddr).To(Equal(addrB))
		AddReportEntry("moved to another network", fmt.Sprintf("%s: network A DevAddr %s → network B (NetID %s) DevAddr %s, AppKey KCV %s → %s",
			b.Name, addrA, netB, addrB, first.KCV, reg.KCV))
	}, SpecTimeout(2*time.Minute))
})
