package reports

import (
	"fmt"
	"math"

	"github.com/onsi/ginkgo/v2/types"
)

// Delta compares a measurement with the same measurement of a baseline run:
// the same spec (full text), measurement name and board; a measurement a spec
// records more than once is matched by its order.
type Delta struct {
	Base, Value float64 // both in Unit
	Unit        string
	Abs         float64 // Value - Base
	Pct         float64 // Abs / |Base| × 100; valid when HasPct
	HasPct      bool
	// Direction is "worse" or "better" when the limit says which way is
	// worse (high: higher is worse; low: lower is worse; both: any change
	// is "changed"), "" without a limit or without a change.
	Direction string
	// Tolerance is the declared regression tolerance ("10%", "50 ms"), ""
	// when none applies; Regression is true when the change is worse than
	// it allows.
	Tolerance  string
	Regression bool
}

// Text renders the change, e.g. "+20% (+40 ms) worse".
func (d *Delta) Text() string {
	if d == nil {
		return ""
	}
	s := fmt.Sprintf("%s %s", signed(d.Abs), d.Unit)
	if d.HasPct {
		s = fmt.Sprintf("%s%% (%s)", signed(d.Pct), s)
	}
	if d.Direction != "" {
		s += " " + d.Direction
	}
	return s
}

func signed(v float64) string {
	s := num3(v)
	if v > 0 && s != "0" {
		s = "+" + s
	}
	return s
}

// baselineKey identifies a measurement across runs.
func baselineKey(spec string, m Measurement) string {
	return spec + "\x00" + m.Name + "\x00" + m.Board
}

// baselineIndex holds the baseline run's measurements by key, in order.
type baselineIndex struct {
	byKey map[string][]Measurement
	refs  []specRef
}

func indexBaseline(rs []types.Report) *baselineIndex {
	b := &baselineIndex{byKey: map[string][]Measurement{}, refs: specRefs(rs)}
	for _, ref := range b.refs {
		for _, m := range SpecMeasurements(ref.spec) {
			k := baselineKey(ref.name, m)
			b.byKey[k] = append(b.byKey[k], m)
		}
	}
	return b
}

func (b *baselineIndex) find(key string, occurrence int) *Measurement {
	ms := b.byKey[key]
	if occurrence >= len(ms) {
		return nil
	}
	return &ms[occurrence]
}

// specsRecording names the baseline's specs that recorded a measurement the
// limit covers.
func (b *baselineIndex) specsRecording(l Limit) map[string]bool {
	out := map[string]bool{}
	for _, ref := range b.refs {
		for _, m := range SpecMeasurements(ref.spec) {
			if l.Covers(m, ref.suitePath, ref.suiteDesc, ref.name) {
				out[ref.name] = true
			}
		}
	}
	return out
}

// effectiveTolerance is the limit's regression tolerance, else the file's;
// nil when none is declared or it is "off".
func effectiveTolerance(l *Limits, lim Limit) *Tolerance {
	t := lim.Regression
	if t == nil && l != nil {
		t = l.Regression
	}
	if t == nil || t.Off {
		return nil
	}
	return t
}

// compare builds the delta of m against its baseline value bm, in unit.
// With a limit, the direction follows its bounds, and with a tolerance a
// worse change beyond it is a regression. It returns nil when the units do
// not compare.
func compare(bm, m Measurement, unit string, lim *Limit, tol *Tolerance) *Delta {
	v, ok1 := convert(m.Value, m.Unit, unit)
	b, ok2 := convert(bm.Value, bm.Unit, unit)
	if !ok1 || !ok2 {
		return nil
	}
	d := &Delta{Base: b, Value: v, Unit: unit, Abs: v - b}
	if b != 0 {
		d.Pct, d.HasPct = d.Abs/math.Abs(b)*100, true
	}
	if lim == nil || d.Abs == 0 {
		return d
	}
	worse := false
	switch {
	case lim.High != nil && lim.Low != nil:
		d.Direction, worse = "changed", true
	case lim.High != nil:
		worse = d.Abs > 0
	default:
		worse = d.Abs < 0
	}
	if d.Direction == "" {
		d.Direction = "better"
		if worse {
			d.Direction = "worse"
		}
	}
	if tol == nil {
		return d
	}
	if tol.IsPct {
		d.Tolerance = num(tol.Percent) + "%"
		d.Regression = worse && d.HasPct && math.Abs(d.Pct) > tol.Percent
	} else {
		d.Tolerance = num(tol.Abs) + " " + unit
		d.Regression = worse && math.Abs(d.Abs) > tol.Abs
	}
	return d
}
