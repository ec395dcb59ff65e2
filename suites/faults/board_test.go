package faults_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

var _ = Describe("the serial port vanishing and returning", Label("faults"), func() {
	It("re-opens the console after ATZ re-enumerates the port; the next command works and the transcript shows the gap", func(ctx SpecContext) {
		f := loadRig()
		f.Boards[0].Serial.ReenumerateOnReset = true
		rig := upRig(ctx, f, rigs.Options{})
		b := rig.Boards[0]
		con := b.Console
		if _, err := con.Command(ctx, "AT"); err == at.ErrNoConsole {
			Skip("the board has no serial console")
		}
		deui, err := con.Command(ctx, "AT+DEUI=?")
		Expect(err).NotTo(HaveOccurred())
		before := len(con.Transcript())

		_, err = con.Command(ctx, "ATZ")
		Expect(err).NotTo(HaveOccurred(), "ATZ returns once the board is ready again")
		again, err := con.Command(ctx, "AT+DEUI=?")
		Expect(err).NotTo(HaveOccurred(), "the next command works")
		Expect(again).To(Equal(deui))
		if r, ok := con.(interface{ Reopens() int }); ok {
			Expect(r.Reopens()).To(BeNumerically(">=", 1), "the driver re-opened the port")
		}

		// The transcript: a note that the port was lost, one that it was
		// open again, in that order, with the gap between them.
		var lost, open time.Time
		for _, l := range con.Transcript()[before:] {
			switch {
			case l.Dir == at.Note && strings.HasPrefix(l.Text, "port lost") && lost.IsZero():
				lost = l.Time
			case l.Dir == at.Note && strings.Contains(l.Text, " open (") && !lost.IsZero() && open.IsZero():
				open = l.Time
			}
		}
		Expect(lost).NotTo(BeZero(), "the transcript notes the port vanishing")
		Expect(open).NotTo(BeZero(), "the transcript notes the port open again")
		gap := open.Sub(lost)
		reports.Record(reports.Duration("serial re-enumeration gap", b.Name, gap))
		outcome("serial port vanished and returned", fmt.Sprintf("console re-opened after %v; the next command answered OK", gap.Round(time.Millisecond)))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("power lost during an NVM write", Label("faults", "cap:firmware-faults"), func() {
	It("leaves the old key or the new key after power-up, never a mix, at every flash step", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		golden := filepath.Join(dir, "golden.nvm")

		// A board provisioned with the old key and joined, its flash in a file.
		f := loadRig()
		kit.NeedFirmwareFaults(f, 0) // nvm: and faults.nvm_kill_at_step
		f.Boards[0].NVM = golden
		var old provproto.KCV
		var join provproto.EUI64
		func() {
			rig, err := rigs.Up(ctx, f, rigs.Options{RXWindowCap: rxCap})
			Expect(err).NotTo(HaveOccurred())
			defer func() { Expect(rig.Close()).To(Succeed()) }()
			kit.AwaitMailbox(ctx, rig.Boards[0])
			be, res := provision(ctx, rig, rig.Boards[0], nil)
			old, join = kcvOf(be.last), res.JoinEUI
		}()
		image := readFile(golden)

		var newKey provproto.Keys
		_, _ = rand.Read(newKey.AppKey[:])
		fresh := provproto.CheckValue(newKey.AppKey)
		var outcomes []string
		firstNew := 0
		for step := 1; step <= rigs.NVMWriteSteps; step++ {
			nvm := filepath.Join(dir, fmt.Sprintf("step-%02d.nvm", step))
			writeFile(nvm, image)

			// Re-provisioning with the power cut after `step` flash steps.
			// No gateway: these rigs never reach the network.
			cut := loadRig()
			cut.Gateways = nil
			cut.Boards[0].NVM = nvm
			cut.Boards[0].Faults.NVMKillAtStep = step
			func() {
				rig, err := rigs.Up(ctx, cut, rigs.Options{RXWindowCap: rxCap, NoConsoles: true})
				Expect(err).NotTo(HaveOccurred(), "step %d", step)
				defer func() { Expect(rig.Close()).To(Succeed()) }()
				kit.AwaitMailbox(ctx, rig.Boards[0])
				p := phone.New(phone.NFCTag(rig.Boards[0].Tag), nil, rig.Boards[0].PhoneOptions(phone.Options{Reprovision: true}))
				id, err := p.Identity(ctx)
				Expect(err).NotTo(HaveOccurred(), "step %d", step)
				Expect(id.State).To(Equal(provproto.StateJoined), "step %d: the old key's board", step)
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := p.WriteKey(wctx, id, provapi.Issued{JoinEUI: join, Keys: newKey}, rig.Region)
					done <- err
				}()
				Eventually(rig.BackgroundErrors).WithContext(ctx).Should(MatchError(rigs.ErrPowerLoss), "step %d: the power is cut", step)
				cancel()
				Expect(<-done).To(HaveOccurred(), "step %d: a dead board acknowledges nothing", step)
			}()

			// Power-up: a new board on the same flash.
			up := loadRig()
			up.Gateways = nil
			up.Boards[0].NVM = nvm
			func() {
				rig, err := rigs.Up(ctx, up, rigs.Options{RXWindowCap: rxCap})
				Expect(err).NotTo(HaveOccurred(), "step %d: power-up", step)
				defer func() { Expect(rig.Close()).To(Succeed()) }()
				b := rig.Boards[0]
				kit.AwaitMailbox(ctx, b)
				id := deviceState(ctx, b)
				root, app, ok := keyKCVs(ctx, b)
				Expect(ok).To(BeTrue(), "the power-up rig has a console")
				Expect(app).To(Equal(root), "step %d: both key slots from one record", step)
				switch {
				case root == old:
					Expect(id.State).To(Equal(provproto.StateJoined), "step %d: old key, old state", step)
					Expect(firstNew).To(BeZero(), "step %d: old key after the new one was complete at step %d", step, firstNew)
					outcomes = append(outcomes, fmt.Sprintf("%d:old", step))
				case root == fresh:
					Expect(id.State).To(Equal(provproto.StateProvisioned), "step %d: new key, new state", step)
					if firstNew == 0 {
						firstNew = step
					}
					outcomes = append(outcomes, fmt.Sprintf("%d:new", step))
				default:
					Fail(fmt.Sprintf("step %d: the device holds a key that is neither the old nor the new one (KCV %s)", step, root))
				}
				Expect(id.JoinEUI).To(Equal(join))
			}()
		}
		Expect(outcomes[0]).To(Equal("1:old"), "the erase step alone keeps the old key")
		Expect(firstNew).To(BeNumerically(">", 1))
		Expect(outcomes[len(outcomes)-1]).To(HaveSuffix(":new"), "a cut after the last step keeps the new key")
		outcome("power loss during NVM write",
			fmt.Sprintf("old key (KCV %s) kept for a cut at steps 1..%d, new key (KCV %s) from step %d of %d; never a mix",
				old, firstNew-1, fresh, firstNew, rigs.NVMWriteSteps))
	}, SpecTimeout(3*time.Minute))
})

var _ = Describe("a power cycle", Label("faults", "cap:PowerSwitch"), func() {
	It("keeps the provisioned key; the firmware enables the mailbox again at boot and answers the phone", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		sw := kit.Need[rigs.PowerSwitch](b)
		_, res := provision(ctx, rig, b, nil)

		Expect(sw.PowerOff(ctx)).To(Succeed())
		// MB_EN is a dynamic register: without VCC the mailbox is off (the
		// tag, powered by the field, still answers), and only the firmware
		// can enable it again (DS13519 §5.1.2; SPEC.md §1).
		st, err := b.Tag.MailboxStatus(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Enabled).To(BeFalse(), "mailbox with the board's supply cut: %s", st)
		Expect(sw.PowerOn(ctx)).To(Succeed())
		kit.AwaitMailbox(ctx, b)
		id := deviceState(ctx, b)
		Expect(id.State).To(Equal(provproto.StateJoined), "the stored session survives the power cut")
		if root, app, ok := keyKCVs(ctx, b); ok {
			Expect(root).To(Equal(res.KCV), "the key survives the power cut")
			Expect(app).To(Equal(res.KCV))
		}
		outcome("power cycle", fmt.Sprintf("the board came back %s with key KCV %s; the firmware enabled the mailbox again and answered GET_IDENTITY", id.State, res.KCV))
	}, SpecTimeout(time.Minute))
})

// The bench form of "power lost during an NVM write": a board on a
// switchable supply (PowerSwitch; an emulated board too) has its power cut
// at offsets spread over the time the key write takes — measured first, as
// PROVISION written → PROVISION_ACK read — and must come back holding the
// old key or the new one, never a mix. Where the firmware prints no keys
// (a release build) the check is the state and that the device answers.
var _ = Describe("a power cut at measured offsets into the key write", Label("faults", "cap:PowerSwitch"), func() {
	It("leaves the old key or the new key, never a mix, at each offset", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		sw := kit.Need[rigs.PowerSwitch](b)
		_, res := provision(ctx, rig, b, nil)
		held := map[provproto.KCV]bool{res.KCV: true} // keys the device may hold: the old, then each new one issued

		reprovision := func() (provproto.Keys, *phone.Phone, []byte) {
			GinkgoHelper()
			iss, err := rig.Backend.RegisterClear(ctx, provapi.ClearRequest{DevEUI: res.DevEUI, Reprovision: true})
			Expect(err).NotTo(HaveOccurred())
			p := phone.New(phone.NFCTag(b.Tag), nil, b.PhoneOptions(phone.Options{Reprovision: true}))
			id, err := p.Identity(ctx)
			Expect(err).NotTo(HaveOccurred())
			frame, err := provproto.Provision{Nonce: id.Nonce, Reprovision: true, Region: rig.Region, JoinEUI: res.JoinEUI, Keys: iss.Keys}.MarshalClear()
			Expect(err).NotTo(HaveOccurred())
			return iss.Keys, p, frame
		}

		// The write's duration on this bench.
		keys, p, frame := reprovision()
		start := time.Now()
		Expect(p.Post(ctx, frame)).To(Succeed())
		ack, err := p.PendingAnswer(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.Type).To(Equal(provproto.TypeProvisionAck))
		write := time.Since(start)
		held[provproto.CheckValue(keys.AppKey)] = true

		var outcomes []string
		for _, frac := range []float64{0, 0.25, 0.5, 0.75, 1} {
			keys, p, frame := reprovision()
			held[provproto.CheckValue(keys.AppKey)] = true
			Expect(p.Post(ctx, frame)).To(Succeed())
			// The offset is what is tested: a wall-clock wait on purpose.
			time.Sleep(time.Duration(frac * float64(write)))
			Expect(sw.PowerOff(ctx)).To(Succeed())
			Expect(sw.PowerOn(ctx)).To(Succeed())
			kit.AwaitMailbox(ctx, b)
			id := deviceState(ctx, b)
			// Provisioned (a new key, its join not yet through) or joined:
			// never factory, never an answer-less board.
			Expect(id.State).To(BeElementOf(provproto.StateProvisioned, provproto.StateJoined), "at %.0f %% of the write", 100*frac)
			what := "state " + id.State.String()
			if root, app, ok := keyKCVs(ctx, b); ok {
				Expect(held).To(HaveKey(root), "at %.0f %% of the write: the root key is one issued, whole", 100*frac)
				Expect(app).To(Equal(root))
				what = "key KCV " + root.String()
			}
			outcomes = append(outcomes, fmt.Sprintf("%.0f %%: %s", 100*frac, what))
		}
		outcome("power cut at offsets into the key write", fmt.Sprintf("write takes %v; %s", write.Round(time.Microsecond), strings.Join(outcomes, "; ")))
	}, SpecTimeout(2*time.Minute))
})

// LoRaWAN 1.0.4 §6.2.5: a DevNonce is never used twice with the same
// JoinEUI — ChirpStack refuses a JoinRequest whose DevNonce it has seen, so
// a firmware that loses its counter to a power cut is locked out of the
// network; and a frame counter reused with the same session keys is a
// replay the network drops. Both counters are stored before the frame that
// uses them goes out (LoRaMacCrypto.c LoRaMacCryptoPrepareJoinRequest): a cut
// at any step of that write must leave a counter the next frame goes
// beyond. Each cut lands at an exact flash step of the write (NVMCut); after
// the power comes back the network is the judge — it accepts the next join
// and decrypts the next uplink — and the air capture shows no value twice.
var _ = Describe("power lost in the DevNonce and frame-counter NVM writes", Label("faults", "cap:NVMCut", "cap:PowerSwitch"), func() {
	It("never makes the device reuse a DevNonce or a frame counter: after a cut at every step of either write the network accepts its next join and uplink", func(ctx SpecContext) {
		rig := upRig(ctx, loadRig(), rigs.Options{})
		b := rig.Boards[0]
		cutter := kit.Need[rigs.NVMCut](b)
		sw := kit.Need[rigs.PowerSwitch](b)
		if _, err := b.Console.Command(ctx, "AT"); err == at.ErrNoConsole {
			Skip("the board has no console to ask for joins and uplinks")
		}
		_, res := provision(ctx, rig, b, nil)
		dev := lorawan.EUI64(res.DevEUI)

		// command retries while the MAC is still busy with the previous
		// frame's receive windows (AT_BUSY_ERROR).
		command := func(cmd string) {
			GinkgoHelper()
			Eventually(func() error {
				_, err := b.Console.Command(ctx, cmd)
				return err
			}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(5*time.Millisecond).Should(Succeed(), cmd)
		}
		cutAt := func(kind string, step int, trigger string) {
			GinkgoHelper()
			cut, err := cutter.ArmNVMCut(kind, step)
			Expect(err).NotTo(HaveOccurred())
			command(trigger)
			Eventually(cut).WithContext(ctx).WithTimeout(10*time.Second).Should(BeClosed(), "%s write, step %d: the power is cut", kind, step)
			Expect(sw.PowerOff(ctx)).To(Succeed())
			Expect(sw.PowerOn(ctx)).To(Succeed())
			kit.AwaitMailbox(ctx, b)
		}
		joined := func(what string) {
			GinkgoHelper()
			since := time.Now()
			command("AT+JOIN=1")
			awaitEvents(ctx, b.Console, what, func(e at.Event) bool { return e.Line == "+EVT:JOINED" && !e.Time.Before(since) }, "+EVT:JOIN FAILED")
		}
		delivered := func(payload []byte, what string) {
			GinkgoHelper()
			command(fmt.Sprintf("AT+SEND=2:0:%X", payload))
			Eventually(func() []byte {
				uctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				up, err := rig.Network.AwaitUplink(uctx, dev)
				if err != nil {
					return nil
				}
				return up.Data
			}).WithContext(ctx).WithTimeout(10*time.Second).Should(Equal(payload), "%s: the network decrypted the uplink", what)
		}

		for step := 1; step <= rigs.NVMWriteSteps; step++ {
			cutAt("devnonce", step, "AT+JOIN=1")
			joined(fmt.Sprintf("+EVT:JOINED after a cut at step %d of the DevNonce write", step))
		}
		joinsAt := time.Now()
		for step := 1; step <= rigs.NVMWriteSteps; step++ {
			cutAt("fcnt", step, fmt.Sprintf("AT+SEND=2:0:C0%02X", step))
			delivered([]byte{0xF0, byte(step)}, fmt.Sprintf("the uplink after a cut at step %d of the frame-counter write", step))
		}

		// The air: every JoinRequest of the device with a new DevNonce, and
		// every uplink of the last session with a new frame counter.
		var nonces []uint16
		var fCnts []uint32
		addr := lastAddr(rig)
		for _, f := range rig.Captured() {
			if !f.Uplink {
				continue
			}
			var p lorawan.PHYPayload
			if p.UnmarshalBinary(f.PHYPayload) != nil {
				continue
			}
			switch pl := p.MACPayload.(type) {
			case *lorawan.JoinRequestPayload:
				if pl.DevEUI == dev {
					nonces = append(nonces, uint16(pl.DevNonce))
				}
			case *lorawan.MACPayload:
				if f.Time.After(joinsAt) && pl.FHDR.DevAddr == addr {
					fCnts = append(fCnts, pl.FHDR.FCnt)
				}
			}
		}
		Expect(len(nonces)).To(BeNumerically(">", rigs.NVMWriteSteps), "JoinRequests on the air")
		for i := 1; i < len(nonces); i++ {
			Expect(nonces[i]).To(BeNumerically(">", nonces[i-1]), "DevNonce %d after %d (JoinRequest %d)", nonces[i], nonces[i-1], i+1)
		}
		Expect(len(fCnts)).To(BeNumerically(">=", rigs.NVMWriteSteps), "uplinks of the last session on the air")
		for i := 1; i < len(fCnts); i++ {
			Expect(fCnts[i]).To(BeNumerically(">", fCnts[i-1]), "FCnt %d after %d (uplink %d)", fCnts[i], fCnts[i-1], i+1)
		}
		outcome("power lost in the DevNonce / frame-counter writes", fmt.Sprintf(
			"a cut at each of the %d flash steps of either write: every next join accepted (DevNonces %d..%d, none twice), every next uplink decrypted (FCnt %d..%d, none twice)",
			rigs.NVMWriteSteps, nonces[0], nonces[len(nonces)-1], fCnts[0], fCnts[len(fCnts)-1]))
	}, SpecTimeout(3*time.Minute))
})

// lastAddr is the DevAddr of the newest data uplink on the air: on a rig of
// one board, the session the device holds now.
func lastAddr(rig *rigs.Rig) lorawan.DevAddr {
	GinkgoHelper()
	var addr lorawan.DevAddr
	for _, f := range rig.Captured() {
		if !f.Uplink {
			continue
		}
		var p lorawan.PHYPayload
		if p.UnmarshalBinary(f.PHYPayload) != nil || p.MHDR.MType != lorawan.UnconfirmedDataUp && p.MHDR.MType != lorawan.ConfirmedDataUp {
			continue
		}
		addr = p.MACPayload.(*lorawan.MACPayload).FHDR.DevAddr
	}
	return addr
}
