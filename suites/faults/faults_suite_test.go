// Package faults_test is the fault suite of the release gate: every fault a
// bench can meet — the phone lifted mid-write, corrupted and replayed
// messages, wrong passwords, an MCU that does not read its mailbox, a serial
// port that vanishes, a broker or network server restarting, a container
// crashing, the gateway gone, the power cut during an NVM write — must end in
// a defined state with nothing lost. Each spec says which in a report entry
// "outcome: <fault>" (the end state: "old key kept", "retried and joined",
// "REPLAY rejected, device unchanged", …).
//
// Faults are injected through the rig's capabilities (rigs/capabilities.go,
// asked for with kit.Need): a bench that lacks one skips the spec, saying
// why. Keys never appear in
// the report: the specs compare key check values only.
//
// Wall clock: about 3 s on instant timing — the broker restart waits for
// paho's 1 s reconnect back-off; the NVM power-loss loop brings a rig up twice
// per flash step (67 rigs, < 1 s). The container crash (needs:docker) adds
// the stack's start (2–10 s).
package faults_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
	"github.com/tap2join/tap2join/fixtures/provisioning"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Faults")
}

// loadRig reads the rig file with its first board only, its firmware
// printing keys on AT+APPKEY=? (where the rig can build it so) so a spec can
// compare them by KCV; elsewhere keyKCVs says it cannot read them.
func loadRig() *rigs.File {
	GinkgoHelper()
	f := kit.LoadRig()
	f.Boards = f.Boards[:1]
	if f.Boards[0].FirmwareFaults() == nil {
		f.Boards[0].Faults.KeyReadBack = true
	}
	return f
}

// rxCap bounds an emulated receive window without a gateway to end it, so
// a join nobody answers fails in wall-clock milliseconds.
const rxCap = 100 * time.Millisecond

// upRig brings f up for the current spec (kit.UpRig) and waits until every
// board's mailbox is on.
func upRig(ctx context.Context, f *rigs.File, opts rigs.Options) *rigs.Rig {
	GinkgoHelper()
	if opts.RXWindowCap == 0 {
		opts.RXWindowCap = rxCap
	}
	rig := kit.UpRig(ctx, f, opts)
	for _, b := range rig.Boards {
		kit.AwaitMailbox(ctx, b)
	}
	return rig
}

// outcome records the defined end state a fault reached.
func outcome(fault, state string) {
	AddReportEntry("outcome: "+fault, state)
}

// The report must never hold key material (named by KCV only if it does).
var _ = kit.NoKeysInReport()

// backend is the app's registration through the rig's HTTPS backend; it
// keeps the last issued keys, as the app does until the key is written.
type backend struct {
	c    *provisioning.Client
	last provapi.Issued
}

func (b *backend) RegisterClear(ctx context.Context, req provapi.ClearRequest) (provapi.Issued, error) {
	iss, err := b.c.RegisterClear(ctx, req)
	if err != nil {
		return provapi.Issued{}, err
	}
	b.last = iss
	return iss, nil
}

// provision runs the whole flow on board b through tag (the board's own
// when nil), its registration kept by the returned backend, and expects it
// to succeed: the provisioned, joined board most fault specs start from.
func provision(ctx context.Context, rig *rigs.Rig, b *rigs.Board, tag phone.Tag) (*backend, phone.Result) {
	GinkgoHelper()
	if tag == nil {
		tag = phone.NFCTag(b.Tag)
	}
	be := &backend{c: rig.Backend}
	res, err := phone.New(tag, be, b.PhoneOptions(phone.Options{})).Provision(ctx, rig.Region, rig.Joins())
	Expect(err).NotTo(HaveOccurred(), "provisioning %s", b.Name)
	return be, res
}

// Confirm tells the backend the device holds a re-provisioning key (the
// app's last step of a re-provisioning).
func (b *backend) Confirm(ctx context.Context, dev provproto.EUI64, kcv provproto.KCV) error {
	return b.c.Confirm(ctx, dev, kcv)
}

func kcvOf(iss provapi.Issued) provproto.KCV { return provproto.CheckValue(iss.Keys.AppKey) }

// tapTag is the phone's tag with a hand on it: before and after each
// Write Message it may act (lift the phone), and it keeps every PROVISION
// frame written (for replays).
type tapTag struct {
	phone.Tag
	before, after func(msg []byte)
	provisions    [][]byte
}

// isProvision says whether a mailbox message carries a PROVISION: a
// tap2join frame (SPEC.md §2: version, type, …) or, over ST25FTM (§8), the
// first packet of a TAP2JOIN command whose frame is one.
func isProvision(msg []byte) bool {
	f := requestFrame(msg)
	return len(f) >= 2 && provproto.Type(f[1]) == provproto.TypeProvision
}

// requestFrame is the tap2join frame a mailbox message starts: the message
// itself, or the frame inside an ST25FTM packet opening a TAP2JOIN command
// (all of it when the command is one packet, as a PROVISION is).
func requestFrame(msg []byte) []byte {
	if len(msg) >= 2 && provproto.Type(msg[1]) == provproto.TypeProvision {
		return msg
	}
	p, err := st25ftm.Parse(msg)
	if err != nil || p.Ctrl.Position != st25ftm.Single && p.Ctrl.Position != st25ftm.First {
		return msg
	}
	if len(p.Data) < 1 || p.Data[0] != provproto.FTMRequest {
		return msg
	}
	return p.Data[1:]
}

func (t *tapTag) WriteMessage(ctx context.Context, msg []byte) error {
	if isProvision(msg) {
		t.provisions = append(t.provisions, append([]byte(nil), requestFrame(msg)...))
	}
	if t.before != nil {
		t.before(msg)
	}
	err := t.Tag.WriteMessage(ctx, msg)
	if err == nil && t.after != nil {
		t.after(msg)
	}
	return err
}

// keyKCVs reads the device's keys on its console (AT+NWKKEY=?, the LoRaWAN
// 1.0.x root key it joins with, and AT+APPKEY=?) and returns their check
// values; the keys themselves never leave this function. ok is false for a
// board without a console or whose firmware refuses to print keys (AT_ERROR:
// ST's KEY_EXTRACTABLE 0 build, every real release firmware).
func keyKCVs(ctx context.Context, b *rigs.Board) (root, app provproto.KCV, ok bool) {
	GinkgoHelper()
	read := func(cmd string) (provproto.KCV, bool) {
		lines, err := b.Console.Command(ctx, cmd)
		if errors.Is(err, at.ErrNoConsole) || errors.Is(err, at.ErrAT) {
			return provproto.KCV{}, false
		}
		Expect(err).NotTo(HaveOccurred(), "%s on %s", cmd, b.Name)
		// The key is the last line (banner lines of a boot the console saw
		// late may come first). Lines are never put in a failure message.
		var kcvs []provproto.KCV
		for _, l := range lines {
			if k, parsed := at.ParseKey(l); parsed {
				kcvs = append(kcvs, provproto.CheckValue(k))
			}
		}
		Expect(kcvs).NotTo(BeEmpty(), "%s prints a 16-byte key (%d lines)", cmd, len(lines))
		return kcvs[len(kcvs)-1], true
	}
	root, ok = read("AT+NWKKEY=?")
	if !ok {
		return root, app, false
	}
	app, _ = read("AT+APPKEY=?")
	return root, app, true
}

// deviceState reads the device's provisioning state over the mailbox.
func deviceState(ctx context.Context, b *rigs.Board) provproto.Identity {
	GinkgoHelper()
	id, err := b.Phone.Identity(ctx)
	Expect(err).NotTo(HaveOccurred(), "IDENTITY of %s", b.Name)
	return id
}

// awaitEvents reads console events until want (described by what) returns
// true for one; a decisive event it does not tolerate ends it (kit.AwaitEvents).
func awaitEvents(ctx context.Context, con at.Console, what string, want func(at.Event) bool, tolerate ...string) []at.Event {
	GinkgoHelper()
	return kit.AwaitEvents(ctx, con, 20*time.Second, what, want, tolerate...)
}

func readFile(p string) []byte {
	GinkgoHelper()
	b, err := os.ReadFile(p)
	Expect(err).NotTo(HaveOccurred())
	return b
}

func writeFile(p string, b []byte) {
	GinkgoHelper()
	Expect(os.WriteFile(p, b, 0o600)).To(Succeed())
}
