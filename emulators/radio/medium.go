package radio

import (
	"fmt"
	"time"
)

// Medium is the collision model of collision.go on its own, for
// discrete-event simulations: no clock, no goroutines, no listeners, no
// capture. A testing/synctest bubble runs an Air on virtual time, but a
// benchmark gets no bubble (synctest.Test needs a *testing.T); a
// benchmark that wants the air's verdicts drives a Medium by its events
// instead, and reaches the same verdicts as an Air fed the same frames at
// the same instants (TestMediumMatchesAir).
//
// The caller keeps the events in time order: Begin when a frame's first
// symbol goes out, End when its last one has (start + airtime). At one
// instant the order of Begins and Ends does not matter (intervals are
// half-open, see collision.go); across instants it does — End must not be
// called before every frame that starts before that end has been begun.
//
// Every uplink is judged (Collisions.Enabled is not consulted: a Medium
// exists to be judged); downlinks are not modelled and Begin refuses them.
// A Medium is not safe for concurrent use.
type Medium struct {
	m   medium
	gws []*receiver
}

// NewMedium returns a medium heard by gateways uplink receivers (gateways
// ≥ 1), each with c.Demodulators demodulators (0: DefaultDemodulators).
func NewMedium(c Collisions, gateways int) *Medium {
	m := &Medium{m: medium{cfg: c}}
	for range max(gateways, 1) {
		m.gws = append(m.gws, &receiver{})
	}
	return m
}

// Transmission is an uplink on a Medium, from Begin to End.
type Transmission struct {
	tx *transmission
	f  Frame
}

// Begin registers uplink f, starting at at. f.RSSI is its power at the
// gateways (an Air would fill in its link budget; here the caller does).
// f.Airtime is computed from f (Airtime) when zero. The frame returned by
// End is f with Time, Airtime, Collision and NoDemodulator set.
func (m *Medium) Begin(at time.Time, f Frame) (*Transmission, error) {
	if !f.Uplink {
		return nil, fmt.Errorf("radio: medium: downlinks are not modelled")
	}
	if f.Airtime == 0 {
		d, err := Airtime(f)
		if err != nil {
			return nil, err
		}
		f.Airtime = d
	}
	f.Time = at
	return &Transmission{tx: m.m.begin(at, f, f.Airtime, m.gws), f: f}, nil
}

// End judges t at its end (its Begin time + airtime) and returns the frame
// with the verdict, and which gateways receive it (heard[i]: gateway i
// locked a demodulator on it and the frame was not lost).
func (m *Medium) End(t *Transmission) (f Frame, heard []bool) {
	m.m.end(t.tx)
	f = t.f
	f.Collision, f.NoDemodulator = t.tx.verdict, t.tx.noDemod
	heard = make([]bool, len(m.gws))
	for i, r := range m.gws {
		heard[i] = t.tx.reaches(r)
	}
	return f, heard
}

// Stats returns what the medium has counted so far (Air.CollisionStats).
func (m *Medium) Stats() CollisionStats {
	s := m.m.stats
	s.BySF = make(map[int]CollisionCounts, len(m.m.stats.BySF))
	for sf, c := range m.m.stats.BySF {
		s.BySF[sf] = c
	}
	return s
}
