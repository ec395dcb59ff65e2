package radio

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

// mixedFrames returns n uplinks of mixed SFs, powers and channels at
// random starts, dense enough to collide, capture and run out of
// demodulators.
func mixedFrames(tb testing.TB, n int, seed uint64) (frames []Frame, starts []time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 0))
	var at time.Duration
	for i := range n {
		f := Frame{Uplink: true, Frequency: 868100000 + uint32(rng.IntN(3))*200000, SF: 7 + rng.IntN(6), Bandwidth: 125,
			PHYPayload: make([]byte, 23), RSSI: -120 + 50*rng.Float64(), SNR: 5, Sender: fmt.Sprintf("dev%d", i)}
		at += time.Duration(rng.ExpFloat64() * float64(250*time.Millisecond))
		frames = append(frames, f)
		starts = append(starts, at)
	}
	return frames, starts
}

// A Medium driven by events gives every frame the verdict an Air on
// virtual time gives it, and counts the same.
func TestMediumMatchesAir(t *testing.T) {
	const n, demods = 3000, 3
	frames, starts := mixedFrames(t, n, 7)

	var viaAir []Frame
	var airStats CollisionStats
	synctest.Test(t, func(t *testing.T) {
		air := NewAir(timing.NewClock(timing.Realistic))
		air.SetCollisions(Collisions{Enabled: true, Demodulators: demods})
		gw, stop := air.Listen(true)
		defer stop()
		viaAir = make([]Frame, n)
		begin := time.Now()
		var wg sync.WaitGroup
		for i, f := range frames {
			wg.Go(func() {
				time.Sleep(time.Until(begin.Add(starts[i])))
				sent, err := air.Send(context.Background(), f)
				if err != nil {
					t.Error(err)
				}
				viaAir[i] = sent
			})
		}
		wg.Wait()
		airStats = air.CollisionStats()
		heard := drain(gw)
		for _, f := range viaAir {
			if want := f.Collision != CollisionLost && f.NoDemodulator == 0; heard[f.Sender] != want {
				t.Errorf("%s: gateway heard it %v, verdict %q, no demodulator %d", f.Sender, heard[f.Sender], f.Collision, f.NoDemodulator)
			}
		}
	})

	// The same frames as events: ends before begins at one instant (either
	// order gives the same verdicts; see Medium).
	type event struct {
		at  time.Duration
		end bool
		i   int
	}
	var events []event
	for i, f := range frames {
		d := mustAirtime(t, f)
		events = append(events, event{starts[i], false, i}, event{starts[i] + d, true, i})
	}
	slices.SortStableFunc(events, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		if a.end != b.end {
			if a.end {
				return -1
			}
			return 1
		}
		return 0
	})
	m := NewMedium(Collisions{Demodulators: demods}, 1)
	epoch := time.Unix(0, 0)
	txs := make([]*Transmission, n)
	for _, e := range events {
		if !e.end {
			tx, err := m.Begin(epoch.Add(e.at), frames[e.i])
			if err != nil {
				t.Fatal(err)
			}
			txs[e.i] = tx
			continue
		}
		f, heard := m.End(txs[e.i])
		a := viaAir[e.i]
		if f.Collision != a.Collision || f.NoDemodulator != a.NoDemodulator || f.Airtime != a.Airtime {
			t.Errorf("%s: medium %q/%d/%v, air %q/%d/%v", f.Sender, f.Collision, f.NoDemodulator, f.Airtime, a.Collision, a.NoDemodulator, a.Airtime)
		}
		if want := a.Collision != CollisionLost && a.NoDemodulator == 0; heard[0] != want {
			t.Errorf("%s: medium says heard=%v", f.Sender, heard[0])
		}
	}
	st := m.Stats()
	if st.Total != airStats.Total || len(st.BySF) != len(airStats.BySF) {
		t.Errorf("medium counted %+v, the air %+v", st.Total, airStats.Total)
	}
	for sf, c := range airStats.BySF {
		if st.BySF[sf] != c {
			t.Errorf("SF%d: medium %+v, air %+v", sf, st.BySF[sf], c)
		}
	}
	if st.Total.Collided == 0 || st.Total.Captured == 0 || st.Total.NoDemodulator == 0 {
		t.Errorf("the frames exercise too little of the model: %+v", st.Total)
	}
	t.Logf("%d frames: %+v", n, st.Total)

	if _, err := m.Begin(epoch, Frame{Frequency: 869525000, SF: 12, Bandwidth: 125}); err == nil {
		t.Error("a downlink was accepted")
	}
}
