package reports

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// t0 anchors synthetic reports.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// spec builds an It spec report with measurements recorded as Record does.
func spec(text string, state types.SpecState, ms ...Measurement) types.SpecReport {
	s := types.SpecReport{
		ContainerHierarchyTexts: []string{"provisioning"},
		LeafNodeType:            types.NodeTypeIt,
		LeafNodeText:            text,
		State:                   state,
		NumAttempts:             1,
		StartTime:               t0,
		EndTime:                 t0.Add(300 * time.Millisecond),
		RunTime:                 300 * time.Millisecond,
	}
	for i, m := range ms {
		raw, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		s.ReportEntries = append(s.ReportEntries, types.ReportEntry{
			Name: EntryPrefix + m.Name, Time: t0.Add(time.Duration(250+i) * time.Millisecond),
			Value: types.ReportEntryValue{AsJSON: string(raw), Representation: m.String()},
		})
	}
	return s
}

// report wraps specs in a suite report whose success follows the specs.
func report(specs ...types.SpecReport) types.Report {
	r := types.Report{SuiteDescription: "Provisioning", SuitePath: "/repo/suites/provisioning", SuiteSucceeded: true,
		StartTime: t0, EndTime: t0.Add(time.Second), RunTime: time.Second}
	for _, s := range specs {
		if s.Failed() {
			r.SuiteSucceeded = false
		}
		r.SpecReports = append(r.SpecReports, s)
	}
	return r
}

// flow is one board's provisioning measurements, tap to first uplink = total.
func flow(board string, tap2join float64) []Measurement {
	phases := []struct {
		name string
		ms   float64
	}{{"phase tap", 1}, {"phase identity", 2}, {"phase register", 5}, {"phase write key", 2}}
	var out []Measurement
	sum := 0.0
	for _, p := range phases {
		out = append(out, Measurement{Name: p.name, Value: p.ms, Unit: "ms", Board: board})
		sum += p.ms
	}
	out = append(out, Measurement{Name: "phase join", Value: tap2join - sum, Unit: "ms", Board: board})
	out = append(out, Measurement{Name: "tap to first uplink", Value: tap2join, Unit: "ms", Board: board})
	return out
}

const testLimits = `
name: test
limits:
  - measurement: tap to first uplink
    unit: ms
    high: 1000
    marginal: 10%
  - measurement: phase join
    unit: ms
    high: 990
`

func mustLimits(t *testing.T, y string) *Limits {
	t.Helper()
	l, err := ParseLimits([]byte(y))
	if err != nil {
		t.Fatalf("ParseLimits: %v", err)
	}
	l.Path = "test.yaml"
	return l
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func regexpAll(re, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
