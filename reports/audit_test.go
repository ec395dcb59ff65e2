package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"html"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// outputs renders the three outputs of a run.
func outputs(t *testing.T, run *Run) (junit, page, md string) {
	t.Helper()
	var j, h, m bytes.Buffer
	if err := run.WriteJUnit(&j); err != nil {
		t.Fatal(err)
	}
	if err := run.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if err := run.WriteMarkdown(&m); err != nil {
		t.Fatal(err)
	}
	return j.String(), h.String(), m.String()
}

func parseJUnit(t *testing.T, s string) reporters.JUnitTestSuites {
	t.Helper()
	var got reporters.JUnitTestSuites
	if err := xml.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	return got
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// entry is a report entry as read back from a JSON report.
func entry(name string, v any) types.ReportEntry {
	raw, _ := json.Marshal(v)
	return types.ReportEntry{Name: name, Time: t0, Value: types.ReportEntryValue{AsJSON: string(raw)}}
}

func ptr[T any](v T) *T { return &v }

func TestRunMetadataInEveryOutput(t *testing.T) {
	s := spec("joins", types.SpecStatePassed, flow("board-1", 300)...)
	s.ReportEntries = append(s.ReportEntries, entry("firmware board-1", "1.3.1 (Nov 23 2026)"))
	meta := &RunMeta{RunID: "20261206T101500Z-ab12", Mode: "emulate", Status: RunCompleted,
		Started: "2026-12-06T10:15:00Z", Finished: "2026-12-06T10:21:52Z", DurationS: ptr(412.0), GinkgoExit: ptr(0),
		GitCommit: "93ba2ee0c0ffee", GitDirty: ptr(true), Host: "runner-7", GoVersion: "go1.26.8",
		PcscdVersion: "2.3.0", ChirpStackVersion: "4.9.0", LabelFilter: "!needs:docker", Rig: "rigs/emulated.yaml", RigName: "emulated"}
	run := Assemble(Inputs{Reports: []types.Report{report(s)}, Limits: mustLimits(t, testLimits), Run: meta})
	j, h, md := outputs(t, run)

	contains(t, "report.html", html.UnescapeString(h), `id="run"`, "20261206T101500Z-ab12",
		"93ba2ee0c0ffee (dirty: uncommitted changes)", "Firmware board-1</th><td>1.3.1 (Nov 23 2026)",
		"runner-7", "go1.26.8", "4.9.0", "2.3.0", "412 s (6m52s)", "Ginkgo exit status")
	contains(t, "summary.md", md, "| Run | 20261206T101500Z-ab12 |", "| Git commit | 93ba2ee0c0ffee (dirty: uncommitted changes) |",
		"| Firmware board-1 | 1.3.1 (Nov 23 2026) |", "| Host | runner-7 |", "| pcscd | 2.3.0 |", "| ChirpStack | 4.9.0 |",
		"| Duration | 412 s (6m52s) |", "| Run status | completed |")
	got := parseJUnit(t, j)
	for _, suite := range got.TestSuites {
		for name, want := range map[string]string{
			"run.id": "20261206T101500Z-ab12", "git.dirty": "true", "firmware.board-1": "1.3.1 (Nov 23 2026)",
			"host": "runner-7", "go.version": "go1.26.8", "run.duration_s": "412 s (6m52s)", "label_filter": "!needs:docker",
		} {
			if v := suite.Properties.WithName(name); v != want {
				t.Errorf("testsuite %q: property %s = %q, want %q", suite.Name, name, v, want)
			}
		}
	}
}

func TestMetadataToleratesAbsentFirmwareAndRunJSON(t *testing.T) {
	run := NewRun([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))}, mustLimits(t, testLimits), nil, nil)
	_, h, md := outputs(t, run)
	contains(t, "summary.md", md, "| Firmware | (not reported) |", "| Run status | (no run.json) |", "| Git commit | (unknown) |",
		"| Started | 2026-01-02T03:04:05Z |")
	contains(t, "report.html", h, "(not reported)")
}

func TestFirmwarePerBoard(t *testing.T) {
	a := spec("a", types.SpecStatePassed)
	a.ReportEntries = types.ReportEntries{entry("firmware board-1", "1.3.1"), entry("firmware board-2", "1.3.1")}
	b := spec("b", types.SpecStatePassed)
	// In process (a ReportAfterSuite node) the value is the string itself.
	b.ReportEntries = types.ReportEntries{{Name: "firmware board-1", Value: types.WrapEntryValue("1.3.1-faults")}, entry("firmware board-2", "1.3.1")}
	fw := Firmware([]types.Report{report(a, b)})
	if strings.Join(fw["board-1"], ",") != "1.3.1,1.3.1-faults" || strings.Join(fw["board-2"], ",") != "1.3.1" || len(fw) != 2 {
		t.Fatalf("firmware %v", fw)
	}
}

func TestLimitsChangedSinceTheRunIsAWarning(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/l.yaml"
	writeFile(t, p, testLimits)
	l, err := LoadLimits(p)
	if err != nil {
		t.Fatal(err)
	}
	run := Assemble(Inputs{Reports: []types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))}, Limits: l,
		Run: &RunMeta{Status: RunCompleted, LimitsSHA256: "00aa"}})
	if len(run.Meta.Warnings) != 1 || !strings.Contains(run.Meta.Warnings[0], "the limits file changed since the run: run.json says sha256 00aa") {
		t.Fatalf("warnings %v", run.Meta.Warnings)
	}
	if run.Meta.LimitsSHA256Judged != FileSHA256(p) || len(run.Meta.LimitsSHA256Judged) != 64 {
		t.Fatalf("judged sha %q", run.Meta.LimitsSHA256Judged)
	}
}

func TestParseRunMeta(t *testing.T) {
	m, err := ParseRunMeta([]byte(`{"run_id":"x","status":"interrupted","duration_s":1.5,"ginkgo_exit":130,"git_dirty":false,"future_field":1}`))
	if err != nil || m.Status != RunInterrupted || *m.DurationS != 1.5 || *m.GinkgoExit != 130 || *m.GitDirty {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{``, `{"status":"done"}`, `not json`, `{"duration_s":"long"}`} {
		if _, err := ParseRunMeta([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

const notRunLimits = `
limits:
  - {measurement: tap to first uplink, unit: ms, high: 1000}
  - {measurement: ftm write 1 B, suite: ftm, unit: ms, high: 5}
  - {measurement: rssi, spec: "*measures the radio", unit: dBm, low: -120}
  - {measurement: snr, spec: "*reports the link", unit: dB, low: -20}
  - {measurement: phase join, spec: "*does not join", unit: ms, high: 990}
`

func TestNotRunIsNotAViolation(t *testing.T) {
	skipped := spec("measures the radio", types.SpecStateSkipped)
	passedWithout := spec("reports the link", types.SpecStatePassed)
	failed := spec("does not join", types.SpecStateFailed)
	failed.Failure.Message = "MIC mismatch"
	o := Judge([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), skipped, passedWithout, failed)},
		mustLimits(t, notRunLimits), Options{})

	reasons := map[string]string{}
	for _, n := range o.NotRun {
		reasons[n.Limit.Measurement] = n.Reason
	}
	for m, want := range map[string]string{
		"ftm write 1 B": "its suite ftm did not run (not in the report)",
		"rssi":          `spec "provisioning measures the radio" did not run (skipped or pending)`,
		"phase join":    `spec "provisioning does not join" failed before recording it (see the spec violation)`,
	} {
		if reasons[m] != want {
			t.Errorf("%s: not run %q, want %q", m, reasons[m], want)
		}
	}
	var kinds []string
	for _, v := range o.Violations {
		kinds = append(kinds, v.Kind)
		if v.Kind == KindMissing && !strings.Contains(v.Message, `no measurement named "snr" (limit ≥ -20 dB (spec *reports the link)): spec "provisioning reports the link" passed without recording it`) {
			t.Errorf("missing: %q", v.Message)
		}
	}
	// The failed spec and the measurement its passing spec did not record;
	// neither the skipped spec's nor the absent suite's limits.
	if strings.Join(kinds, ",") != "spec,missing" || len(o.NotRun) != 3 {
		t.Fatalf("violations %v, not run %d", o.Violations, len(o.NotRun))
	}
	if !strings.Contains(o.Line(), "3 limits not run") {
		t.Errorf("line %q", o.Line())
	}

	// Without the failing specs the run passes: not run is no violation.
	o = Judge([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), skipped)}, mustLimits(t, notRunLimits), Options{})
	var missing []string
	for _, v := range o.Violations {
		missing = append(missing, v.Message)
	}
	// snr and phase join name specs that are not in the report at all.
	if o.Status != StatusPass || len(o.NotRun) != 4 {
		t.Fatalf("%s %v, not run %+v", o.Status, missing, o.NotRun)
	}
}

func TestNotRunInEveryOutput(t *testing.T) {
	run := NewRun([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))}, mustLimits(t, notRunLimits), nil, nil)
	j, h, md := outputs(t, run)
	contains(t, "summary.md", md, "## Not run", "| ftm write 1 B | ≤ 5 ms (suite ftm) | NOT RUN: its suite ftm did not run (not in the report) |")
	contains(t, "report.html", h, `id="notrun"`, `<td class="status-not-run">NOT RUN</td><td>its suite ftm did not run (not in the report)</td>`)
	contains(t, "junit.xml", j, `<testcase name="ftm write 1 B ≤ 5 ms (suite ftm)" classname="release gate" status="not run" time="0">`,
		`<skipped message="NOT RUN: its suite ftm did not run (not in the report)"></skipped>`)
}

func TestUnattributedMissingMeasurement(t *testing.T) {
	y := "limits:\n  - {measurement: rssi, unit: dBm, low: -120}\n"
	r := []types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))}
	// A complete run: whoever records rssi ran and did not.
	o := Judge(r, mustLimits(t, y), Options{})
	if o.Status != StatusFail || o.Violations[0].Kind != KindMissing || !strings.Contains(o.Violations[0].Message, "name it in the limit with spec: or suite:") {
		t.Fatalf("%s %v", o.Status, o.Violations)
	}
	// An interrupted run: it may simply not have got there.
	o = Judge(r, mustLimits(t, y), Options{RunStatus: RunInterrupted, RunDetail: "SIGINT"})
	if o.Status != StatusInterrupted || len(o.NotRun) != 1 || o.NotRun[0].Reason != "not recorded before the run stopped" {
		t.Fatalf("%s %v %+v", o.Status, o.Violations, o.NotRun)
	}
	// A baseline says which spec records it: skipped now, so not run.
	base := report(spec("measures the radio", types.SpecStatePassed, Measurement{Name: "rssi", Value: -60, Unit: "dBm"}))
	r = []types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), spec("measures the radio", types.SpecStateSkipped))}
	o = Judge(r, mustLimits(t, y), Options{Baseline: []types.Report{base}})
	if o.Status != StatusPass || len(o.NotRun) != 1 || !strings.Contains(o.NotRun[0].Reason, `"provisioning measures the radio" did not run`) {
		t.Fatalf("%s %v %+v", o.Status, o.Violations, o.NotRun)
	}
}

func TestResultsAreKeyedBySpecMeasurementAndBoard(t *testing.T) {
	m := Measurement{Name: "tap to first uplink", Value: 20, Unit: "ms", Board: "board-1"}
	first := spec("joins", types.SpecStatePassed, m)
	second := spec("rejoins", types.SpecStatePassed, m, m) // the same measurement twice in one spec
	y := `
limits:
  - {measurement: tap to first uplink, unit: ms, high: 1000}
  - {measurement: tap to first uplink, spec: "*rejoins", unit: ms, high: 10}
`
	run := NewRun([]types.Report{report(first, second)}, mustLimits(t, y), nil, nil)
	o := run.Outcome
	if len(o.Checks) != 5 {
		t.Fatalf("%d checks, want 5 (3 measurements, the spec-narrowed limit on 2)", len(o.Checks))
	}
	if o.Checks[0].Key() != `tap to first uplink [board-1] in "provisioning joins"` {
		t.Fatalf("key %q", o.Checks[0].Key())
	}
	var fails []string
	for _, v := range o.Violations {
		fails = append(fails, v.Spec)
	}
	if strings.Join(fails, "|") != "provisioning rejoins|provisioning rejoins" {
		t.Fatalf("violations %v", o.Violations)
	}
	j, _, md := outputs(t, run)
	got := parseJUnit(t, j)
	gate := got.TestSuites[len(got.TestSuites)-1]
	seen := map[string]bool{}
	for _, tc := range gate.TestCases {
		if seen[tc.Name] {
			t.Errorf("duplicate testcase name %q", tc.Name)
		}
		seen[tc.Name] = true
	}
	for _, want := range []string{
		`tap to first uplink [board-1] ≤ 1000 ms in "provisioning joins"`,
		`tap to first uplink [board-1] ≤ 1000 ms in "provisioning rejoins"`,
		`tap to first uplink [board-1] ≤ 1000 ms in "provisioning rejoins" #2`,
		`tap to first uplink [board-1] ≤ 10 ms (spec *rejoins) in "provisioning rejoins"`,
	} {
		if !seen[want] {
			t.Errorf("no testcase %q in %v", want, seen)
		}
	}
	contains(t, "summary.md", md, "| tap to first uplink | board-1 | provisioning rejoins | 20 ms | ≤ 10 ms (spec \\*rejoins) | FAIL: above high limit 10 ms")
}

func TestSpecTestcaseNamesAreUnique(t *testing.T) {
	run := NewRun([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), spec("joins", types.SpecStatePassed))}, mustLimits(t, testLimits), nil, nil)
	j, _, _ := outputs(t, run)
	suite := parseJUnit(t, j).TestSuites[0]
	if suite.TestCases[0].Name != "[It] provisioning joins" || suite.TestCases[1].Name != "[It] provisioning joins #2" {
		t.Fatalf("names %q %q", suite.TestCases[0].Name, suite.TestCases[1].Name)
	}
}

func oneMeasurement(text string, name string, v float64, unit string) types.Report {
	return report(spec(text, types.SpecStatePassed, Measurement{Name: name, Value: v, Unit: unit, Board: "board-1"}))
}

// The done-when: a 20 % slower measurement is marked, and fails when
// the limits file declares a 10 % tolerance.
func TestBaselineMarksA20PercentSlowerMeasurement(t *testing.T) {
	base := []types.Report{oneMeasurement("joins", "tap to first uplink", 200, "ms")}
	cur := []types.Report{oneMeasurement("joins", "tap to first uplink", 240, "ms")}
	const lim = "limits:\n  - {measurement: tap to first uplink, unit: ms, high: 1000}\n"

	o := Judge(cur, mustLimits(t, lim), Options{Baseline: base})
	if o.Status != StatusPass || o.Checks[0].Baseline == nil || o.Checks[0].Baseline.Text() != "+20% (+40 ms) worse" || o.Checks[0].Baseline.Regression {
		t.Fatalf("without a tolerance: %s %+v", o.Status, o.Checks[0].Baseline)
	}
	run := Assemble(Inputs{Reports: cur, Limits: mustLimits(t, lim), Baseline: base, BaselinePath: "old/report.json"})
	j, h, md := outputs(t, run)
	contains(t, "summary.md", md, "Compared with the baseline run `old/report.json`",
		"| tap to first uplink | board-1 | provisioning joins | 240 ms | 200 ms | +20% (+40 ms) worse | ≤ 1000 ms | PASS |")
	contains(t, "report.html", html.UnescapeString(h), `<td class="num">200 ms</td><td class="num delta-worse">+20% (+40 ms) worse</td>`)
	contains(t, "junit.xml", j, `<property name="baseline: tap to first uplink [board-1]" value="200 ms → 240 ms: +20% (+40 ms) worse"></property>`)

	tol := "regression: 10%\n" + lim
	o = Judge(cur, mustLimits(t, tol), Options{Baseline: base})
	if o.Status != StatusFail || len(o.Violations) != 1 || o.Violations[0].Kind != KindRegression {
		t.Fatalf("with 10%%: %s %v", o.Status, o.Violations)
	}
	const msg = `tap to first uplink on board-1 = 240 ms, baseline 200 ms: +20% (+40 ms) worse, beyond the regression tolerance 10%; spec "provisioning joins"`
	if o.Violations[0].Message != msg {
		t.Fatalf("message %q\nwant    %q", o.Violations[0].Message, msg)
	}
	run = Assemble(Inputs{Reports: cur, Limits: mustLimits(t, tol), Baseline: base, BaselinePath: "old/report.json"})
	j, h, md = outputs(t, run)
	contains(t, "summary.md", md, "**+20% (+40 ms) worse: REGRESSION (tolerance 10%)**", "- **regression**: ")
	contains(t, "report.html", html.UnescapeString(h), "+20% (+40 ms) worse REGRESSION (tolerance 10%)")
	contains(t, "junit.xml", j, `status="regression"`, `<failure message="regression: +20% (+40 ms) worse" type="regression">`)

	// A per-limit tolerance overrides the file's.
	o = Judge(cur, mustLimits(t, "regression: 10%\nlimits:\n  - {measurement: tap to first uplink, unit: ms, high: 1000, regression: 25%}\n"), Options{Baseline: base})
	if o.Status != StatusPass {
		t.Fatalf("with 25%% on the limit: %s %v", o.Status, o.Violations)
	}
	// An absolute one, in the limit's unit.
	o = Judge(cur, mustLimits(t, "limits:\n  - {measurement: tap to first uplink, unit: ms, high: 1000, regression: 30}\n"), Options{Baseline: base})
	if o.Status != StatusFail || !strings.Contains(o.Violations[0].Message, "beyond the regression tolerance 30 ms") {
		t.Fatalf("with 30 ms: %s %v", o.Status, o.Violations)
	}
	// Faster is not a regression.
	o = Judge(base, mustLimits(t, tol), Options{Baseline: cur})
	if o.Status != StatusPass || o.Checks[0].Baseline.Text() != "-16.667% (-40 ms) better" {
		t.Fatalf("faster: %s %+v", o.Status, o.Checks[0].Baseline)
	}
}

func TestBaselineDirectionFollowsTheLimit(t *testing.T) {
	const lim = "regression: 10%\nlimits:\n  - {measurement: fleet devices/s, unit: devices/s, low: 20}\n"
	base := []types.Report{oneMeasurement("fleet", "fleet devices/s", 200, "devices/s")}
	// With a low limit, lower is worse.
	o := Judge([]types.Report{oneMeasurement("fleet", "fleet devices/s", 150, "devices/s")}, mustLimits(t, lim), Options{Baseline: base})
	if o.Status != StatusFail || o.Checks[0].Baseline.Text() != "-25% (-50 devices/s) worse" {
		t.Fatalf("slower fleet: %s %+v", o.Status, o.Checks[0].Baseline)
	}
	o = Judge([]types.Report{oneMeasurement("fleet", "fleet devices/s", 300, "devices/s")}, mustLimits(t, lim), Options{Baseline: base})
	if o.Status != StatusPass || o.Checks[0].Baseline.Direction != "better" {
		t.Fatalf("faster fleet: %s %+v", o.Status, o.Checks[0].Baseline)
	}
	// Units convert; a measurement of another spec has no baseline.
	o = Judge([]types.Report{oneMeasurement("fleet", "fleet devices/s", 200, "devices/s"), oneMeasurement("other", "fleet devices/s", 1, "devices/s")},
		mustLimits(t, lim), Options{Baseline: base})
	if o.Checks[0].Baseline == nil || o.Checks[0].Baseline.Text() != "0% (0 devices/s)" || o.Checks[1].Baseline != nil {
		t.Fatalf("%+v %+v", o.Checks[0].Baseline, o.Checks[1].Baseline)
	}
	o = Judge([]types.Report{oneMeasurement("joins", "t", 0.3, "s")}, mustLimits(t, "limits:\n  - {measurement: t, unit: ms, high: 1000}\n"),
		Options{Baseline: []types.Report{oneMeasurement("joins", "t", 200, "ms")}})
	if d := o.Checks[0].Baseline; d == nil || d.Text() != "+50% (+100 ms) worse" {
		t.Fatalf("converted: %+v", d)
	}
}

func TestRegressionToleranceParsing(t *testing.T) {
	l := mustLimits(t, "regression: 10%\nlimits:\n  - {measurement: a, unit: ms, high: 1, regression: off}\n  - {measurement: b, unit: ms, high: 1, regression: 5}\n")
	if effectiveTolerance(l, l.Entries[0]) != nil || effectiveTolerance(l, l.Entries[1]).Abs != 5 || l.Regression.Percent != 10 {
		t.Fatalf("tolerances %+v %+v", l.Entries[0].Regression, l.Entries[1].Regression)
	}
	expectLimitsRejected(t, map[string]string{
		"absolute default": "regression: 10\nlimits:\n  - {measurement: a, unit: ms, high: 1}",
		"negative":         "limits:\n  - {measurement: a, unit: ms, high: 1, regression: -5%}",
		"words":            "limits:\n  - {measurement: a, unit: ms, high: 1, regression: lots}",
	})
}

func TestMarginalIsNotGreenInJUnit(t *testing.T) {
	run := NewRun([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 950)...))}, mustLimits(t, testLimits), nil, nil)
	if run.Outcome.Status != StatusMarginal {
		t.Fatalf("status %s", run.Outcome.Status)
	}
	j, _, _ := outputs(t, run)
	contains(t, "junit.xml", j,
		`<skipped message="MARGINAL: tap to first uplink on board-1 = 950 ms: within 100 ms of high limit 1000 ms"></skipped>`,
		`<system-err>MARGINAL: tap to first uplink on board-1 = 950 ms: within 100 ms of high limit 1000 ms</system-err>`,
		`<skipped message="MARGINAL (specs: 1 passed, 0 failed, 0 skipped; 2 measurements checked, 1 marginal)"></skipped>`)
	got := parseJUnit(t, j)
	gate := got.TestSuites[1]
	if gate.Failures != 0 || gate.Errors != 0 || gate.Skipped != 2 {
		t.Fatalf("gate: %d failures, %d errors, %d skipped", gate.Failures, gate.Errors, gate.Skipped)
	}
	// The spec itself passed: its testcase is not skipped, but says why.
	tc := got.TestSuites[0].TestCases[0]
	if tc.Skipped != nil || tc.Failure != nil || !strings.HasPrefix(tc.SystemErr, "MARGINAL: tap to first uplink") {
		t.Fatalf("spec testcase %+v", tc)
	}
}

func TestInterruptedAndBrokenRuns(t *testing.T) {
	r := []types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...), spec("rejoins", types.SpecStateSkipped))}
	run := Assemble(Inputs{Reports: r, Limits: mustLimits(t, testLimits), Run: &RunMeta{Status: RunInterrupted, Detail: "SIGINT during suites/lorawan"}})
	if run.Outcome.Status != StatusInterrupted || run.Outcome.Status.Passed() {
		t.Fatalf("status %s", run.Outcome.Status)
	}
	j, h, md := outputs(t, run)
	const line = "INTERRUPTED: SIGINT during suites/lorawan (specs: 1 passed, 0 failed, 1 skipped; 2 measurements checked, 0 marginal)"
	contains(t, "summary.md", md, "# tap2join run: ⏹️ INTERRUPTED", "**Verdict: "+line+"**", "## The run did not complete",
		"    specs that ran (1):\n      [passed] provisioning joins\n    specs that did not run (1):\n      [skipped] provisioning rejoins")
	contains(t, "report.html", h, `class="verdict interrupted"`, `id="incomplete"`)
	contains(t, "junit.xml", j, `<error message="`+line+`" type="interrupted">`)

	// Ginkgo's own record of an interruption counts too.
	ri := report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))
	ri.SpecialSuiteFailureReasons = []string{"Interrupted by User"}
	ri.SuiteSucceeded = false
	if o := Judge([]types.Report{ri}, mustLimits(t, testLimits), Options{}); o.Status != StatusInterrupted || o.Detail != "Interrupted by User (Provisioning)" {
		t.Fatalf("ginkgo interrupted: %s %q", o.Status, o.Detail)
	}
	// A signal while Ginkgo compiled a suite (seen with Ctrl-C on a
	// two-suite run: the report has only the other suite's specs).
	rc := types.Report{SuitePath: "/repo/suites/lorawan", SpecialSuiteFailureReasons: []string{"Failed to compile lorawan:\n\nsignal: interrupt"}}
	if o := Judge([]types.Report{report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...)), rc}, mustLimits(t, testLimits), Options{}); o.Status != StatusInterrupted ||
		o.Detail != "Failed to compile lorawan: signal: interrupt (/repo/suites/lorawan)" {
		t.Fatalf("compile interrupted: %s %q", o.Status, o.Detail)
	}
	if got := specsRan([]types.Report{rc}); !strings.Contains(got, "suites that ran no spec (1):\n  /repo/suites/lorawan: Failed to compile lorawan: signal: interrupt") {
		t.Fatalf("specs ran: %s", got)
	}
	// A suite timeout is a failure, not an interruption.
	ri.SpecialSuiteFailureReasons = []string{"Suite Timeout Elapsed"}
	if o := Judge([]types.Report{ri}, mustLimits(t, testLimits), Options{}); o.Status != StatusFail {
		t.Fatalf("timeout: %s", o.Status)
	}

	run = Assemble(Inputs{Broken: []string{"report: open out/x/report.json: no such file or directory"}})
	if run.Outcome.Status != StatusBroken {
		t.Fatalf("status %s", run.Outcome.Status)
	}
	j, h, md = outputs(t, run)
	contains(t, "summary.md", md, "# tap2join run: 🛑 BROKEN", "BROKEN: report: open out/x/report.json: no such file or directory", "no report: no spec is known to have run")
	contains(t, "report.html", h, `class="verdict broken"`)
	contains(t, "junit.xml", j, `type="broken"`)
}

func TestPartialReportIsSalvaged(t *testing.T) {
	a, b := report(spec("a", types.SpecStatePassed)), report(spec("b", types.SpecStatePassed))
	b.SuiteDescription = "LoRaWAN"
	raw, _ := json.Marshal([]types.Report{a, b})
	cut := raw[:len(raw)-40]
	p := t.TempDir() + "/report.json"
	writeFile(t, p, string(cut))
	rs, err := ReadReports(p)
	if err == nil || !strings.Contains(err.Error(), "is partial: only its first 1 suite could be read") || len(rs) != 1 || rs[0].SuiteDescription != "Provisioning" {
		t.Fatalf("%d suites, %v", len(rs), err)
	}
	writeFile(t, p, "garbage")
	if rs, err := ReadReports(p); err == nil || rs != nil {
		t.Fatalf("garbage: %v %v", rs, err)
	}
}

func TestBulletChartExtendsItsAxisToTheValue(t *testing.T) {
	l := mustLimits(t, "limits:\n  - {measurement: x, unit: ms, high: 1000, marginal: 10%}\n")
	o := Verdict(report(spec("s", types.SpecStatePassed, Measurement{Name: "x", Value: 5000, Unit: "ms", Board: "b"})), l)
	svg := bulletSVG(o.Checks)
	contains(t, "bullet chart", svg, ">5000 ms FAIL<", ">high 1000<", ">marginal 900<", ">6000<", ">0<", ">ms<", "x: ≤ 1000 ms (marginal &gt; 900 ms)")
	// Three values under one limit share a scale (the 206, 151 and
	// 111 devices/s on one spot).
	l = mustLimits(t, "limits:\n  - {measurement: d, unit: devices/s, low: 20}\n")
	var ms []Measurement
	for _, v := range []float64{206, 151, 111} {
		ms = append(ms, Measurement{Name: "d", Value: v, Unit: "devices/s", Board: "p"})
	}
	o = Verdict(report(spec("s", types.SpecStatePassed, ms...)), l)
	svg = bulletSVG(o.Checks)
	xs := regexpAll(`<rect x="([0-9.]+)" y="[0-9.]+" width="3"`, svg)
	if len(xs) != 3 || xs[0] == xs[1] || xs[1] == xs[2] {
		t.Fatalf("markers at %v", xs)
	}
	if n := strings.Count(svg, `class="axis"/><line`); n < 1 {
		t.Fatalf("no axis")
	}
}

func TestHistogramIsScaledToTheData(t *testing.T) {
	l := mustLimits(t, testLimits)
	svg := histogramSVG("h", []float64{20.4, 21.2, 23.3, 25}, &l.Entries[0])
	contains(t, "histogram", svg, "marginal 900 ms, high 1000 ms (above the data) →", ">20<", ">25<", "4 measurement(s), 20.4 … 25 ms")
	if strings.Contains(svg, ">1000<") {
		t.Error("the histogram's axis reaches the limit, squeezing the data")
	}
	// A limit inside the data is drawn as a line.
	svg = histogramSVG("h", []float64{800, 950, 1200}, &l.Entries[0])
	contains(t, "histogram", svg, `class="limit"><title>high 1000 ms</title>`, `class="marginal"><title>marginal 900 ms</title>`)
}

func TestTranscriptsArePreformatted(t *testing.T) {
	ok := spec("joins", types.SpecStatePassed, flow("board-1", 300)...)
	ok.ReportEntries = append(ok.ReportEntries, entry("console transcript board-1", "10:06:35.270289 > AT\n10:06:35.275443 < OK\n"))
	bad := spec("fails", types.SpecStateFailed)
	bad.ReportEntries = append(bad.ReportEntries, entry("console transcript board-2", "> AT+JOIN=1\n< +EVT:JOIN_FAILED\n"))
	run := NewRun([]types.Report{report(ok, bad)}, mustLimits(t, testLimits), nil, nil)
	_, h, _ := outputs(t, run)
	contains(t, "report.html", h, `id="transcripts"`,
		"<details><summary>provisioning joins — console transcript board-1</summary><pre>10:06:35.270289 &gt; AT\n10:06:35.275443 &lt; OK\n</pre></details>",
		"white-space:pre;")
	// The failed spec's transcript, in its report entries.
	contains(t, "report.html", html.UnescapeString(h), "<td>console transcript board-2</td><td><pre>> AT+JOIN=1\n< +EVT:JOIN_FAILED\n</pre></td>")
}

func TestSuiteAlternatives(t *testing.T) {
	l := mustLimits(t, "limits:\n  - {measurement: tap to first uplink, suite: provisioning|lorawan, unit: ms, high: 1000}\n")
	fleet := report(spec("fleet", types.SpecStatePassed))
	fleet.SuitePath, fleet.SuiteDescription = "/repo/suites/fleet", "Fleet"
	o := Judge([]types.Report{fleet}, l, Options{})
	if o.Status != StatusPass || len(o.NotRun) != 1 || o.NotRun[0].Reason != "its suite provisioning|lorawan did not run (not in the report)" {
		t.Fatalf("only fleet ran: %s %v %+v", o.Status, o.Violations, o.NotRun)
	}
	lw := report(spec("joins", types.SpecStatePassed, flow("board-1", 300)...))
	lw.SuitePath, lw.SuiteDescription = "/repo/suites/lorawan", "LoRaWAN"
	if o := Judge([]types.Report{fleet, lw}, l, Options{}); o.Status != StatusPass || len(o.Checks) != 1 {
		t.Fatalf("lorawan ran: %s %v", o.Status, o.Violations)
	}
}
