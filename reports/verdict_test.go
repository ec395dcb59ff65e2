package reports

import (
	"os"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func TestParseLimitsMarginalForms(t *testing.T) {
	l := mustLimits(t, `
limits:
  - {measurement: a, unit: ms, high: 1000, marginal: 10%}
  - {measurement: b, unit: ms, low: 100, high: 200, marginal: 10%}
  - {measurement: c, unit: dBm, low: -120, marginal: 5}
  - {measurement: d, unit: ms, low: 10, high: 900, marginal: {low: 20, high: 800}}
  - {measurement: e, unit: ms, high: 5, board: "board-*", optional: true}
`)
	want := []struct{ lo, hi string }{{"", "> 900"}, {"< 110", "> 190"}, {"< -115", ""}, {"< 20", "> 800"}, {"", ""}}
	for i, w := range want {
		got := l.Entries[i].MarginalString()
		for _, part := range []string{w.lo, w.hi} {
			if part != "" && !strings.Contains(got, part) {
				t.Errorf("%s: marginal %q, want it to contain %q", l.Entries[i].Measurement, got, part)
			}
		}
		if w.lo == "" && w.hi == "" && got != "" {
			t.Errorf("%s: marginal %q, want none", l.Entries[i].Measurement, got)
		}
	}
}

func TestParseLimitsRejectsBadFiles(t *testing.T) {
	expectLimitsRejected(t, map[string]string{
		"unknown key":       "limits:\n  - {measurement: a, unit: ms, hihg: 3}",
		"no bounds":         "limits:\n  - {measurement: a, unit: ms}",
		"no unit":           "limits:\n  - {measurement: a, high: 3}",
		"low above high":    "limits:\n  - {measurement: a, unit: ms, low: 5, high: 3}",
		"bad percent":       "limits:\n  - {measurement: a, unit: ms, high: 3, marginal: 150%}",
		"marginal outside":  "limits:\n  - {measurement: a, unit: ms, high: 3, marginal: {high: 4}}",
		"marginal no limit": "limits:\n  - {measurement: a, unit: ms, high: 3, marginal: {low: 1}}",
		"empty":             "name: x",
		"bad glob":          "limits:\n  - {measurement: a, unit: ms, high: 3, board: \"[\"}",
	})
}

// expectLimitsRejected checks that ParseLimits refuses every named file.
func expectLimitsRejected(t *testing.T, files map[string]string) {
	t.Helper()
	for name, y := range files {
		if _, err := ParseLimits([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerdictPasses(t *testing.T) {
	o := Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...)), mustLimits(t, testLimits))
	if o.Status != StatusPass || len(o.Violations) != 0 {
		t.Fatalf("verdict %s, violations %v", o.Status, o.Violations)
	}
	if len(o.Checks) != 2 || len(o.Unchecked) != 4 {
		t.Fatalf("checks %d unchecked %d, want 2 and 4", len(o.Checks), len(o.Unchecked))
	}
}

func TestVerdictFailsNamingTheMeasurement(t *testing.T) {
	o := Verdict(report(spec("joins", types.SpecStatePassed, flow("board-2", 1234.5)...)), mustLimits(t, testLimits))
	if o.Status != StatusFail {
		t.Fatalf("verdict %s, want FAIL", o.Status)
	}
	var found bool
	for _, v := range o.Violations {
		if v.Kind == KindLimit && v.Measurement == "tap to first uplink" {
			found = true
			if v.Board != "board-2" || v.Value != 1234.5 || !strings.Contains(v.Limit, "1000") {
				t.Errorf("violation %+v", v)
			}
			for _, s := range []string{"tap to first uplink", "board-2", "1234.5", "above high limit 1000 ms"} {
				if !strings.Contains(v.Message, s) {
					t.Errorf("message %q does not name %q", v.Message, s)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no violation names tap to first uplink: %v", o.Violations)
	}
}

func TestVerdictMarginalPasses(t *testing.T) {
	o := Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 950)...)), mustLimits(t, testLimits))
	if o.Status != StatusMarginal || !o.Status.Passed() {
		t.Fatalf("verdict %s, want MARGINAL (passing): %v", o.Status, o.Violations)
	}
	m := o.Marginals()
	if len(m) != 1 || m[0].Measurement.Name != "tap to first uplink" || !strings.Contains(m[0].Reason, "high limit 1000") {
		t.Fatalf("marginals %+v", m)
	}
	// The limit itself is inclusive.
	o = Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 1000)...)), mustLimits(t, testLimits))
	if !o.Status.Passed() {
		t.Fatalf("value on the limit: %s %v", o.Status, o.Violations)
	}
}

func TestVerdictMissingMeasurementIsAnError(t *testing.T) {
	y := testLimits + "  - measurement: rssi\n    unit: dBm\n    low: -120\n"
	o := Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...)), mustLimits(t, y))
	if o.Status != StatusFail || len(o.Violations) != 1 || o.Violations[0].Kind != KindMissing ||
		!strings.Contains(o.Violations[0].Message, `no measurement named "rssi"`) {
		t.Fatalf("verdict %s %v", o.Status, o.Violations)
	}
	o = Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...)), mustLimits(t, y+"    optional: true\n"))
	if o.Status != StatusPass {
		t.Fatalf("optional limit: %s %v", o.Status, o.Violations)
	}
}

func TestVerdictFailedSpecFails(t *testing.T) {
	bad := spec("does not join", types.SpecStateFailed, flow("board-1", 300)[:3]...)
	bad.Failure = types.Failure{Message: "phase \"join\" failed: MIC mismatch\nmore", Location: types.CodeLocation{FileName: "/repo/x_test.go", LineNumber: 42}}
	o := Verdict(report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), bad), mustLimits(t, testLimits))
	if o.Status != StatusFail || o.Specs.Failed != 1 || o.Specs.Passed != 1 {
		t.Fatalf("verdict %s specs %+v", o.Status, o.Specs)
	}
	v := o.Violations[0]
	if v.Kind != KindSpec || !strings.Contains(v.Message, "does not join") || !strings.Contains(v.Message, "MIC mismatch") ||
		!strings.Contains(v.Message, "x_test.go:42") || strings.Contains(v.Message, "more") {
		t.Fatalf("violation %q", v.Message)
	}
}

func TestVerdictNothingRanFails(t *testing.T) {
	o := Verdict(report(spec("skipped", types.SpecStateSkipped)), mustLimits(t, "limits:\n  - {measurement: x, unit: ms, high: 1, optional: true}"))
	if o.Status != StatusFail || o.Violations[0].Kind != KindSuite {
		t.Fatalf("verdict %s %v", o.Status, o.Violations)
	}
	r := report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))
	r.SpecialSuiteFailureReasons = []string{"Failed to compile"}
	r.SuiteSucceeded = false
	if o := Verdict(r, mustLimits(t, testLimits)); o.Status != StatusFail || !strings.Contains(o.Violations[0].Message, "Failed to compile") {
		t.Fatalf("verdict %s %v", o.Status, o.Violations)
	}
}

func TestVerdictBoardFilterAndUnits(t *testing.T) {
	l := mustLimits(t, `
limits:
  - {measurement: tap to first uplink, unit: s, high: 1}
  - {measurement: tap to first uplink, unit: ms, high: 100, board: "lab-*"}
  - {measurement: rssi, unit: dBm, low: -100}
`)
	ms := append(flow("board-1", 500), Measurement{Name: "rssi", Value: -60, Unit: "dB", Board: "board-1"})
	o := Verdict(report(spec("joins", types.SpecStatePassed, ms...)), l)
	// tap to first uplink (500 ms) passes the 1 s limit; the lab-* limit does not
	// apply to board-1 and is reported missing; rssi's unit does not compare.
	var kinds []string
	for _, v := range o.Violations {
		kinds = append(kinds, v.Kind)
	}
	if strings.Join(kinds, ",") != "unit,missing" {
		t.Fatalf("violations %v", o.Violations)
	}
	if o.Checks[0].Value != 0.5 || o.Checks[0].Status != StatusPass {
		t.Fatalf("converted check %+v", o.Checks[0])
	}
}

func TestTighteningALimitFlipsTheVerdict(t *testing.T) {
	r := report(spec("joins", types.SpecStatePassed, append(flow("board-1", 210), flow("board-2", 230)...)...))
	if o := Verdict(r, mustLimits(t, testLimits)); o.Status != StatusPass {
		t.Fatalf("before: %s %v", o.Status, o.Violations)
	}
	tight := strings.Replace(testLimits, "high: 1000", "high: 220", 1)
	o := Verdict(r, mustLimits(t, tight))
	if o.Status != StatusFail || len(o.Violations) != 1 {
		t.Fatalf("after: %s %v", o.Status, o.Violations)
	}
	if v := o.Violations[0]; v.Measurement != "tap to first uplink" || v.Board != "board-2" {
		t.Fatalf("violation %+v", v)
	}
}

func TestMergeKeepsEverySuite(t *testing.T) {
	a := report(spec("a", types.SpecStatePassed, flow("board-1", 300)...))
	b := report(spec("b", types.SpecStateFailed))
	b.SuitePath = "/repo/suites/other"
	b.SpecialSuiteFailureReasons = []string{"Interrupted"}
	m := Merge([]types.Report{a, b})
	if m.SuiteSucceeded || len(m.SpecReports) != 2 || m.SpecialSuiteFailureReasons[0] != "/repo/suites/other: Interrupted" {
		t.Fatalf("merged %+v", m)
	}
}

func TestGateResolvesLimitsAndNamesViolations(t *testing.T) {
	r := report(spec("joins", types.SpecStatePassed, flow("board-1", 1500)...))
	o, text, err := Gate(r, "emulated")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != StatusFail || !strings.Contains(text, "VIOLATION limit: tap to first uplink on board-1 = 1500 ms") ||
		!strings.Contains(text, "reports/limits/emulated.yaml") {
		t.Fatalf("gate: %s\n%s", o.Status, text)
	}
	p := t.TempDir() + "/loose.yaml"
	if err := os.WriteFile(p, []byte("limits:\n  - {measurement: tap to first uplink, unit: s, high: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LimitsEnv, p)
	if o, text, err := Gate(r, "emulated"); err != nil || o.Status != StatusPass {
		t.Fatalf("with %s=%s: %v %s %s", LimitsEnv, p, err, o.Status, text)
	}
	t.Setenv(LimitsEnv, "no-such-limits")
	if _, _, err := Gate(r, "emulated"); err == nil {
		t.Fatal("a missing limits file passed the gate")
	}
}
