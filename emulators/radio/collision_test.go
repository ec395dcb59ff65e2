package radio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

const testChannel = 868100000

// uplink is a 10-byte uplink on testChannel from sender.
func uplink(sender string, sf int) Frame {
	return Frame{Uplink: true, Frequency: testChannel, SF: sf, Bandwidth: 125, PHYPayload: make([]byte, 10), Sender: sender}
}

// sendAt sends f after delay (virtual time in a synctest bubble) and stores
// what Send returned in *out.
func sendAt(t *testing.T, wg *sync.WaitGroup, air *Air, delay time.Duration, f Frame, out *Frame) {
	t.Helper()
	wg.Go(func() {
		time.Sleep(delay)
		sent, err := air.Send(context.Background(), f)
		if err != nil {
			t.Errorf("send %s: %v", f.Sender, err)
		}
		*out = sent
	})
}

// drain returns the senders of the frames queued on ch.
func drain(ch <-chan Frame) map[string]bool {
	got := map[string]bool{}
	for {
		select {
		case f := <-ch:
			got[f.Sender] = true
		default:
			return got
		}
	}
}

func mustAirtime(t testing.TB, f Frame) time.Duration {
	t.Helper()
	d, err := Airtime(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Two uplinks overlap (b starts 10 ms after a, unless said otherwise): the
// capture threshold for one SF, the GoursaudSIR table across SFs.
func TestCollisionTwoFrames(t *testing.T) {
	const atEndOfA = -1 // offset: b starts the instant a ends
	for _, tc := range []struct {
		name           string
		sfA, sfB       int
		rssiA, rssiB   float64 // dBm at the gateway
		freqB          uint32  // 0: a's channel
		offset         time.Duration
		verdA, verdB   string
		heardA, heardB bool
	}{
		{"same SF, equal power: both lost", 7, 7, -80, -80, 0, 10 * time.Millisecond, CollisionLost, CollisionLost, false, false},
		{"same SF, a 7 dB stronger: a captures", 7, 7, -73, -80, 0, 10 * time.Millisecond, CollisionCaptured, CollisionLost, true, false},
		{"same SF, a 6 dB stronger (the threshold): a captures", 9, 9, -74, -80, 0, 10 * time.Millisecond, CollisionCaptured, CollisionLost, true, false},
		{"same SF, a 5 dB stronger: both lost", 7, 7, -75, -80, 0, 10 * time.Millisecond, CollisionLost, CollisionLost, false, false},
		{"same SF, same start, b 7 dB stronger: b captures", 12, 12, -87, -80, 0, 0, CollisionLost, CollisionCaptured, false, true},
		// GoursaudSIR[0][5] = −20 (SF7 vs SF12), [5][0] = −36 (SF12 vs SF7).
		{"SF7 and SF12, the SF12 interferer 10 dB stronger: both survive", 7, 12, -90, -80, 0, 10 * time.Millisecond, CollisionCaptured, CollisionCaptured, true, true},
		{"SF7 and SF12, the SF12 interferer 21 dB stronger: SF7 lost", 7, 12, -101, -80, 0, 10 * time.Millisecond, CollisionLost, CollisionCaptured, false, true},
		{"SF12 and SF7, the SF7 interferer 36 dB stronger: both survive", 12, 7, -116, -80, 0, 10 * time.Millisecond, CollisionCaptured, CollisionCaptured, true, true},
		{"SF12 and SF7, the SF7 interferer 37 dB stronger: SF12 lost", 12, 7, -117, -80, 0, 10 * time.Millisecond, CollisionLost, CollisionCaptured, false, true},
		{"no overlap: b starts as a ends", 7, 7, -80, -80, 0, atEndOfA, "", "", true, true},
		{"other channel", 7, 7, -80, -80, 868300000, 10 * time.Millisecond, "", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				air := NewAir(timing.NewClock(timing.Realistic))
				air.SetCollisions(Collisions{Enabled: true})
				var capture bytes.Buffer
				stopCapture := air.CaptureTo(&capture, CaptureOptions{})
				gw, stop := air.ListenGateway()
				defer stop()
				// a's power comes from its link budget, b's from the frame.
				air.SetLinkBudget("a", tc.rssiA, 5)
				fa, fb := uplink("a", tc.sfA), uplink("b", tc.sfB)
				fb.RSSI, fb.SNR = tc.rssiB, 5
				if tc.freqB != 0 {
					fb.Frequency = tc.freqB
				}
				offset := tc.offset
				if offset == atEndOfA {
					offset = mustAirtime(t, fa)
				}
				var wg sync.WaitGroup
				var sentA, sentB Frame
				sendAt(t, &wg, air, 0, fa, &sentA)
				sendAt(t, &wg, air, offset, fb, &sentB)
				wg.Wait()

				if sentA.RSSI != tc.rssiA {
					t.Errorf("a's RSSI %v, want its link budget %v", sentA.RSSI, tc.rssiA)
				}
				if sentA.Collision != tc.verdA || sentB.Collision != tc.verdB {
					t.Errorf("verdicts a=%q b=%q, want %q %q", sentA.Collision, sentB.Collision, tc.verdA, tc.verdB)
				}
				heard := drain(gw)
				if heard["a"] != tc.heardA || heard["b"] != tc.heardB {
					t.Errorf("gateway heard %v, want a=%v b=%v", heard, tc.heardA, tc.heardB)
				}
				lost, captured := 0, 0
				for _, v := range []string{tc.verdA, tc.verdB} {
					switch v {
					case CollisionLost:
						lost++
					case CollisionCaptured:
						captured++
					}
				}
				st := air.CollisionStats()
				if st.Total != (CollisionCounts{Uplinks: 2, Collided: lost, Captured: captured}) {
					t.Errorf("stats %+v, want %d judged, %d lost, %d captured", st.Total, 2, lost, captured)
				}
				if bySF := st.BySF[tc.sfA].Uplinks + st.BySF[tc.sfB].Uplinks; tc.sfA != tc.sfB && bySF != 2 {
					t.Errorf("per-SF stats %+v", st.BySF)
				}
				if err := stopCapture(); err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(strings.TrimSpace(capture.String()), "\n") {
					var r CaptureRecord
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatal(err)
					}
					want := map[string]string{"a": tc.verdA, "b": tc.verdB}[r.Sender]
					if r.Collision != want {
						t.Errorf("capture of %s says collision=%q, want %q", r.Sender, r.Collision, want)
					}
				}
			})
		})
	}
}

// Nine SF12 frames on nine channels begin 1 ms apart — all overlap, none
// interferes — and a tenth begins, on the first one's channel, the instant
// the first ends. A gateway with 8 demodulators misses the ninth; the tenth
// finds a demodulator free again.
func TestGatewayDemodulators(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		airDemods, gwDemods    int
		wantHeard              int
		wantMissing            []string
		wantNoDemodulatorTotal int
	}{
		{"SX1301/SX1302 default: the 9th concurrent frame is lost", 0, 0, 9, []string{"dev8"}, 1},
		{"16 on this gateway (SetDemodulators)", 0, 16, 10, nil, 0},
		{"2 per gateway on this air", 2, 0, 3, []string{"dev2", "dev3", "dev4", "dev5", "dev6", "dev7", "dev8"}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				air := NewAir(timing.NewClock(timing.Realistic))
				air.SetCollisions(Collisions{Enabled: true, Demodulators: tc.airDemods})
				gw, stop := air.Listen(true)
				defer stop()
				air.SetDemodulators(gw, tc.gwDemods)
				sent := make([]Frame, 10)
				var wg sync.WaitGroup
				for i := range 9 {
					f := uplink(fmt.Sprintf("dev%d", i), 12)
					f.Frequency = 867100000 + uint32(i)*200000
					sendAt(t, &wg, air, time.Duration(i)*time.Millisecond, f, &sent[i])
				}
				f := uplink("dev9", 12)
				f.Frequency = 867100000
				sendAt(t, &wg, air, mustAirtime(t, f), f, &sent[9])
				wg.Wait()

				heard := drain(gw)
				if len(heard) != tc.wantHeard {
					t.Errorf("gateway heard %d frames (%v), want %d", len(heard), heard, tc.wantHeard)
				}
				for _, m := range tc.wantMissing {
					if heard[m] {
						t.Errorf("gateway heard %s", m)
					}
				}
				st := air.CollisionStats()
				if st.Total != (CollisionCounts{Uplinks: 10, NoDemodulator: tc.wantNoDemodulatorTotal}) {
					t.Errorf("stats %+v", st.Total)
				}
				if st.BySF[12] != st.Total || len(st.BySF) != 1 {
					t.Errorf("per-SF stats %+v", st.BySF)
				}
				for _, f := range sent {
					if f.Collision != "" {
						t.Errorf("%s: verdict %q, want none (nothing on its channel overlapped it)", f.Sender, f.Collision)
					}
				}
			})
		})
	}
}

// Without the option — or in Instant timing, where no time passes — every
// frame is delivered, overlapping or not, as the air always did.
func TestCollisionsOffDeliverEverything(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode timing.Mode
		set  *Collisions
	}{
		{"default air, realistic timing", timing.Realistic, nil},
		{"model disabled", timing.Realistic, &Collisions{Demodulators: 1}},
		{"model on, instant timing", timing.Instant, &Collisions{Enabled: true, Demodulators: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				air := NewAir(timing.NewClock(tc.mode))
				if tc.set != nil {
					air.SetCollisions(*tc.set)
				}
				gw, stop := air.Listen(true)
				defer stop()
				sent := make([]Frame, 12)
				var wg sync.WaitGroup
				for i := range sent { // same channel, SF and power, 1 ms apart
					sendAt(t, &wg, air, time.Duration(i)*time.Millisecond, uplink(fmt.Sprintf("dev%d", i), 7), &sent[i])
				}
				wg.Wait()
				if heard := drain(gw); len(heard) != len(sent) {
					t.Errorf("gateway heard %d of %d frames", len(heard), len(sent))
				}
				for _, f := range sent {
					if f.Collision != "" || f.NoDemodulator != 0 {
						t.Errorf("%s judged: %q, %d", f.Sender, f.Collision, f.NoDemodulator)
					}
				}
				if st := air.CollisionStats(); st.Total != (CollisionCounts{}) {
					t.Errorf("stats %+v", st.Total)
				}
			})
		})
	}
}

// alohaTolerance is the relative tolerance on S: with alohaFrames frames
// the relative standard error of the measured success ratio e^(−2G) is
// √((1−p)/(n·p)), 1.8 % at G = 1 (p = 0.135), so ±10 % is 5.6 standard
// errors at the worst load tested, whatever the seed.
const (
	alohaFrames    = 20000
	alohaTolerance = 0.10
)

var alohaLoads = []float64{0.1, 0.25, 0.5, 1.0}

// alohaResult is one pure-ALOHA run: offered load G and throughput S, both
// in frames per frame time, measured over the run.
type alohaResult struct {
	G, S      float64
	delivered int
}

// theory is pure ALOHA's throughput at the measured load (Abramson 1970:
// a frame succeeds when no other starts within one frame time before or
// after its start, probability e^(−2G) for Poisson arrivals).
func (r alohaResult) theory() float64 { return r.G * math.Exp(-2*r.G) }

// poissonStarts returns n start offsets of a Poisson process of rate g per
// frame time T (exponential gaps of mean T/g), from rng.
func poissonStarts(rng *rand.Rand, n int, g float64, T time.Duration) []time.Duration {
	starts := make([]time.Duration, n)
	var at time.Duration
	for i := range starts {
		at += time.Duration(rng.ExpFloat64() * float64(T) / g)
		starts[i] = at
	}
	return starts
}

// runALOHA puts alohaFrames uplinks — one channel, SF7, equal power, so no
// capture — on a collision-modelling air at Poisson starts of load g, each
// from its own transmitter (an infinite population, as pure ALOHA
// assumes). It must run in a synctest bubble.
func runALOHA(t *testing.T, g float64, seed uint64) alohaResult {
	air := NewAir(timing.NewClock(timing.Realistic))
	air.SetCollisions(Collisions{Enabled: true})
	gw, stop := air.ListenGateway()
	received := make(chan int)
	go func() {
		n := 0
		for range gw {
			n++
		}
		received <- n
	}()
	frame := uplink("", 7)
	T := mustAirtime(t, frame)
	starts := poissonStarts(rand.New(rand.NewPCG(seed, math.Float64bits(g))), alohaFrames, g, T)
	begin := time.Now()
	var wg sync.WaitGroup
	for i, at := range starts {
		time.Sleep(time.Until(begin.Add(at)))
		f := frame
		f.Sender = fmt.Sprintf("dev%d", i)
		wg.Go(func() {
			if _, err := air.Send(context.Background(), f); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin) // until the last frame's end
	stop()
	delivered := <-received
	st := air.CollisionStats().Total
	if st.Uplinks != alohaFrames || delivered != st.Uplinks-st.Collided || st.Captured != 0 {
		t.Errorf("G=%v: stats %+v, delivered %d", g, st, delivered)
	}
	frames := float64(elapsed) / float64(T)
	return alohaResult{G: alohaFrames / frames, S: float64(delivered) / frames, delivered: delivered}
}

// Pure ALOHA on virtual time: the measured throughput S matches
// S = G·e^(−2G) within alohaTolerance at each offered load G.
func TestPureALOHAThroughput(t *testing.T) {
	for _, g := range alohaLoads {
		t.Run(fmt.Sprintf("G=%.2f", g), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := runALOHA(t, g, 1)
				want := r.theory()
				t.Logf("offered G=%.4f (target %.2f): S=%.4f, G·e^(−2G)=%.4f (%+.1f %%), %d of %d frames delivered",
					r.G, g, r.S, want, 100*(r.S/want-1), r.delivered, alohaFrames)
				if math.Abs(r.S/want-1) > alohaTolerance {
					t.Errorf("S=%.4f at G=%.4f, want %.4f ± %.0f %%", r.S, r.G, want, 100*alohaTolerance)
				}
				// The benchmark's event-driven run of the model alone
				// decides every frame as the air on virtual time does.
				if sim := simulateALOHA(t, g, 1); sim != r {
					t.Errorf("the model alone: %+v; through the air: %+v", sim, r)
				}
			})
		})
	}
}

// BenchmarkPureALOHA reports the same figures as TestPureALOHAThroughput
// (S, G·e^(−2G), offered G; one alohaFrames run per iteration, seed =
// iteration), driving the collision model directly by its events — no
// clock: a benchmark gets no synctest bubble — so ns/op is the model's cost
// for alohaFrames frames.
func BenchmarkPureALOHA(b *testing.B) {
	for _, g := range alohaLoads {
		b.Run(fmt.Sprintf("G=%.2f", g), func(b *testing.B) {
			var sumG, sumS float64
			for i := range b.N {
				r := simulateALOHA(b, g, uint64(i+1))
				sumG += r.G
				sumS += r.S
			}
			G, S := sumG/float64(b.N), sumS/float64(b.N)
			b.ReportMetric(G, "G")
			b.ReportMetric(S, "S")
			b.ReportMetric(G*math.Exp(-2*G), "S_theory")
		})
	}
}

// simulateALOHA is runALOHA on the medium alone: each frame begins at its
// start and is judged at its end (every frame lasts T, so ends come in the
// order of starts), ends before starts at one instant.
func simulateALOHA(tb testing.TB, g float64, seed uint64) alohaResult {
	m := &medium{cfg: Collisions{Enabled: true}}
	gw := &receiver{}
	frame := uplink("", 7)
	frame.RSSI = DefaultRSSI
	T := mustAirtime(tb, frame)
	starts := poissonStarts(rand.New(rand.NewPCG(seed, math.Float64bits(g))), alohaFrames, g, T)
	epoch := time.Unix(0, 0)
	var queue []*transmission
	delivered := 0
	end := func(tx *transmission) {
		m.end(tx)
		if tx.reaches(gw) {
			delivered++
		}
	}
	for _, at := range starts {
		now := epoch.Add(at)
		for len(queue) > 0 && !queue[0].end.After(now) {
			end(queue[0])
			queue = queue[1:]
		}
		queue = append(queue, m.begin(now, frame, T, []*receiver{gw}))
	}
	for _, tx := range queue {
		end(tx)
	}
	frames := float64(starts[len(starts)-1]+T) / float64(T)
	return alohaResult{G: alohaFrames / frames, S: float64(delivered) / frames, delivered: delivered}
}
