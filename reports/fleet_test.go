package reports

import (
	"bytes"
	"encoding/json"
	"html"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// fleetSpec is a passing spec with one fleet recorded as RecordFleet does,
// read back from a JSON report.
func fleetSpec(t *testing.T, f Fleet) types.SpecReport {
	t.Helper()
	s := spec("a fleet joins", types.SpecStatePassed)
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	s.ReportEntries = append(s.ReportEntries, types.ReportEntry{Name: FleetEntry + f.Name, Time: t0,
		Value: types.ReportEntryValue{AsJSON: string(raw)}})
	return s
}

// A run with a fleet gets its two charts: the devices joined over time
// (every join a step, the summary naming the last) and the JoinRequests per
// device; a run without one has no fleet section (the other HTML test
// counts its charts).
func TestHTMLPlotsAFleet(t *testing.T) {
	f := Fleet{Name: "fleet 4", Devices: 4, JoinedMS: []float64{120, 250, 80}, JoinRequests: []int{2, 2, 3, 1}}
	run := &Run{Reports: []types.Report{report(fleetSpec(t, f))}}
	if got := Fleets(run.Reports); len(got) != 1 || got[0].Name != "fleet 4" || len(got[0].JoinRequests) != 4 {
		t.Fatalf("fleets read back: %+v", got)
	}
	var b bytes.Buffer
	if err := run.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	text := html.UnescapeString(h)
	for _, want := range []string{
		`id="fleets"`, `href="#fleets"`, "<h3>fleet 4</h3>",
		"fleet 4: devices joined over time", "3 of 4 devices joined, the last 250 ms after the first tap",
		"p50 120 ms", // nearest rank of 80, 120, 250
		"fleet 4: JoinRequests per device", "2 device(s) sent 2 JoinRequest(s)", "1 device(s) sent 3 JoinRequest(s)",
		"JoinRequests per device: 2 on average over 4 device(s), at most 3",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(h, "<svg"); n != 2 {
		t.Errorf("%d charts, want the fleet's 2", n)
	}
	// The joins line climbs one step per join: 0 → 1 → 2 → 3 devices.
	line := h[strings.Index(h, "<polyline"):]
	line = line[:strings.Index(line, "</polyline>")]
	if n := strings.Count(strings.SplitN(strings.SplitN(line, `points="`, 2)[1], `"`, 2)[0], ","); n != 7 {
		t.Errorf("joins line has %d points, want 7 (origin + 2 per join): %s", n, line)
	}
}

// A fleet of 10,000 is drawn from at most maxJoinPoints steps, ending at
// the last join and the whole count.
func TestFleetJoinsLineIsBounded(t *testing.T) {
	f := Fleet{Name: "big", Devices: 10000}
	for i := range 10000 {
		f.JoinedMS = append(f.JoinedMS, float64(i))
	}
	svg := fleetJoinsSVG(f)
	pts := strings.SplitN(strings.SplitN(svg, `points="`, 2)[1], `"`, 2)[0]
	if n := strings.Count(pts, ","); n > 2*maxJoinPoints+1 {
		t.Fatalf("%d points for 10,000 joins, want at most %d", n, 2*maxJoinPoints+1)
	}
	if !strings.Contains(html.UnescapeString(svg), "10000 of 10000 devices joined, the last 9999 ms") {
		t.Fatalf("summary missing: %.300s", svg)
	}
}

// The joins axis is drawn in a unit that fits its span: an onboarding
// day's hours in hours, a fleet's seconds in seconds.
func TestFleetJoinsAxisUnit(t *testing.T) {
	for _, c := range []struct {
		lastMS float64
		want   string
	}{
		{9999, "the last 9999 ms"},
		{42_000, "the last 42 s"},
		{90 * 60e3, "the last 90 min"},
		{15.95 * 3600e3, "the last 15.95 h"},
	} {
		svg := html.UnescapeString(fleetJoinsSVG(Fleet{Name: "day", Devices: 2, JoinedMS: []float64{c.lastMS / 2, c.lastMS}}))
		if !strings.Contains(svg, "2 of 2 devices joined, "+c.want+" after the first tap") {
			t.Errorf("last join at %v ms: the chart does not say %q:\n%s", c.lastMS, c.want, svg)
		}
	}
}
