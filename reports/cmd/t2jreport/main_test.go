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

// writeReport writes a Ginkgo JSON report with one passing spec that
// recorded tap to join = 207 ms on board-1.
func writeReport(t *testing.T, dir string) string {
	t.Helper()
	m := reports.Measurement{Name: "tap to join", Value: 207, Unit: "ms", Board: "board-1"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := []types.Report{{
		SuiteDescription: "Provisioning", SuitePath: "/repo/suites/provisioning", SuiteSucceeded: true,
		StartTime: now, EndTime: now.Add(time.Second),
		SpecReports: types.SpecReports{{
			LeafNodeType: types.NodeTypeIt, LeafNodeText: "joins", State: types.SpecStatePassed, NumAttempts: 1,
			ReportEntries: types.ReportEntries{{Name: reports.EntryPrefix + m.Name, Time: now,
				Value: types.WrapEntryValue(m)}},
		}},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "report.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeLimits(t *testing.T, dir string, high int) string {
	t.Helper()
	p := filepath.Join(dir, "limits.yaml")
	y := "name: t\nlimits:\n  - measurement: tap to join\n    unit: ms\n    high: " + itoa(high) + "\n"
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
	if !strings.Contains(errb.String(), "VIOLATION limit: tap to join on board-1 = 207 ms: above high limit 200 ms") {
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
