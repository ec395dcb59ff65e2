package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// failingRun is a run with two boards, one over its limit, and a failed spec
// with a transcript.
func failingRun(t *testing.T) *Run {
	t.Helper()
	ok := spec("taps each board and sees it join", types.SpecStatePassed, append(flow("board-1", 210), flow("board-2", 1200)...)...)
	ok.ContainerHierarchyLabels = [][]string{{"e2e"}}
	bad := spec("a board that stores a wrong key <does not join>", types.SpecStateFailed)
	bad.Failure = types.Failure{
		Message:         `phase "join" failed: no join event within 3s`,
		Location:        types.CodeLocation{FileName: "/repo/suites/provisioning/provisioning_test.go", LineNumber: 47},
		FailureNodeType: types.NodeTypeIt,
	}
	bad.CapturedGinkgoWriterOutput = "AT+JOIN=1\r\n+EVT:JOIN_FAILED\r\n"
	bad.CapturedStdOutErr = "radio: JoinRequest on 868.1 MHz"
	bad.ReportEntries = append(bad.ReportEntries, types.ReportEntry{Name: "board-1 provisioned", Time: t0,
		Value: types.ReportEntryValue{AsJSON: `"DevEUI 0080E11500000001 KCV A96DC2"`, Representation: "DevEUI 0080E11500000001 KCV A96DC2"}})
	frames := []Frame{
		{Time: t0, Direction: "up", Frequency: 868100000, SF: 7, BW: 125, RSSI: -60, SNR: 9, Sender: "board-1", PHY: "0001000000000000000100000000000000e1158000010000aaaa11223344", Spec: ok.FullText()},
		{Time: t0.Add(5 * time.Second), Direction: "down", Frequency: 868100000, SF: 7, BW: 125, PHY: "20aabbccdd"},
	}
	rig := &RigSummary{Name: "emulated", Path: "rigs/emulated.yaml", Settings: []Setting{
		{"name", "emulated"}, {"network.kind", "embedded"}, {"boards[0].name", "board-1"}, {"boards[0].emulated", "true"}}}
	return NewRun([]types.Report{report(ok, bad)}, mustLimits(t, testLimits), rig, frames)
}

func TestJUnitIsWellFormedWithProperties(t *testing.T) {
	run := failingRun(t)
	var b bytes.Buffer
	if err := run.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var got reporters.JUnitTestSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, b.String())
	}
	if len(got.TestSuites) != 2 || got.TestSuites[1].Name != GateSuiteName {
		t.Fatalf("suites %d", len(got.TestSuites))
	}
	suite := got.TestSuites[0]
	if suite.Properties.WithName("verdict") != "FAIL" || suite.Tests != 2 || suite.Failures != 1 {
		t.Fatalf("suite %+v", suite)
	}
	tc := suite.TestCases[0]
	if tc.Properties == nil {
		t.Fatal("no properties on the passing testcase")
	}
	props := *tc.Properties
	for name, want := range map[string]string{
		PropMeasurement + "tap to first uplink [board-2]": "1200 ms",
		PropLimit + "tap to first uplink [board-2]":       "≤ 1000 ms (marginal > 900 ms)",
		PropResult + "tap to first uplink [board-2]":      "FAIL",
		PropResult + "tap to first uplink [board-1]":      "PASS",
		PropMeasurement + "phase tap [board-1]":           "1 ms",
	} {
		if got := props.WithName(name); got != want {
			t.Errorf("property %q = %q, want %q", name, got, want)
		}
	}
	failed := suite.TestCases[1]
	if failed.Failure == nil || !strings.Contains(failed.Failure.Description, "provisioning_test.go:47") ||
		!strings.Contains(failed.SystemOut, "+EVT:JOIN_FAILED") {
		t.Fatalf("failed testcase %+v", failed)
	}
	gate := got.TestSuites[1]
	last := gate.TestCases[len(gate.TestCases)-1]
	if last.Name != "verdict" || last.Failure == nil || !strings.Contains(last.Failure.Description, "tap to first uplink on board-2") {
		t.Fatalf("verdict testcase %+v", last)
	}
	if got.Failures != suite.Failures+gate.Failures {
		t.Fatalf("testsuites failures %d", got.Failures)
	}
}

func TestHTMLHasTheSectionsAndIsSelfContained(t *testing.T) {
	run := failingRun(t)
	var b bytes.Buffer
	if err := run.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	text := html.UnescapeString(h)
	if !strings.Contains(h, "a board that stores a wrong key &lt;does not join&gt;") {
		t.Error("spec text is not escaped")
	}
	for _, want := range []string{
		`id="verdict"`, `id="violations"`, `id="measurements"`, `id="phases"`, `id="timeline"`,
		`id="distribution"`, `id="specs"`, `id="failures"`, `id="rig"`, `id="frames"`,
		"Per-phase timings per device", "Provisioning timeline", "Distribution of tap to first uplink",
		"Measurements against limits",
		"+EVT:JOIN_FAILED", "radio: JoinRequest on 868.1 MHz", // transcript and stdout of the failed spec
		`no join event within 3s`, "provisioning_test.go:47", "board-1 provisioned",
		"JoinRequest", "JoinAccept", "network.kind", "board-2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// The frame its spec's rig sent links to that spec's row.
	if !regexp.MustCompile(`<tr id="spec-1">.*taps each board and sees it join`).MatchString(h) ||
		!regexp.MustCompile(`<a href="#spec-1" title="[^"]*taps each board and sees it join">`).MatchString(h) {
		t.Error("the first frame does not link to the spec that sent it")
	}
	if n := strings.Count(h, "<svg"); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
	for _, re := range []string{`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//`, `(?i)<script`, `(?i)<link`, `(?i)@import`, `(?i)url\(`} {
		if m := regexp.MustCompile(re).FindString(h); m != "" {
			t.Errorf("report.html is not self-contained: %q", m)
		}
	}
}

func TestMarkdownSummary(t *testing.T) {
	var b bytes.Buffer
	if err := failingRun(t).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"# tap2join run: ❌ FAIL", "**Verdict: FAIL: 3 violations",
		"| tap to first uplink | board-2 | provisioning taps each board and sees it join | 1200 ms | ≤ 1000 ms (marginal &gt; 900 ms) | FAIL: above high limit 1000 ms",
		"## Failed specs", "provisioning_test.go:47", "no join event within 3s"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q\n%s", want, md)
		}
	}
}

// The reports show what Ginkgo recorded and nothing more: a rig file's
// credentials (literal, in a URL, or "$VAR" naming a key in the environment)
// never appear, and a key string Ginkgo captured appears in no output more
// often than in the JSON report.
func TestReportsAddNoSecrets(t *testing.T) {
	const key = "2B7E151628AED2A6ABF7158809CF4F3C" // FIPS-197 example key
	const token = "s3cr3t-api-token-value"
	dir := t.TempDir()
	rigFile := filepath.Join(dir, "rig.yaml")
	rigYAML := "name: lab\nnetwork:\n  kind: external\n  token: " + token + "\n  mqtt: tcp://user:" + token + "@broker:1883\nprovisioning:\n  token: $PROV_TOKEN\n"
	if err := os.WriteFile(rigFile, []byte(rigYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROV_TOKEN", key)
	rig, err := LoadRigSummary(rigFile)
	if err != nil {
		t.Fatal(err)
	}
	passing := spec("joins", types.SpecStatePassed, flow("board-1", 300)...)
	passing.CapturedGinkgoWriterOutput = "debug dump " + key
	failing := spec("leaks", types.SpecStateFailed)
	failing.CapturedStdOutErr = "got " + strings.ToLower(key)
	rs := []types.Report{report(passing, failing)}
	recorded, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	inReport := strings.Count(strings.ToLower(string(recorded)), strings.ToLower(key))
	run := NewRun(rs, mustLimits(t, testLimits), rig, nil)
	paths, err := run.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ToLower(string(raw))
		if strings.Contains(s, token) {
			t.Errorf("%s shows the rig's token", filepath.Base(p))
		}
		if n := strings.Count(s, strings.ToLower(key)); n > inReport {
			t.Errorf("%s shows the key %d times; the report recorded it %d times", filepath.Base(p), n, inReport)
		}
	}
}

func TestFrames(t *testing.T) {
	fr, err := ReadFrames(strings.NewReader(`{"time":"2026-01-02T03:04:05Z","direction":"uplink","frequency":868100000,"sf":7,"bw":125,"rssi":-60,"snr":9,"phy":"00aa"}

{"time":"2026-01-02T03:04:10Z","direction":"down","phy":"20bb","extra":1}
`))
	if err != nil || len(fr) != 2 || fr[0].Direction != "up" || fr[0].MType() != "JoinRequest" || fr[1].MType() != "JoinAccept" {
		t.Fatalf("frames %+v, %v", fr, err)
	}
	if _, err := ReadFrames(strings.NewReader(`{"direction":"sideways","phy":"00"}`)); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad direction: %v", err)
	}
	fr, err = LoadFrames(filepath.Join(t.TempDir(), "frames.jsonl"))
	if err != nil || fr != nil {
		t.Fatalf("missing file: %v %v", fr, err)
	}
}

func TestRigSummaryHidesCredentials(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rig.yaml")
	os.WriteFile(p, []byte("name: lab-1\nnetwork:\n  token: abc\n  api: cs:8080\nboards:\n  - name: b1\n    nfc: {transport: pcsc, reader: ACS}\n  - name: b2\n"), 0o600)
	r, err := LoadRigSummary(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "lab-1" {
		t.Fatalf("name %q", r.Name)
	}
	for _, s := range r.Settings {
		if s.Key == "network.token" && s.Value != "(set)" {
			t.Fatalf("token shown: %q", s.Value)
		}
	}
	cols, rows := r.Boards()
	if strings.Join(cols, ",") != "name,nfc.reader,nfc.transport" || len(rows) != 2 || rows[0][1] != "ACS" || rows[1][0] != "b2" {
		t.Fatalf("boards %v %v", cols, rows)
	}
}

func TestFindLimitsByName(t *testing.T) {
	p, err := FindLimits("emulated")
	if err != nil {
		t.Fatal(err)
	}
	l, err := LoadLimits(p)
	if err != nil {
		t.Fatalf("the shipped emulated limits do not load: %v", err)
	}
	var ttj *Limit
	for i := range l.Entries {
		if l.Entries[i].Measurement == "tap to first uplink" {
			ttj = &l.Entries[i]
		}
	}
	if ttj == nil || ttj.High == nil || *ttj.High > 1000 {
		t.Fatalf("emulated limits: tap to first uplink %+v", ttj)
	}
	if _, err := FindLimits("no-such-rig"); err == nil {
		t.Fatal("found a limits file that does not exist")
	}
}
