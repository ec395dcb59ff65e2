// Package lorawan_test is the LoRaWAN suite: a board provisioned over NFC
// joins, sends uplinks the network server decrypts, survives a factory reset
// and a re-provisioning, answers ST's AT command set on its serial console,
// and does not leak its AppKey there.
//
// Every console exchange goes through rigs/at over go.bug.st/serial — a
// real /dev/ttyACM* on a bench, the firmware twin's pty here — never an
// in-process shortcut. The rig file (TAP2JOIN_RIG, default rigs/emulated.yaml)
// decides what is real.
package lorawan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
	"github.com/tap2join/tap2join/suites/kit"
)

func TestLoRaWAN(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "LoRaWAN")
}

func loadRig() *rigs.File {
	GinkgoHelper()
	return kit.LoadRig()
}

// outDir is where air captures go: $TAP2JOIN_OUT, the run folder make
// emulate / make lab give the suites (reports/cmd/t2jrun), else — a suite run
// by hand — a fresh temporary folder of this process, never a shared one
// another run could be appending to (the report entry names it).
func outDir() string {
	if d := os.Getenv("TAP2JOIN_OUT"); d != "" {
		return d
	}
	adhocOutOnce.Do(func() {
		d, err := os.MkdirTemp("", "tap2join-out-")
		if err != nil {
			d = filepath.Join(os.TempDir(), fmt.Sprintf("tap2join-out-%d", os.Getpid()))
		}
		adhocOut = d
	})
	return adhocOut
}

var (
	adhocOutOnce sync.Once
	adhocOut     string
)

// upRig brings a rig up for the current spec: the air is captured to
// $TAP2JOIN_OUT/frames.jsonl (appended; reports/ charts it) and the EU868 duty
// cycle is enforced by delaying (modelled time). The console transcripts are attached to the
// report (redacted) when the spec ends.
func upRig(ctx context.Context, f *rigs.File) *rigs.Rig {
	GinkgoHelper()
	capture := filepath.Join(outDir(), "frames.jsonl")
	rig := kit.UpRig(ctx, f, rigs.Options{CapturePath: capture, DutyCycle: rigs.DutyCycleDelay})
	DeferCleanup(func() {
		frames := rig.Captured()
		var delayed time.Duration
		for _, fr := range frames {
			delayed += fr.DutyCycleDelay
		}
		AddReportEntry("air capture", fmt.Sprintf("%s: %d frames, %s held back by the duty cycle (modelled)", capture, len(frames), delayed))
	})
	return rig
}

// The report must never hold key material (named by KCV only if it does).
var _ = kit.NoKeysInReport()

// provision taps the board, registers it and waits for the join (the flow of
// suites/provisioning), recording the phases.
func provision(ctx context.Context, rig *rigs.Rig, b *rigs.Board) phone.Result {
	GinkgoHelper()
	res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
	Expect(err).NotTo(HaveOccurred(), "provision %s", b.Name)
	reports.Record(reports.Duration("tap to first uplink", b.Name, res.Total()))
	return res
}

// awaitEvent reads the console's events until one named name arrives (others
// are skipped) and returns it.
func awaitEvent(ctx context.Context, con at.Console, name string) at.Event {
	GinkgoHelper()
	seen := kit.AwaitEvents(ctx, con, 30*time.Second, "+EVT:"+name, kit.Named(name))
	return seen[len(seen)-1]
}

// awaitJoined waits for +EVT:JOINED, reads the board's DevAddr on the
// console and consumes the network server's join events up to the one with
// that DevAddr. A faithful LoRaWAN 1.0.4 STM32WL drops ChirpStack's first
// JoinAccept (JoinNonce 0 is not greater than its stored 0 — STM32CubeWL
// LoRaMacCrypto.c IsJoinNonce10xOk with USE_10X_JOIN_NONCE_COUNTER_CHECK=1;
// ChirpStack v4 storage/device_keys.rs starts join_nonce at 0; UNCONFIRMED
// on hardware), so the network may report
// a join the device never completed; those are counted in a report entry.
func awaitJoined(ctx context.Context, rig *rigs.Rig, b *rigs.Board, dev provproto.EUI64) lorawan.DevAddr {
	GinkgoHelper()
	return awaitJoinedOn(ctx, rig.Network, b, dev)
}

// awaitJoinedOn is awaitJoined with the join events of network server ns.
func awaitJoinedOn(ctx context.Context, ns lns.NetworkServer, b *rigs.Board, dev provproto.EUI64) lorawan.DevAddr {
	GinkgoHelper()
	awaitEvent(ctx, b.Console, "JOINED")
	lines, err := b.Console.Command(ctx, "AT+DADDR=?")
	Expect(err).NotTo(HaveOccurred())
	Expect(lines).To(HaveLen(1))
	var addr lorawan.DevAddr // printed as 26:0B:00:01 (STM32CubeWL lora_at.c AT_DevAddr_get)
	Expect(addr.UnmarshalText([]byte(strings.ReplaceAll(lines[0], ":", "")))).To(Succeed(), "AT+DADDR=? answered %q", lines[0])
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var uncompleted []lorawan.DevAddr
	for {
		ev, err := ns.AwaitJoin(wctx, lorawan.EUI64(dev))
		Expect(err).NotTo(HaveOccurred(), "no network join event with the board's DevAddr %s (skipped %v)", addr, uncompleted)
		if ev.DevAddr == addr {
			break
		}
		uncompleted = append(uncompleted, ev.DevAddr)
	}
	if len(uncompleted) > 0 {
		AddReportEntry("joins the device did not complete", fmt.Sprintf("%s: network join events for DevAddr %v preceded the device's join as %s",
			b.Name, uncompleted, addr))
	}
	return addr
}

// send runs AT+SEND, retrying while the MAC is busy (receive windows of the
// previous uplink): AT_BUSY_ERROR is ST's answer then (STM32CubeWL lora_at.c AT_Send). It
// returns when the board accepted the command.
func send(ctx context.Context, con at.Console, port uint8, confirmed bool, payload []byte) time.Time {
	GinkgoHelper()
	ack := 0
	if confirmed {
		ack = 1
	}
	cmd := fmt.Sprintf("AT+SEND=%d:%d:%X", port, ack, payload)
	Eventually(ctx, func() error {
		_, err := con.Command(ctx, cmd)
		if err != nil && !errors.Is(err, at.ErrBusy) {
			return StopTrying("AT+SEND failed").Wrap(err)
		}
		return err
	}).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
	return time.Now()
}

// keyLeak is the security check: it reads the root keys over the console
// and reports whether a printed value is the issued AppKey, compared by key
// check value only (the value itself is never printed or stored).
func keyLeak(ctx context.Context, con at.Console, kcv provproto.KCV) (leakedBy []string) {
	GinkgoHelper()
	for _, cmd := range []string{"AT+APPKEY=?", "AT+NWKKEY=?"} {
		lines, err := con.Command(ctx, cmd)
		if errors.Is(err, at.ErrAT) {
			continue // the firmware refuses the read: what we want
		}
		Expect(err).NotTo(HaveOccurred(), "%s", cmd)
		for _, l := range lines {
			if k, ok := at.ParseKey(l); ok && provproto.CheckValue(k) == kcv {
				leakedBy = append(leakedBy, cmd)
			}
		}
	}
	return leakedBy
}
