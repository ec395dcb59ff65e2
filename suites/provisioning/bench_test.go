package provisioning_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/phone"
)

// BenchmarkTapToJoin measures one emulated device from the tap (NDEF read) to
// the network server's join event: identity over the FTM mailbox, HTTPS
// registration with the key issued and set in the embedded ChirpStack, the
// PROVISION write and ACK, the OTAA join over the emulated air and gateway
// MQTT, and the integration event back to the suite. timing: instant, so
// modelled durations (RF bit times, EEPROM writes, airtime, RX1 delay) are
// reported by the emulators but not slept.
//
// Each iteration taps a fresh board (b.N boards are brought up beforehand,
// outside the timer). Besides ns/op it reports ms-median-join-event (tap to
// the server's join event, the figure) and ms-median (tap to the
// device's first uplink decrypted by the server, which includes the faithful
// drop of ChirpStack's JoinNonce-0 JoinAccept and the second join).
//
//	go test -run '^$' -bench TapToJoin -benchtime 200x ./suites/provisioning
func BenchmarkTapToJoin(b *testing.B) {
	p, err := rigs.Find("rigs/emulated.yaml")
	if err != nil {
		b.Fatal(err)
	}
	f, err := rigs.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	if f.Timing != "instant" || f.Network.Kind != "embedded" {
		b.Fatalf("rig %s: want timing instant and the embedded network server", p)
	}
	tmpl := f.Boards[0]
	f.Boards = nil
	for i := range b.N {
		bs := tmpl
		bs.Name = fmt.Sprintf("bench-%d", i)
		bs.UniqueID = fmt.Sprintf("0080E115%08X", 0x100000+i)
		f.Boards = append(f.Boards, bs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rig, err := rigs.Up(ctx, f, rigs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer rig.Close()
	per := make([]time.Duration, 0, b.N)
	toJoin := make([]time.Duration, 0, b.N)
	toKept := make([]time.Duration, 0, b.N)
	phases := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		res, err := rig.Boards[i].Phone.Provision(ctx, rig.Region, rig.Joins())
		if err != nil {
			b.Fatalf("board %d: %v", i, err)
		}
		per = append(per, time.Since(start))
		var j time.Duration
		for _, t := range res.Timings {
			phases[t.Phase] = append(phases[t.Phase], t.Wall)
			if t.Phase != phone.PhaseUplink {
				j += t.Wall
			}
		}
		toJoin = append(toJoin, j)
		toKept = append(toKept, keptJoin(ctx, b, rig, res, start, j))
	}
	b.StopTimer()
	b.ReportMetric(median(per), "ms-median")
	b.ReportMetric(median(toJoin), "ms-median-first-join-event")
	b.ReportMetric(median(toKept), "ms-median-kept-join")
	slices.Sort(per)
	b.ReportMetric(ms(per[len(per)*9/10]), "ms-p90")
	// Where the time goes, per phase (medians), to find latency that hides.
	for ph, d := range phases {
		b.ReportMetric(median(d), "ms-"+strings.ReplaceAll(ph, " ", "-"))
	}
}

// keptJoin is the time from tap to the join the device kept: the network's
// join event whose DevAddr the device's first uplink carries. ChirpStack's
// first JoinAccept (JoinNonce 0) is dropped by a LoRaWAN 1.0.4 device, so the
// first join event is often not that one; the flow consumed the first, later
// ones wait in the client's queue. firstJoin is the tap → first join event.
func keptJoin(ctx context.Context, b *testing.B, rig *rigs.Rig, res phone.Result, start time.Time, firstJoin time.Duration) time.Duration {
	b.Helper()
	for {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		ev, err := rig.Network.AwaitJoin(wctx, lorawan.EUI64(res.DevEUI))
		cancel()
		if err != nil {
			return firstJoin // no later join: the device kept the first
		}
		if ev.DevAddr == res.DevAddr {
			return ev.Time.Sub(start)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return ms(s[len(s)/2])
}
