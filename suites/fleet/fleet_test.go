package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/reports"
	"github.com/tap2join/tap2join/reports/progress"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/phone"
)

// fleetFile loads the rig and replaces its boards by n copies of the first
// one. proc (the Ginkgo parallel process, 1-based) and batch (the fleet
// within the process) go into every unique id, so no two fleets — in one
// process or across `ginkgo -p` processes — share a DevEUI:
// 0080E115 pp bb nnnn.
func fleetFile(n, proc, batch int) (*rigs.File, error) {
	f, err := rigs.LoadFromEnv() // the rig whose first board the fleet replicates
	if err != nil {
		return nil, err
	}
	if err := f.Boards[0].Replicable(); err != nil { // Load made sure there is one
		return nil, fmt.Errorf("fleet: rig %s: %w", f.Path, err)
	}
	if proc < 1 || proc > 0xFF || batch < 0 || batch > 0xFF || n > 0xFFFF {
		return nil, fmt.Errorf("fleet: process %d, batch %d or %d boards out of the id space", proc, batch, n)
	}
	tmpl := f.Boards[0]
	f.Boards = make([]rigs.BoardSpec, n)
	for i := range n {
		b := tmpl
		b.Name = fmt.Sprintf("fleet-p%d-b%d-%d", proc, batch, i+1)
		b.UniqueID = fmt.Sprintf("0080E115%02X%02X%04X", proc, batch, i+1)
		f.Boards[i] = b
	}
	return f, nil
}

// withEvents sets how the fleet's network encodes its events (events ""
// leaves the rig file's choice). Only the rig's own server takes it: an
// external one publishes as it is configured.
func withEvents(f *rigs.File, events string) error {
	if events == "" {
		return nil
	}
	if f.Network.Kind == "external" {
		return fmt.Errorf("fleet: rig %s: network.events %s is for the rig's own server, not an external one", f.Path, events)
	}
	f.Network.Events = events
	return nil
}

// fleetStats is one fleet run.
type fleetStats struct {
	N        int
	Wall     time.Duration // first tap to last join
	Latency  []time.Duration
	Phases   map[string][]time.Duration // per phase, every board
	DevAddrs map[string]lorawan.DevAddr // board → DevAddr
	DevEUIs  map[string]lorawan.EUI64   // board → DevEUI, of the boards that joined
	// Uplinks and Downlinks count the LoRa frames on the air. Without
	// retries a device sends 3 uplinks: two JoinRequests (LoRaMac-node 1.0.x
	// drops ChirpStack's first JoinAccept, JoinNonce 0) and its first data
	// uplink; it hears 2 JoinAccepts.
	Uplinks, Downlinks int
	// JoinedAt is, per board that joined, the time from the fleet's first
	// tap to the network's join event (its tap's offset + its phases
	// through "join").
	JoinedAt []time.Duration
	// JoinRequests is, per board, how many JoinRequests the air carried
	// from its DevEUI.
	JoinRequests []int
}

// Report is the fleet as the HTML report plots it (reports.Fleet).
func (s fleetStats) Report(name string) reports.Fleet {
	f := reports.Fleet{Name: name, Devices: s.N, JoinRequests: s.JoinRequests}
	for _, d := range s.JoinedAt {
		f.JoinedMS = append(f.JoinedMS, ms(d))
	}
	return f
}

// DevicesPerSecond is the fleet's provisioning rate.
func (s fleetStats) DevicesPerSecond() float64 { return float64(s.N) / s.Wall.Seconds() }

// Percentile returns the p-th percentile (nearest rank) of tap → join.
func (s fleetStats) Percentile(p float64) time.Duration { return percentile(s.Latency, p) }

func percentile(d []time.Duration, p float64) time.Duration {
	l := slices.Clone(d)
	slices.Sort(l)
	i := int(p/100*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// fleetGCPercent is the garbage collector's target while a fleet runs
// (GOGC 300 instead of 100), unless $GOGC is set. A fleet's live heap is
// its devices in flight — every board's twins, flow, sessions and queued
// frames, and their goroutines' stacks — and at GOGC 100 the collector
// marked all of it again each time the fleet allocated as much: at
// N=10,000 a quarter of the fleet's CPU went to marking, and the rate
// fell behind N=100's. At 300 the collector runs a third as often and the
// heap may hold up to four times the live data; measured, N=10,000 went
// from 7.9–11.3 s to 6.2–8.7 s (interleaved runs on the 2-core runner,
// 2026-12-07; README, "fleets"). 600 gained nothing more and slowed the
// fleets of 100.
const fleetGCPercent = 300

// fleetGCs counts the fleets running in this process, and fleetGCWas is
// the target to restore when the last one ends (fleets may overlap: two
// specs of a parallel container, a benchmark beside a spec).
var (
	fleetGCMu  sync.Mutex
	fleetGCs   int
	fleetGCWas int
)

// fleetGC sets the collector's target for a fleet and returns what
// restores it once no fleet runs.
func fleetGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set { // the user's choice stands
		return func() {}
	}
	fleetGCMu.Lock()
	defer fleetGCMu.Unlock()
	if fleetGCs == 0 {
		fleetGCWas = debug.SetGCPercent(fleetGCPercent)
	}
	fleetGCs++
	return sync.OnceFunc(func() {
		fleetGCMu.Lock()
		defer fleetGCMu.Unlock()
		if fleetGCs--; fleetGCs == 0 {
			debug.SetGCPercent(fleetGCWas)
		}
	})
}

// provisionFleet taps every board of rig at once and waits for all joins.
// Each board's flow is the suite's usual one (phone.Provision): NDEF
// identity, mailbox identity, HTTPS registration, PROVISION + ACK, join.
func provisionFleet(ctx context.Context, rig *rigs.Rig) (fleetStats, error) {
	defer fleetGC()()
	st := fleetStats{N: len(rig.Boards), Latency: make([]time.Duration, len(rig.Boards)), DevAddrs: map[string]lorawan.DevAddr{}, DevEUIs: map[string]lorawan.EUI64{}, Phases: map[string][]time.Duration{}}
	devEUIs := make([]lorawan.EUI64, len(rig.Boards))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	joined := progress.NewCounter(fmt.Sprintf("fleet of %d: tap → first uplink", st.N), st.N, "devices", nil)
	for i, b := range rig.Boards {
		wg.Go(func() {
			tapped := time.Since(start)
			res, err := b.Phone.Provision(ctx, rig.Region, rig.Joins())
			joined.Add(1) // failed ones too: the count is of boards done
			mu.Lock()
			defer mu.Unlock()
			devEUIs[i] = lorawan.EUI64(res.DevEUI) // known from the identity phase on, failed or not
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.Name, err))
				return
			}
			st.Latency[i] = res.Total()
			at := tapped
			for _, t := range res.Timings {
				st.Phases[t.Phase] = append(st.Phases[t.Phase], t.Wall)
				at += t.Wall
				if t.Phase == phone.PhaseJoin {
					st.JoinedAt = append(st.JoinedAt, at)
				}
			}
			st.DevAddrs[b.Name] = res.DevAddr
			st.DevEUIs[b.Name] = lorawan.EUI64(res.DevEUI)
		})
	}
	wg.Wait()
	st.Wall = time.Since(start)
	joinReqs := map[lorawan.EUI64]int{}
	for _, f := range rig.Captured() {
		if !f.Uplink {
			st.Downlinks++
			continue
		}
		st.Uplinks++
		var phy lorawan.PHYPayload
		if phy.UnmarshalBinary(f.PHYPayload) != nil || phy.MHDR.MType != lorawan.JoinRequest {
			continue
		}
		if jr, ok := phy.MACPayload.(*lorawan.JoinRequestPayload); ok {
			joinReqs[jr.DevEUI]++
		}
	}
	st.JoinRequests = make([]int, st.N)
	for i, eui := range devEUIs {
		st.JoinRequests[i] = joinReqs[eui]
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("fleet: %d of %d boards failed: %w", len(errs), st.N, errors.Join(errs[:min(len(errs), 5)]...))
	}
	return st, nil
}
