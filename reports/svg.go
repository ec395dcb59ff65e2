package reports

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// The charts are inline SVG written here, so report.html needs nothing but
// itself: no scripts, no fonts, no network. Hovering a shape shows its
// <title>.

const (
	chartW   = 760.0 // viewBox width
	labelW   = 190.0 // left gutter for row labels
	rightPad = 70.0
	rowH     = 26.0
	barH     = 16.0
	axisH    = 26.0
)

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

const (
	colPass     = "#cfe8cf"
	colMarginal = "#f6e3a1"
	colFail     = "#f3c1c1"
)

type svg struct{ strings.Builder }

func (s *svg) f(format string, a ...any) { fmt.Fprintf(&s.Builder, format, a...) }

func esc(s string) string { return html.EscapeString(s) }

func (s *svg) open(h float64, title string) {
	s.f(`<svg viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="%s" class="chart">`, chartW, h, esc(title))
	s.f(`<title>%s</title>`, esc(title))
}

func (s *svg) close() string { s.f(`</svg>`); return s.String() }

func (s *svg) text(x, y float64, anchor, class, t string) {
	s.f(`<text x="%.1f" y="%.1f" text-anchor="%s" class="%s">%s</text>`, x, y, anchor, class, esc(t))
}

func (s *svg) rect(x, y, w, h float64, fill, title string) {
	if w < 0.5 {
		w = 0.5 // keep tiny segments visible and hoverable
	}
	s.f(`<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s">`, x, y, w, h, fill)
	if title != "" {
		s.f(`<title>%s</title>`, esc(title))
	}
	s.f(`</rect>`)
}

// scale maps [lo, hi] onto [x0, x1].
type scale struct{ lo, hi, x0, x1 float64 }

func (sc scale) x(v float64) float64 {
	if sc.hi == sc.lo {
		return sc.x0
	}
	return sc.x0 + (v-sc.lo)/(sc.hi-sc.lo)*(sc.x1-sc.x0)
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func (s *svg) axis(sc scale, y float64, unit string) {
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, sc.x0, y, sc.x1, y)
	for _, t := range niceTicks(sc.lo, sc.hi, 6) {
		x := sc.x(t)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, x, y, x, y+4)
		s.text(x, y+15, "middle", "tick", num3(t))
	}
	s.text(sc.x1+26, y+15, "start", "tick", unit)
}

// phaseRow is one board's provisioning phases in one spec.
type phaseRow struct {
	Label  string
	Phases []phaseSeg
}

type phaseSeg struct {
	Name  string
	Start time.Time
	MS    float64
}

func (r phaseRow) totalMS() float64 {
	t := 0.0
	for _, p := range r.Phases {
		t += p.MS
	}
	return t
}

// PhasePrefix marks measurements that are phases of a board's provisioning
// ("phase tap", "phase join"); the charts stack and chain them in the order
// they were recorded.
const PhasePrefix = "phase "

// phaseRows collects the phase measurements of every spec, one row per
// (spec, board). A phase without a Start is placed after the previous one,
// the first so that the board's phases end when they were recorded.
func phaseRows(rs []types.Report) []phaseRow {
	var rows []phaseRow
	specsWithPhases := 0
	type acc struct {
		row   phaseRow
		first time.Time
	}
	for _, r := range rs {
		for _, s := range r.SpecReports {
			byBoard := map[string]*acc{}
			var order []string
			for _, e := range s.ReportEntries {
				m, ok := entryMeasurement(e)
				if !ok || !strings.HasPrefix(m.Name, PhasePrefix) {
					continue
				}
				ms, ok := convert(m.Value, m.Unit, "ms")
				if !ok {
					continue
				}
				a := byBoard[m.Board]
				if a == nil {
					a = &acc{first: e.Time}
					byBoard[m.Board] = a
					order = append(order, m.Board)
				}
				a.row.Phases = append(a.row.Phases, phaseSeg{Name: strings.TrimPrefix(m.Name, PhasePrefix), Start: m.Start, MS: ms})
			}
			if len(order) > 0 {
				specsWithPhases++
			}
			for _, b := range order {
				a := byBoard[b]
				t := a.first.Add(-time.Duration(a.row.totalMS() * float64(time.Millisecond)))
				for i := range a.row.Phases {
					p := &a.row.Phases[i]
					if p.Start.IsZero() {
						p.Start = t
					}
					t = p.Start.Add(time.Duration(p.MS * float64(time.Millisecond)))
				}
				a.row.Label = b
				if a.row.Label == "" {
					a.row.Label = "(no board)"
				}
				a.row.Label += "\x00" + s.LeafNodeText
				rows = append(rows, a.row)
			}
		}
	}
	for i := range rows {
		board, spec, _ := strings.Cut(rows[i].Label, "\x00")
		rows[i].Label = board
		if specsWithPhases > 1 {
			rows[i].Label = board + " · " + truncate(spec, 18)
		}
	}
	return rows
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// phaseColors gives every phase name a colour, in first-seen order.
func phaseColors(rows []phaseRow) (names []string, color map[string]string) {
	color = map[string]string{}
	for _, r := range rows {
		for _, p := range r.Phases {
			if _, ok := color[p.Name]; !ok {
				color[p.Name] = palette[len(names)%len(palette)]
				names = append(names, p.Name)
			}
		}
	}
	return names, color
}

func (s *svg) legend(y float64, names []string, color map[string]string) {
	x := labelW
	for _, n := range names {
		s.rect(x, y-9, 10, 10, color[n], "")
		s.text(x+14, y, "start", "legend", n)
		x += 22 + 7*float64(len([]rune(n)))
	}
}

// stackedPhasesSVG draws each board's phase durations as one stacked bar.
func stackedPhasesSVG(rows []phaseRow) string {
	if len(rows) == 0 {
		return ""
	}
	max := 0.0
	for _, r := range rows {
		max = math.Max(max, r.totalMS())
	}
	if max == 0 {
		max = 1
	}
	s, sc, color := openPhaseChart(rows, max, "Per-phase timings per device (ms)")
	y := 24.0
	for _, r := range rows {
		s.text(labelW-8, y+barH-3, "end", "label", r.Label)
		x := 0.0
		for _, p := range r.Phases {
			s.rect(sc.x(x), y, sc.x(x+p.MS)-sc.x(x), barH, color[p.Name], fmt.Sprintf("%s: %s %s ms", r.Label, p.Name, num3(p.MS)))
			x += p.MS
		}
		s.text(sc.x(x)+4, y+barH-3, "start", "value", num3(x)+" ms")
		y += rowH
	}
	s.axis(sc, y, "ms")
	return s.close()
}

// openPhaseChart starts a chart of one bar row per board over 0..maxMS, with
// the legend of the phases' colours.
func openPhaseChart(rows []phaseRow, maxMS float64, title string) (*svg, scale, map[string]string) {
	names, color := phaseColors(rows)
	ticks := niceTicks(0, maxMS, 6)
	sc := scale{0, math.Max(maxMS, ticks[len(ticks)-1]), labelW, chartW - rightPad}
	s := &svg{}
	s.open(24+float64(len(rows))*rowH+axisH+8, title)
	s.legend(14, names, color)
	return s, sc, color
}

// ganttSVG draws the provisioning timeline: each phase at its start time,
// relative to the first phase of the run.
func ganttSVG(rows []phaseRow) string {
	if len(rows) == 0 {
		return ""
	}
	t0, t1 := rows[0].Phases[0].Start, rows[0].Phases[0].Start
	for _, r := range rows {
		for _, p := range r.Phases {
			if p.Start.Before(t0) {
				t0 = p.Start
			}
			if e := p.Start.Add(time.Duration(p.MS * float64(time.Millisecond))); e.After(t1) {
				t1 = e
			}
		}
	}
	span := float64(t1.Sub(t0)) / float64(time.Millisecond)
	if span <= 0 {
		span = 1
	}
	s, sc, color := openPhaseChart(rows, span, "Provisioning timeline (ms from the first tap)")
	y := 24.0
	for _, r := range rows {
		s.text(labelW-8, y+barH-3, "end", "label", r.Label)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, labelW, y+barH/2, chartW-rightPad, y+barH/2)
		for _, p := range r.Phases {
			off := float64(p.Start.Sub(t0)) / float64(time.Millisecond)
			s.rect(sc.x(off), y, sc.x(off+p.MS)-sc.x(off), barH, color[p.Name],
				fmt.Sprintf("%s: %s from %s ms to %s ms (%s ms)", r.Label, p.Name, num3(off), num3(off+p.MS), num3(p.MS)))
		}
		y += rowH
	}
	s.axis(sc, y, "ms")
	return s.close()
}

// histogramSVG draws the distribution of values (ms) with the limit's
// bounds as vertical lines.
func histogramSVG(title string, values []float64, lim *Limit) string {
	if len(values) == 0 {
		return ""
	}
	lo, hi := values[0], values[0]
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	marks := map[string]float64{}
	if lim != nil {
		if lim.Low != nil {
			marks["low "+num(*lim.Low)] = *lim.Low
		}
		if lim.High != nil {
			marks["high "+num(*lim.High)] = *lim.High
		}
		if lim.marginalLow != nil {
			marks["marginal "+num3(*lim.marginalLow)] = *lim.marginalLow
		}
		if lim.marginalHigh != nil {
			marks["marginal "+num3(*lim.marginalHigh)] = *lim.marginalHigh
		}
	}
	nb := 2 * int(math.Ceil(math.Sqrt(float64(len(values)))))
	nb = max(5, min(nb, 24))
	width := (hi - lo) / float64(nb)
	if width == 0 {
		nb = 1
		width = math.Max(math.Abs(hi)*0.05, 1)
		lo -= width / 2
	}
	counts := make([]int, nb)
	for _, v := range values {
		i := int((v - lo) / width)
		counts[min(max(i, 0), nb-1)]++
	}
	maxCount := 0
	for _, c := range counts {
		maxCount = max(maxCount, c)
	}
	dlo, dhi := lo, lo+width*float64(nb)
	for _, v := range marks {
		dlo, dhi = math.Min(dlo, v), math.Max(dhi, v)
	}
	pad := (dhi - dlo) * 0.05
	if dlo >= 0 && dlo-pad < 0 {
		dlo, pad = 0, math.Min(pad, dlo)
	}
	sc := scale{dlo - pad, dhi + pad, 50, chartW - rightPad}
	const plotTop, plotH = 20.0, 140.0
	h := plotTop + plotH + axisH + 10
	var s svg
	s.open(h, title)
	s.text(44, plotTop+8, "end", "tick", fmt.Sprint(maxCount))
	s.text(44, plotTop+plotH, "end", "tick", "0")
	for i, c := range counts {
		if c == 0 {
			continue
		}
		x0, x1 := sc.x(lo+width*float64(i)), sc.x(lo+width*float64(i+1))
		bh := plotH * float64(c) / float64(maxCount)
		s.rect(x0+1, plotTop+plotH-bh, math.Max(x1-x0-2, 2), bh, palette[0],
			fmt.Sprintf("%s … %s ms: %d device(s)", num3(lo+width*float64(i)), num3(lo+width*float64(i+1)), c))
	}
	keys := make([]string, 0, len(marks))
	for k := range marks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		x := sc.x(marks[k])
		class := "limit"
		if strings.HasPrefix(k, "marginal") {
			class = "marginal"
		}
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="%s"><title>%s</title></line>`, x, plotTop-6, x, plotTop+plotH, class, esc(k))
		s.text(x+3, plotTop+4+float64(i%3)*11, "start", "tick", k)
	}
	s.axis(sc, plotTop+plotH, "ms")
	return s.close()
}

// bulletSVG draws every check as a range: the failing regions red, the
// marginal band amber, the passing region green, the value as a black bar.
func bulletSVG(checks []Check) string {
	if len(checks) == 0 {
		return ""
	}
	h := 10 + float64(len(checks))*rowH + 6
	var s svg
	s.open(h, "Measurements against limits")
	y := 10.0
	for _, c := range checks {
		l, v := c.Limit, c.Value
		lo, hi := v, v
		for _, p := range []*float64{l.Low, l.High, l.marginalLow, l.marginalHigh} {
			if p != nil {
				lo, hi = math.Min(lo, *p), math.Max(hi, *p)
			}
		}
		pad := (hi - lo) * 0.15
		if pad == 0 {
			pad = math.Max(math.Abs(hi)*0.1, 1)
		}
		dlo := lo - pad
		if l.Low == nil && lo >= 0 {
			dlo = 0
		}
		sc := scale{dlo, hi + pad, labelW, chartW - rightPad - 60}
		s.text(labelW-8, y+barH-3, "end", "label", measurementKey(c.Measurement))
		// failing background, then the passing range, then the marginal bands
		s.rect(sc.x0, y, sc.x1-sc.x0, barH, colFail, "fail")
		pl, ph := sc.lo, sc.hi
		if l.Low != nil {
			pl = *l.Low
		}
		if l.High != nil {
			ph = *l.High
		}
		s.rect(sc.x(pl), y, sc.x(ph)-sc.x(pl), barH, colPass, "pass: "+l.String())
		if l.marginalLow != nil {
			s.rect(sc.x(pl), y, sc.x(*l.marginalLow)-sc.x(pl), barH, colMarginal, "marginal below "+num3(*l.marginalLow)+" "+l.Unit)
		}
		if l.marginalHigh != nil {
			s.rect(sc.x(*l.marginalHigh), y, sc.x(ph)-sc.x(*l.marginalHigh), barH, colMarginal, "marginal above "+num3(*l.marginalHigh)+" "+l.Unit)
		}
		x := sc.x(v)
		s.f(`<rect x="%.2f" y="%.2f" width="3" height="%.2f" class="marker"><title>%s</title></rect>`, x-1.5, y-2, barH+4,
			esc(fmt.Sprintf("%s = %s %s (%s)", measurementKey(c.Measurement), num3(v), l.Unit, c.Status)))
		s.text(sc.x1+6, y+barH-3, "start", "value status-"+strings.ToLower(string(c.Status)), fmt.Sprintf("%s %s %s", num3(v), l.Unit, c.Status))
		y += rowH
	}
	return s.close()
}
