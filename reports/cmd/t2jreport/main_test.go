package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/tap2join/tap2join/reports"
)

// reportJSON is a Ginkgo JSON report with one passing spec that recorded
// tap to first uplink = v ms on board-1, followed by the extra specs.
func reportJSON(t *testing.T, v float64, extra ...types.SpecReport) string {
	t.Helper()
	m := reports.Measurement{Name: "tap to first uplink", Value: v, Unit: "ms", Board: "board-1"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := []types.Report{{
		SuiteDescription: "Provisioning", SuitePath: "/repo/suites/provisioning", SuiteSucceeded: true,
		StartTime: now, EndTime: now.Add(time.Second),
		SpecReports: append(types.SpecReports{{
			LeafNodeType: types.NodeTypeIt, LeafNodeText: "joins", State: types.SpecStatePassed, NumAttempts: 1,
			ReportEntries: types.ReportEntries{{Name: reports.EntryPrefix + m.Name, Time: now,
				Value: types.WrapEntryValue(m)}},
		}}, extra...),
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeReport writes a Ginkgo JSON report with one passing spec that
// recorded tap to first uplink = 207 ms on board-1.
func writeReport(t *testing.T, dir string) string {
	t.Helper()
	return writeText(t, filepath.Join(dir, "report.json"), reportJSON(t, 207))
}

func writeLimits(t *testing.T, dir string, high int) string {
	t.Helper()
	p := filepath.Join(dir, "limits.yaml")
	y := "name: t\nlimits:\n  - measurement: tap to first uplink\n    unit: ms\n    high: " + itoa(high) + "\n"
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestPassWritesTheReports(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"-limits", writeLimits(t, dir, 1000), writeReport(t, dir)}, &out, &errb)
	if code != exitPass {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "verdict: PASS") {
		t.Fatalf("stdout %s", out.String())
	}
	for _, f := range []string{reports.JUnitFile, reports.HTMLFile, reports.MarkdownFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestTightenedLimitFailsNamingTheMeasurement(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"-report", writeReport(t, dir), "-limits", writeLimits(t, dir, 200), "-out", filepath.Join(dir, "o")}, &out, &errb)
	if code != exitFail {
		t.Fatalf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(errb.String(), "VIOLATION limit: tap to first uplink on board-1 = 207 ms: above high limit 200 ms") {
		t.Fatalf("stderr %q", errb.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "o", reports.MarkdownFile))
	if err != nil || !strings.Contains(string(md), "FAIL") {
		t.Fatalf("summary.md: %v %s", err, md)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	rep := writeReport(t, dir)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("limits:\n  - {measurement: x, unit: ms, hihg: 1}\n"), 0o644)
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("not json"), 0o644)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no report":       {nil, "no report"},
		"missing report":  {[]string{"-limits", writeLimits(t, dir, 1), filepath.Join(dir, "nope.json")}, "no such file"},
		"not a report":    {[]string{"-limits", writeLimits(t, dir, 1), garbage}, "not a Ginkgo JSON report"},
		"bad limits":      {[]string{"-limits", bad, rep}, "hihg"},
		"unknown limits":  {[]string{"-limits", "no-such-rig", rep}, "not found"},
		"two reports":     {[]string{rep, rep}, "one report"},
		"unknown flag":    {[]string{"-frobnicate", rep}, "frobnicate"},
		"bad frames file": {[]string{"-limits", writeLimits(t, dir, 1000), "-frames", garbage, rep}, "frames"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != exitUsage {
			t.Errorf("%s: exit %d, want %d", name, code, exitUsage)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: stderr %q lacks %q", name, errb.String(), tc.want)
		}
	}
}

// writeReportValue writes a Ginkgo JSON report with one passing spec that
// recorded tap to first uplink = v ms on board-1, into dir/name.
func writeReportValue(t *testing.T, dir, name string, v float64) string {
	t.Helper()
	b := reportJSON(t, v, types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: "rejoins", State: types.SpecStateSkipped})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return writeText(t, filepath.Join(dir, name), b)
}

func writeText(t *testing.T, p, s string) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(p), err)
	}
	return string(b)
}

// staleOutputs leaves an earlier run's outputs in dir.
func staleOutputs(t *testing.T, dir string) {
	t.Helper()
	for _, f := range reports.OutputFiles {
		writeText(t, filepath.Join(dir, f), "STALE OUTPUT OF AN EARLIER RUN")
	}
}

// expectOutputs checks that all three outputs were written afresh and each
// says want.
func expectOutputs(t *testing.T, dir string, want ...string) {
	t.Helper()
	for _, f := range reports.OutputFiles {
		s := read(t, filepath.Join(dir, f))
		if strings.Contains(s, "STALE") {
			t.Errorf("%s is the earlier run's", f)
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s lacks %q", f, w)
			}
		}
	}
}

func TestRunJSONMetadataAndStatus(t *testing.T) {
	dir := t.TempDir()
	writeReportValue(t, dir, "report.json", 207)
	lim := writeLimits(t, dir, 1000)
	runJSON := writeText(t, filepath.Join(dir, "run.json"), `{"run_id":"r-42","mode":"emulate","status":"completed","git_commit":"93ba2ee","git_dirty":false,
		"host":"runner-7","go_version":"go1.26.8","duration_s":8.1,"ginkgo_exit":0,"limits":"`+lim+`"}`)
	staleOutputs(t, dir)
	var out, errb bytes.Buffer
	// The report is found beside run.json, the limits named by it.
	if code := run([]string{"-run", runJSON}, &out, &errb); code != exitPass {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	expectOutputs(t, dir, "r-42", "93ba2ee (clean)", "runner-7", "go1.26.8")
}

func TestInterruptedRunWritesReportsAndExits3(t *testing.T) {
	dir := t.TempDir()
	writeReportValue(t, dir, "report.json", 207)
	runJSON := writeText(t, filepath.Join(dir, "run.json"), `{"run_id":"r-43","status":"interrupted","detail":"SIGINT while suites/lorawan ran"}`)
	staleOutputs(t, dir)
	var out, errb bytes.Buffer
	code := run([]string{"-run", runJSON, "-limits", writeLimits(t, dir, 1000)}, &out, &errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d: %s", code, exitInterrupted, errb.String())
	}
	if !strings.Contains(out.String(), "verdict: INTERRUPTED: SIGINT while suites/lorawan ran (specs: 1 passed, 0 failed, 1 skipped;") {
		t.Fatalf("stdout %s", out.String())
	}
	expectOutputs(t, dir, "INTERRUPTED", "SIGINT while suites/lorawan ran", "specs that ran (1):", "[passed] joins", "specs that did not run (1):", "[skipped] rejoins")
}

func TestInterruptedWithoutAReportExits3(t *testing.T) {
	dir := t.TempDir()
	runJSON := writeText(t, filepath.Join(dir, "run.json"), `{"status":"interrupted","detail":"SIGTERM before ginkgo wrote its report"}`)
	staleOutputs(t, dir)
	var out, errb bytes.Buffer
	if code := run([]string{"-run", runJSON, "-limits", writeLimits(t, dir, 1000)}, &out, &errb); code != exitInterrupted {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	expectOutputs(t, dir, "INTERRUPTED", "SIGTERM before ginkgo wrote its report", "report.json: no such file or directory")
}

func TestBrokenInputsStillWriteReportsAndExit2(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(t *testing.T, dir string) []string
		want  []string
	}{
		"missing report": {func(t *testing.T, dir string) []string {
			return []string{"-limits", writeLimits(t, dir, 1000), filepath.Join(dir, "report.json")}
		}, []string{"BROKEN", "report.json: no such file or directory", "no report: no spec is known to have run"}},
		"run.json says broken": {func(t *testing.T, dir string) []string {
			writeReportValue(t, dir, "report.json", 207)
			return []string{"-limits", writeLimits(t, dir, 1000), "-run", writeText(t, filepath.Join(dir, "run.json"), `{"status":"broken","detail":"rig rigs/lab-x.yaml: no such file"}`)}
		}, []string{"BROKEN", "rig rigs/lab-x.yaml: no such file"}},
		"unreadable run.json": {func(t *testing.T, dir string) []string {
			writeReportValue(t, dir, "report.json", 207)
			return []string{"-limits", writeLimits(t, dir, 1000), "-run", writeText(t, filepath.Join(dir, "run.json"), `{"status": "fine"}`)}
		}, []string{"BROKEN", "want completed, interrupted or broken"}},
		"bad limits": {func(t *testing.T, dir string) []string {
			return []string{"-limits", writeText(t, filepath.Join(dir, "l.yaml"), "limits: [{measurement: x, unit: ms, hihg: 1}]"), writeReportValue(t, dir, "report.json", 207)}
		}, []string{"BROKEN", "hihg", "joins"}},
		"partial report": {func(t *testing.T, dir string) []string {
			p := writeReportValue(t, dir, "report.json", 207)
			raw := read(t, p)
			writeText(t, p, "["+raw[1:len(raw)-1]+`,{"SuitePath":"/repo/suites/lorawan","SpecRepo`)
			return []string{"-limits", writeLimits(t, dir, 1000), p}
		}, []string{"BROKEN", "is partial: only its first 1 suite could be read", "joins"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := tc.setup(t, dir)
			staleOutputs(t, dir)
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, errb.String())
			}
			expectOutputs(t, dir, tc.want...)
		})
	}
}

// The done-when: `t2jreport -baseline` marks a 20 % slower
// measurement and fails when the limits file declares a 10 % tolerance.
func TestBaselineFlagMarksAndGatesA20PercentRegression(t *testing.T) {
	dir := t.TempDir()
	base := writeReportValue(t, filepath.Join(dir, "old"), "report.json", 200)
	rep := writeReportValue(t, filepath.Join(dir, "new"), "report.json", 240)
	lim := writeLimits(t, dir, 1000)

	var out, errb bytes.Buffer
	if code := run([]string{"-limits", lim, "-baseline", base, rep}, &out, &errb); code != exitPass {
		t.Fatalf("without a tolerance: exit %d: %s", code, errb.String())
	}
	md := read(t, filepath.Join(dir, "new", reports.MarkdownFile))
	if !strings.Contains(md, "| tap to first uplink | board-1 | joins | 240 ms | 200 ms | +20% (+40 ms) worse | ≤ 1000 ms | PASS |") {
		t.Fatalf("summary.md:\n%s", md)
	}
	tol := writeText(t, filepath.Join(dir, "tol.yaml"), "regression: 10%\n"+read(t, lim))
	out.Reset()
	errb.Reset()
	if code := run([]string{"-limits", tol, "-baseline", base, rep}, &out, &errb); code != exitFail {
		t.Fatalf("with 10%%: exit %d, want %d", code, exitFail)
	}
	const want = `VIOLATION regression: tap to first uplink on board-1 = 240 ms, baseline 200 ms: +20% (+40 ms) worse, beyond the regression tolerance 10%; spec "joins"`
	if !strings.Contains(errb.String(), want) {
		t.Fatalf("stderr %q lacks %q", errb.String(), want)
	}
	expectOutputs(t, filepath.Join(dir, "new"), "REGRESSION")
	// An unreadable baseline is bad input.
	if code := run([]string{"-limits", tol, "-baseline", filepath.Join(dir, "nope.json"), rep}, &out, &errb); code != exitUsage {
		t.Fatalf("missing baseline: exit %d", code)
	}
}
