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

// niceDomain widens [lo, hi] to round tick values (about n of them) and
// returns the widened domain with its ticks. Values are never clipped: the
// domain always holds lo and hi.
func niceDomain(lo, hi float64, n int) (float64, float64, []float64) {
	if hi <= lo {
		w := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-w, hi+w
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	dlo := math.Floor(lo/step+1e-9) * step
	dhi := math.Ceil(hi/step-1e-9) * step
	var ticks []float64
	for i := 0; ; i++ {
		v := dlo + float64(i)*step
		if v > dhi+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, v)
	}
	return dlo, dhi, ticks
}

// axisTicks draws an x axis at y with the given ticks and the unit at its
// right end.
func (s *svg) axisTicks(sc scale, y float64, ticks []float64, unit string) {
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, sc.x0, y, sc.x1, y)
	for _, t := range ticks {
		x := sc.x(t)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, x, y, x, y+4)
		s.text(x, y+15, "middle", "tick", num3(t))
	}
	last := ""
	if len(ticks) > 0 {
		last = num3(ticks[len(ticks)-1])
	}
	// past the last tick's label (about 6 px a character at 10 px)
	s.text(sc.x1+3*float64(len(last))+8, y+15, "start", "tick", unit)
}

// histogramSVG draws the distribution of values (ms) on an axis scaled to
// the data, with the limit's bounds as vertical lines where they fall inside
// it; a bound beyond the data is named at the edge it lies past, so the
// bars are not squeezed into a corner of a scale reaching the limit.
func histogramSVG(title string, values []float64, lim *Limit) string {
	if len(values) == 0 {
		return ""
	}
	lo, hi := values[0], values[0]
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	nb := 2 * int(math.Ceil(math.Sqrt(float64(len(values)))))
	nb = max(5, min(nb, 24))
	dlo, dhi, ticks := niceDomain(lo, hi, 6)
	width := (dhi - dlo) / float64(nb)
	counts := make([]int, nb)
	for _, v := range values {
		i := int((v - dlo) / width)
		counts[min(max(i, 0), nb-1)]++
	}
	maxCount := 0
	for _, c := range counts {
		maxCount = max(maxCount, c)
	}
	type mark struct {
		label, class string
		v            float64
	}
	var marks []mark
	if lim != nil {
		unit := " " + lim.Unit
		if lim.Low != nil {
			marks = append(marks, mark{"low " + num(*lim.Low) + unit, "limit", *lim.Low})
		}
		if lim.High != nil {
			marks = append(marks, mark{"high " + num(*lim.High) + unit, "limit", *lim.High})
		}
		if lim.marginalLow != nil {
			marks = append(marks, mark{"marginal " + num3(*lim.marginalLow) + unit, "marginal", *lim.marginalLow})
		}
		if lim.marginalHigh != nil {
			marks = append(marks, mark{"marginal " + num3(*lim.marginalHigh) + unit, "marginal", *lim.marginalHigh})
		}
	}
	sc := scale{dlo, dhi, 60, chartW - rightPad - 40}
	const plotTop, plotH = 34.0, 140.0
	h := plotTop + plotH + axisH + 22
	var s svg
	s.open(h, title)
	// y axis: device counts
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, sc.x0, plotTop, sc.x0, plotTop+plotH)
	for _, c := range []int{0, (maxCount + 1) / 2, maxCount} {
		y := plotTop + plotH - plotH*float64(c)/float64(maxCount)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, sc.x0, y, sc.x1, y)
		s.text(sc.x0-6, y+4, "end", "tick", fmt.Sprint(c))
	}
	s.f(`<text x="16" y="%.1f" text-anchor="middle" class="tick" transform="rotate(-90 16 %.1f)">count</text>`, plotTop+plotH/2, plotTop+plotH/2)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		x0, x1 := sc.x(dlo+width*float64(i)), sc.x(dlo+width*float64(i+1))
		bh := plotH * float64(c) / float64(maxCount)
		s.rect(x0+1, plotTop+plotH-bh, math.Max(x1-x0-2, 2), bh, palette[0],
			fmt.Sprintf("%s … %s ms: %d measurement(s)", num3(dlo+width*float64(i)), num3(dlo+width*float64(i+1)), c))
	}
	sort.Slice(marks, func(i, j int) bool { return marks[i].v < marks[j].v })
	var below, above []string
	row := 0
	for _, m := range marks {
		switch {
		case m.v < dlo:
			below = append(below, m.label)
		case m.v > dhi:
			above = append(above, m.label)
		default:
			x := sc.x(m.v)
			s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="%s"><title>%s</title></line>`, x, plotTop-4, x, plotTop+plotH, m.class, esc(m.label))
			s.text(x, plotTop-8-float64(row%2)*11, "middle", "tick", m.label)
			row++
		}
	}
	if len(below) > 0 {
		s.text(sc.x0, 12, "start", "tick", "← "+strings.Join(below, ", ")+" (below the data)")
	}
	if len(above) > 0 {
		s.text(sc.x1, 12, "end", "tick", strings.Join(above, ", ")+" (above the data) →")
	}
	s.axisTicks(sc, plotTop+plotH, ticks, "ms")
	s.text((sc.x0+sc.x1)/2, plotTop+plotH+axisH+14, "middle", "label", fmt.Sprintf("%d measurement(s), %s … %s ms", len(values), num3(lo), num3(hi)))
	return s.close()
}

// bulletLabelW is the bullet chart's gutter for row labels.
const bulletLabelW = 250.0

// bulletGroup is the checks of one limit, drawn on one shared scale.
type bulletGroup struct {
	limit  Limit
	checks []Check
}

// bulletSVG draws the checks limit by limit: the failing regions red, the
// marginal band amber, the passing region green, each value as a black bar,
// on an axis with ticks and the unit, the limits labelled. The checks of one
// limit share a scale, so their values can be compared; the scale holds
// every value and bound (a value far beyond a limit extends the axis; none
// is clipped or pinned to an edge).
func bulletSVG(checks []Check) string {
	if len(checks) == 0 {
		return ""
	}
	var groups []*bulletGroup
	byLimit := map[string]*bulletGroup{}
	for _, c := range checks {
		k := c.Limit.Measurement + "\x00" + limitText(c.Limit)
		g := byLimit[k]
		if g == nil {
			g = &bulletGroup{limit: c.Limit}
			byLimit[k] = g
			groups = append(groups, g)
		}
		g.checks = append(g.checks, c)
	}
	const headH, labelsH, gap = 16.0, 26.0, 12.0
	h := 6.0
	for _, g := range groups {
		h += headH + labelsH + float64(len(g.checks))*rowH + axisH + gap
	}
	var s svg
	s.open(h, "Measurements against limits")
	y := 6.0
	for _, g := range groups {
		l := g.limit
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, c := range g.checks {
			lo, hi = math.Min(lo, c.Value), math.Max(hi, c.Value)
		}
		for _, p := range []*float64{l.Low, l.High, l.marginalLow, l.marginalHigh} {
			if p != nil {
				lo, hi = math.Min(lo, *p), math.Max(hi, *p)
			}
		}
		span := hi - lo
		if span == 0 {
			span = math.Max(math.Abs(hi)*0.2, 1)
		}
		dlo, dhi := lo-span*0.08, hi+span*0.08
		if lo >= 0 && lo <= span { // zero is near: start there, as a bar chart reader expects
			dlo = 0
		}
		dlo, dhi, ticks := niceDomain(dlo, dhi, 6)
		// Room on the right for the longest "value unit STATUS" label
		// (about 7 px a character at 12 px).
		room := 0.0
		for _, c := range g.checks {
			room = math.Max(room, 7*float64(len([]rune(fmt.Sprintf("%s %s %s", num3(c.Value), l.Unit, c.Status))))+14)
		}
		sc := scale{dlo, dhi, bulletLabelW, chartW - math.Max(room, 90)}

		s.text(8, y+12, "start", "label", fmt.Sprintf("%s: %s", l.Measurement, limitText(l)))
		y += headH
		// limit labels above the bars, staggered when close
		type mk struct {
			x     float64
			label string
			class string
		}
		var mks []mk
		if l.Low != nil {
			mks = append(mks, mk{sc.x(*l.Low), "low " + num(*l.Low), "status-fail"})
		}
		if l.marginalLow != nil {
			mks = append(mks, mk{sc.x(*l.marginalLow), "marginal " + num3(*l.marginalLow), "status-marginal"})
		}
		if l.marginalHigh != nil {
			mks = append(mks, mk{sc.x(*l.marginalHigh), "marginal " + num3(*l.marginalHigh), "status-marginal"})
		}
		if l.High != nil {
			mks = append(mks, mk{sc.x(*l.High), "high " + num(*l.High), "status-fail"})
		}
		lastX, level := math.Inf(-1), 0
		for _, m := range mks {
			if m.x-lastX < 70 {
				level = 1 - level
			} else {
				level = 0
			}
			lastX = m.x
			s.text(m.x, y+10+float64(level)*12, "middle", "tick "+m.class, m.label)
		}
		y += labelsH
		top := y
		for _, c := range g.checks {
			label := c.Measurement.Board
			if label == "" {
				label = "(no board)"
			}
			if c.Spec != "" {
				label += " · " + c.Spec
			}
			// The gutter holds about 34 characters; the whole key is the
			// label's tooltip and in the table below.
			s.f(`<text x="%.1f" y="%.1f" text-anchor="end" class="label"><title>%s</title>%s</text>`,
				bulletLabelW-8, y+barH-3, esc(c.Key()), esc(truncate(label, 34)))
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
			x := sc.x(c.Value)
			s.f(`<rect x="%.2f" y="%.2f" width="3" height="%.2f" class="marker"><title>%s</title></rect>`, x-1.5, y-2, barH+4,
				esc(fmt.Sprintf("%s = %s %s (%s)", c.Key(), num3(c.Value), l.Unit, c.Status)))
			s.text(sc.x1+6, y+barH-3, "start", "value status-"+strings.ToLower(string(c.Status)), fmt.Sprintf("%s %s %s", num3(c.Value), l.Unit, c.Status))
			y += rowH
		}
		for _, m := range mks {
			s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, m.x, top-4, m.x, top)
		}
		s.axisTicks(sc, y, ticks, l.Unit)
		y += axisH + gap
	}
	return s.close()
}
