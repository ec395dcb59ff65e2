package reports

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// FleetEntry marks report entries that hold a fleet's timeline (RecordFleet).
const FleetEntry = "fleet: "

// Fleet is one fleet run as the HTML report plots it: when each device
// joined, and how many JoinRequests each one sent.
type Fleet struct {
	Name    string `json:"name"`
	Devices int    `json:"devices"` // boards tapped
	// JoinedMS is, for every device that joined, the time from the fleet's
	// first tap to the network's join event, in ms.
	JoinedMS []float64 `json:"joinedMs"`
	// JoinRequests is, per device, how many JoinRequests it put on the air
	// (0 for a device that never sent one).
	JoinRequests []int `json:"joinRequests"`
}

// RecordFleet adds f to the running spec's report. The entry is kept out of
// the console (it holds a value per device) but is in the JSON report, from
// which the HTML report draws the fleet's charts.
func RecordFleet(f Fleet) {
	ginkgo.AddReportEntry(FleetEntry+f.Name, f, ginkgo.ReportEntryVisibilityNever)
}

// Fleets returns the fleets recorded in the reports, in order.
func Fleets(rs []types.Report) []Fleet {
	var out []Fleet
	for _, r := range rs {
		for _, s := range r.SpecReports {
			for _, e := range s.ReportEntries {
				if f, ok := entryFleet(e); ok {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

func entryFleet(e types.ReportEntry) (Fleet, bool) { return entryValue[Fleet](e, FleetEntry) }

// maxJoinPoints bounds the points of the joins-over-time line: a fleet of
// 10,000 is drawn from its quantiles, not from 10,000 steps.
const maxJoinPoints = 400

// fleetJoinsSVG draws the devices joined against the time since the first
// tap: a rising step line, its end the fleet's last join.
func fleetJoinsSVG(f Fleet) string {
	if len(f.JoinedMS) == 0 {
		return ""
	}
	t := slices.Clone(f.JoinedMS)
	slices.Sort(t)
	n := len(t)
	div, unit := timeUnit(t[n-1])
	for i := range t {
		t[i] /= div
	}
	_, dhi, ticks := niceDomain(0, max(t[n-1], 1), 6) // ≥ 1 unit: an axis from 0
	sc := scale{0, dhi, 60, chartW - rightPad - 40}
	const plotTop, plotH = 20.0, 150.0
	h := plotTop + plotH + axisH + 22
	var s svg
	s.open(h, fmt.Sprintf("%s: devices joined over time", f.Name))
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, sc.x0, plotTop, sc.x0, plotTop+plotH)
	yOf := func(c int) float64 { return plotTop + plotH - plotH*float64(c)/float64(max(f.Devices, n)) }
	for _, c := range []int{0, max(f.Devices, n) / 2, max(f.Devices, n)} {
		y := yOf(c)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, sc.x0, y, sc.x1, y)
		s.text(sc.x0-6, y+4, "end", "tick", fmt.Sprint(c))
	}
	s.f(`<text x="16" y="%.1f" text-anchor="middle" class="tick" transform="rotate(-90 16 %.1f)">joined</text>`, plotTop+plotH/2, plotTop+plotH/2)
	// A step per join, or per quantile of them when there are many.
	step := max(1, int(math.Ceil(float64(n)/maxJoinPoints)))
	var pts strings.Builder
	fmt.Fprintf(&pts, "%.1f,%.1f", sc.x(0), yOf(0))
	prev := 0
	for i := step - 1; ; i += step {
		i = min(i, n-1)
		x := sc.x(t[i])
		fmt.Fprintf(&pts, " %.1f,%.1f %.1f,%.1f", x, yOf(prev), x, yOf(i+1))
		prev = i + 1
		if i == n-1 {
			break
		}
	}
	s.f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"><title>%s</title></polyline>`, pts.String(), palette[0],
		esc(fmt.Sprintf("%d of %d devices joined; the last %s %s after the first tap", n, f.Devices, num3(t[n-1]), unit)))
	for _, q := range []float64{50, 99} {
		i := min(n-1, max(0, int(q/100*float64(n)+0.5)-1))
		x := sc.x(t[i])
		label := fmt.Sprintf("p%.0f %s %s", q, num3(t[i]), unit)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="marginal"><title>%s</title></line>`, x, plotTop, x, plotTop+plotH, esc(label))
		s.text(x+4, plotTop+12+float64(int(q)%2)*11, "start", "tick", label)
	}
	s.axisTicks(sc, plotTop+plotH, ticks, unit)
	s.text((sc.x0+sc.x1)/2, plotTop+plotH+axisH+14, "middle", "label",
		fmt.Sprintf("%d of %d devices joined, the last %s %s after the first tap", n, f.Devices, num3(t[n-1]), unit))
	return s.close()
}

// timeUnit is the unit a joins axis reaching maxMS is drawn in, and its
// size in ms: a fleet's seconds in ms, an onboarding day's hours in hours.
func timeUnit(maxMS float64) (div float64, unit string) {
	switch {
	case maxMS < 10e3:
		return 1, "ms"
	case maxMS < 10*60e3:
		return 1e3, "s"
	case maxMS < 10*3600e3:
		return 60e3, "min"
	}
	return 3600e3, "h"
}

// fleetAttemptsSVG draws how many devices sent 1, 2, … JoinRequests.
func fleetAttemptsSVG(f Fleet) string {
	if len(f.JoinRequests) == 0 {
		return ""
	}
	hi := max(slices.Max(f.JoinRequests), 0)
	counts := make([]int, hi+1)
	for _, a := range f.JoinRequests {
		counts[max(a, 0)]++
	}
	lo := 0
	if counts[0] == 0 {
		lo = 1 // no device without a JoinRequest: start the axis at 1
	}
	maxCount := slices.Max(counts)
	const plotTop, plotH = 20.0, 140.0
	h := plotTop + plotH + axisH + 22
	x0, x1 := 60.0, chartW-rightPad-40
	bw := (x1 - x0) / float64(hi-lo+1)
	var s svg
	s.open(h, fmt.Sprintf("%s: JoinRequests per device", f.Name))
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, x0, plotTop, x0, plotTop+plotH)
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>`, x0, plotTop+plotH, x1, plotTop+plotH)
	for _, c := range []int{0, (maxCount + 1) / 2, maxCount} {
		y := plotTop + plotH - plotH*float64(c)/float64(maxCount)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, x0, y, x1, y)
		s.text(x0-6, y+4, "end", "tick", fmt.Sprint(c))
	}
	s.f(`<text x="16" y="%.1f" text-anchor="middle" class="tick" transform="rotate(-90 16 %.1f)">devices</text>`, plotTop+plotH/2, plotTop+plotH/2)
	labelEvery := max(1, (hi-lo+1)/20)
	for k := lo; k <= hi; k++ {
		x := x0 + bw*float64(k-lo)
		if c := counts[k]; c > 0 {
			bh := plotH * float64(c) / float64(maxCount)
			s.rect(x+1, plotTop+plotH-bh, math.Max(bw-2, 1), bh, palette[1], fmt.Sprintf("%d device(s) sent %d JoinRequest(s)", c, k))
		}
		if (k-lo)%labelEvery == 0 {
			s.text(x+bw/2, plotTop+plotH+14, "middle", "tick", fmt.Sprint(k))
		}
	}
	total := 0
	for _, a := range f.JoinRequests {
		total += a
	}
	s.text((x0+x1)/2, plotTop+plotH+axisH+14, "middle", "label",
		fmt.Sprintf("JoinRequests per device: %s on average over %d device(s), at most %d", num3(float64(total)/float64(len(f.JoinRequests))), len(f.JoinRequests), hi))
	return s.close()
}
