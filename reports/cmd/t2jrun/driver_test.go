package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The driver's processes are fakes here: "ginkgo" is a fakeProc whose
// behaviour each test scripts (exit at once, exit when signalled, ignore
// signals), "t2jreport" records its arguments and run.json and exits with
// the verdict the test chose. Signals are values put on the driver's
// channel; the grace period's timer is a channel the test controls.

type fakeProc struct {
	exit     chan int // the code Wait returns; -1 means killed
	got      []syscall.Signal
	onSignal func(p *fakeProc, sig syscall.Signal)
}

func newFakeProc() *fakeProc { return &fakeProc{exit: make(chan int, 1)} }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.got = append(p.got, sig)
	if p.onSignal != nil {
		p.onSignal(p, sig)
	}
	return nil
}

func (p *fakeProc) Wait() (int, error) {
	c := <-p.exit
	if c == -1 {
		return -1, errors.New("was killed by SIGKILL")
	}
	return c, nil
}

type fakeWorld struct {
	t         *testing.T
	signals   chan os.Signal
	flags     map[string]bool
	ginkgo    *fakeProc
	onGinkgo  func(w *fakeWorld, outDir string) // when ginkgo starts
	ginkgoRan bool
	args, env []string
	verdict   int
	judged    bool
	judgeArgs []string
	judgedRun runRecord
	grace     time.Duration
	graceUp   chan time.Time
	compiled  bool
	stdout    io.Writer // what ginkgo was given to print on
	onCompile func(ctx context.Context) compiled
	out       bytes.Buffer

	rigChecked string
	rigOnline  bool
	rigErr     error
}

func (w *fakeWorld) start(name string, args, env []string, stdout, stderr io.Writer) (process, error) {
	switch name {
	case "fake-ginkgo":
		w.ginkgoRan, w.args, w.env, w.stdout = true, args, env, stdout
		if w.onGinkgo != nil {
			w.onGinkgo(w, flagValue(args, "--output-dir="))
		}
		return w.ginkgo, nil
	case "fake-t2jreport":
		w.judged, w.judgeArgs = true, args
		if i := slices.Index(args, "-run"); i >= 0 {
			b, err := os.ReadFile(args[i+1])
			if err != nil {
				w.t.Errorf("t2jreport -run %s: %v", args[i+1], err)
			}
			if err := json.Unmarshal(b, &w.judgedRun); err != nil {
				w.t.Errorf("run.json: %v", err)
			}
		}
		p := newFakeProc()
		p.exit <- w.verdict
		return p, nil
	}
	return nil, errors.New("no such program " + name)
}

func flagValue(args []string, prefix string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, prefix); ok {
			return v
		}
	}
	return ""
}

// writeReport leaves a Ginkgo JSON report (one suite) in dir.
func writeReport(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(`[{"SuiteDescription":"x","SuiteSucceeded":true}]`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestDriver is a driver on fakes with a valid rig, the real emulated
// limits, an output base in a temporary folder and one suite folder.
func newTestDriver(t *testing.T) (*driver, *fakeWorld, []string, string) {
	t.Helper()
	dir := t.TempDir()
	rig := writeFile(t, dir, "rig.yaml", rigYAML("emulated"))
	suite := filepath.Join(dir, "suites", "one")
	if err := os.MkdirAll(suite, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, suite, "one_test.go", "package one_test\n")
	w := &fakeWorld{
		t: t, signals: make(chan os.Signal, 8), ginkgo: newFakeProc(),
		flags:   map[string]bool{"report": true, "limits": true, "rig": true, "out": true, "run": true, "baseline": true},
		graceUp: make(chan time.Time, 1),
	}
	d := &driver{
		stdout: &w.out, stderr: &w.out, signals: w.signals,
		env: func(k string) string {
			if k == "TAP2JOIN_RUN_ID" {
				return "t1"
			}
			return ""
		},
		now:   time.Now,
		after: func(g time.Duration) <-chan time.Time { w.grace = g; return w.graceUp },
		checkRig: func(_, _, binDir, rig string, online bool) ([]string, error) {
			w.rigChecked, w.rigOnline = rig, online
			if w.rigErr != nil {
				return nil, w.rigErr
			}
			return []string{"a gap"}, nil
		},
		ginkgoBinary: func(string) (string, error) { t.Error("ginkgo looked up though -ginkgo was given"); return "", nil },
		reportFlags:  func(string) (map[string]bool, error) { return w.flags, nil },
		probe: func(context.Context, string, inputs) environment {
			return environment{GitCommit: "abc123", GitDirty: true, Host: "bench", GoVersion: "go1.26.8", Pcscd: "1.9.9", ChirpStack: "embedded twin"}
		},
		compile: func(ctx context.Context, _, _, id string, dirs []string, _ func(string, ...any)) compiled {
			w.compiled = true
			if w.onCompile != nil {
				return w.onCompile(ctx)
			}
			bins := make([]string, len(dirs))
			for i, d := range dirs {
				bins[i] = filepath.Join(d, "one."+id+".test")
			}
			return compiled{Binaries: bins}
		},
		start: w.start,
	}
	out := filepath.Join(dir, "out")
	args := []string{"-mode", "emulate", "-rig", rig, "-out", out, "-t2jreport", "fake-t2jreport", "-ginkgo", "fake-ginkgo", filepath.Join(dir, "suites") + "/..."}
	return d, w, args, out
}

func readRunJSON(t *testing.T, dir string) runRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPassingRun(t *testing.T) {
	d, w, args, out := newTestDriver(t)
	w.onGinkgo = func(w *fakeWorld, dir string) { writeReport(t, dir); w.ginkgo.exit <- 0 }
	if code := d.main(args); code != exitPass {
		t.Fatalf("exit %d, want 0\n%s", code, w.out.String())
	}
	run := filepath.Join(out, "emulate", "t1")
	for _, want := range []string{"run", "--keep-going", "--json-report=report.json", "--output-dir=" + abs(run), "--poll-progress-after=30s", "--label-filter=" + emulateFilter} {
		if !slices.Contains(w.args, want) {
			t.Errorf("ginkgo args %q lack %q", w.args, want)
		}
	}
	if !strings.HasSuffix(w.args[len(w.args)-1], "one.t1.test") {
		t.Errorf("ginkgo does not run the precompiled suite: %q", w.args)
	}
	for _, want := range []string{"TAP2JOIN_OUT=" + abs(run), "TAP2JOIN_RUN_ID=t1", "TAP2JOIN_RIG=", "TAP2JOIN_LIMITS="} {
		if !slices.ContainsFunc(w.env, func(e string) bool { return strings.HasPrefix(e, want) }) {
			t.Errorf("ginkgo's environment lacks %s", want)
		}
	}
	wantJudge := []string{"-report", filepath.Join(run, "report.json"), "-limits", w.judgeArgs[3], "-rig", w.judgeArgs[5], "-out", run, "-run", filepath.Join(run, "run.json")}
	if !slices.Equal(w.judgeArgs, wantJudge) {
		t.Errorf("t2jreport %q, want %q", w.judgeArgs, wantJudge)
	}
	r := w.judgedRun
	if r.RunID != "t1" || r.Mode != "emulate" || r.Status != statusCompleted || r.Detail != "" || r.GinkgoExit != 0 ||
		r.RigName != "emulated" || filepath.Base(r.Limits) != "emulated.yaml" || len(r.LimitsSHA256) != 64 ||
		r.GitCommit != "abc123" || !r.GitDirty || r.Host != "bench" || r.GoVersion != "go1.26.8" || r.PcscdVersion != "1.9.9" ||
		r.ChirpstackVersion != "embedded twin" || r.LabelFilter != emulateFilter || r.Baseline != "" {
		t.Errorf("run.json as t2jreport read it: %+v", r)
	}
	if _, err := time.Parse(time.RFC3339, r.Started); err != nil {
		t.Errorf("started %q: %v", r.Started, err)
	}
	if _, err := time.Parse(time.RFC3339, r.Finished); err != nil || r.DurationS < 0 {
		t.Errorf("finished %q (%v), duration %v", r.Finished, err, r.DurationS)
	}
	if _, err := os.Stat(filepath.Join(run, lockName)); !os.IsNotExist(err) {
		t.Errorf("lock left behind: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(out, "emulate", latestName)); l != "t1" {
		t.Errorf("latest → %q", l)
	}
	if w.rigChecked == "" || w.rigOnline {
		t.Errorf("rig checked %q online %v; want the rig, offline (emulate)", w.rigChecked, w.rigOnline)
	}
	for _, step := range []string{"t2jrun: validating", "t2jrun: checking rig", "note: rig", "a gap", "t2jrun: run folder", "t2jrun: compiling 1 suites", "t2jrun: running 1 suites", "t2jrun: judging", "t2jrun: exit 0, PASS"} {
		if !strings.Contains(w.out.String(), step) {
			t.Errorf("progress lacks %q:\n%s", step, w.out.String())
		}
	}

	// The same run id again: refused before anything runs, naming the run.
	d2, w2, _, _ := newTestDriver(t)
	if code := d2.main(args); code != exitBadInput {
		t.Errorf("same run id: exit %d, want 2", code)
	}
	if w2.compiled || w2.ginkgoRan || !strings.Contains(w2.out.String(), "finished run") {
		t.Errorf("same run id: compiled %v, ran %v:\n%s", w2.compiled, w2.ginkgoRan, w2.out.String())
	}
}

func TestExitCodesOfCompletedRuns(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ginkgoExit int
		report     bool
		verdict    int
		want       int
		status     string
	}{
		{"pass", 0, true, 0, exitPass, statusCompleted},
		{"verdict fails", 1, true, 1, exitFail, statusCompleted},
		{"verdict fails, ginkgo passed", 0, true, 1, exitFail, statusCompleted},
		{"ginkgo failed, verdict passed", 1, true, 0, exitFail, statusCompleted},
		{"no report", 1, false, 2, exitFail, statusBroken},
		{"t2jreport cannot read its input", 0, true, 2, exitBadInput, statusCompleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, w, args, out := newTestDriver(t)
			w.verdict = tc.verdict
			w.onGinkgo = func(w *fakeWorld, dir string) {
				if tc.report {
					writeReport(t, dir)
				}
				w.ginkgo.exit <- tc.ginkgoExit
			}
			if code := d.main(args); code != tc.want {
				t.Errorf("exit %d, want %d\n%s", code, tc.want, w.out.String())
			}
			r := readRunJSON(t, filepath.Join(out, "emulate", "t1"))
			if r.Status != tc.status || r.GinkgoExit != tc.ginkgoExit {
				t.Errorf("run.json status %q ginkgo_exit %d, want %q %d", r.Status, r.GinkgoExit, tc.status, tc.ginkgoExit)
			}
			if tc.status == statusBroken && !strings.Contains(r.Detail, "no report.json") {
				t.Errorf("broken run's detail %q", r.Detail)
			}
			if !w.judged {
				t.Error("t2jreport not called")
			}
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	for _, tc := range []struct {
		status          string
		ginkgo, verdict int
		want            int
	}{
		{statusCompleted, 0, 0, 0},
		{statusCompleted, 0, 1, 1},
		{statusCompleted, 1, 0, 1},
		{statusCompleted, 197, 0, 1}, // programmatic focus
		{statusCompleted, 1, 1, 1},
		{statusCompleted, 0, 2, 2},
		{statusCompleted, 0, -1, 1}, // t2jreport did not run: a broken run, not bad input
		{statusCompleted, 1, 2, 1},
		{statusBroken, -1, 0, 1},
		{statusBroken, 2, 2, 1},
		{statusBroken, -1, -1, 1},
		{statusInterrupted, 1, 0, 3},
		{statusInterrupted, 1, 1, 3},
		{statusInterrupted, -1, 2, 3},
		{statusInterrupted, -1, 3, 3},
	} {
		if got := exitCode(tc.status, tc.ginkgo, tc.verdict); got != tc.want {
			t.Errorf("exitCode(%s, ginkgo %d, verdict %d) = %d, want %d", tc.status, tc.ginkgo, tc.verdict, got, tc.want)
		}
	}
}

func TestInterruptedRunStillWritesItsReports(t *testing.T) {
	d, w, args, out := newTestDriver(t)
	w.verdict = 1
	// Ctrl-C while the suites run; ginkgo stops on SIGINT, leaving a
	// partial report.
	w.ginkgo.onSignal = func(p *fakeProc, sig syscall.Signal) {
		if sig == syscall.SIGINT {
			writeReport(t, flagValue(w.args, "--output-dir="))
			p.exit <- 1
		}
	}
	w.onGinkgo = func(w *fakeWorld, _ string) { w.signals <- syscall.SIGINT }
	if code := d.main(append([]string{"-grace", "7s"}, args...)); code != exitInterrupted {
		t.Fatalf("exit %d, want 3\n%s", code, w.out.String())
	}
	if !slices.Equal(w.ginkgo.got, []syscall.Signal{syscall.SIGINT}) {
		t.Errorf("ginkgo got %v, want SIGINT once", w.ginkgo.got)
	}
	if w.grace != 7*time.Second {
		t.Errorf("grace %v, want 7s", w.grace)
	}
	r := w.judgedRun
	if r.Status != statusInterrupted || !strings.Contains(r.Detail, "SIGINT") || r.GinkgoExit != 1 {
		t.Errorf("run.json: status %q detail %q ginkgo_exit %d", r.Status, r.Detail, r.GinkgoExit)
	}
	if _, err := os.Stat(filepath.Join(out, "emulate", "t1", lockName)); !os.IsNotExist(err) {
		t.Errorf("lock left behind: %v", err)
	}
	if !strings.Contains(w.out.String(), "exit 3, INTERRUPTED") {
		t.Errorf("no final line:\n%s", w.out.String())
	}
}

func TestGinkgoThatDoesNotStopIsKilledAfterTheGrace(t *testing.T) {
	d, w, args, _ := newTestDriver(t)
	// SIGHUP goes to ginkgo as SIGTERM; ginkgo ignores it and is killed when
	// the grace period ends.
	w.ginkgo.onSignal = func(p *fakeProc, sig syscall.Signal) {
		if sig == syscall.SIGKILL {
			p.exit <- -1
		}
	}
	w.onGinkgo = func(w *fakeWorld, _ string) {
		w.signals <- syscall.SIGHUP
		w.graceUp <- time.Now()
	}
	if code := d.main(args); code != exitInterrupted {
		t.Fatalf("exit %d, want 3\n%s", code, w.out.String())
	}
	if !slices.Equal(w.ginkgo.got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Errorf("ginkgo got %v, want SIGTERM then SIGKILL", w.ginkgo.got)
	}
	if w.grace != 30*time.Second {
		t.Errorf("default grace %v", w.grace)
	}
	r := w.judgedRun
	if r.Status != statusInterrupted || !strings.Contains(r.Detail, "SIGHUP") || !strings.Contains(r.Detail, "killed") || !strings.Contains(r.Detail, "no report.json") {
		t.Errorf("run.json: status %q detail %q", r.Status, r.Detail)
	}
}

func TestSignalWhileCompilingRunsNoSpec(t *testing.T) {
	d, w, args, _ := newTestDriver(t)
	w.onCompile = func(ctx context.Context) compiled {
		w.signals <- syscall.SIGTERM
		<-ctx.Done() // the driver stops the build
		return compiled{}
	}
	if code := d.main(args); code != exitInterrupted {
		t.Fatalf("exit %d, want 3\n%s", code, w.out.String())
	}
	if w.ginkgoRan {
		t.Error("ginkgo ran after the build was interrupted")
	}
	if r := w.judgedRun; r.Status != statusInterrupted || !strings.Contains(r.Detail, "SIGTERM") || !strings.Contains(r.Detail, "no spec ran") || r.GinkgoExit != -1 {
		t.Errorf("run.json: %+v", r)
	}
}

func TestSignalWhileCheckingInputsIsAnInterruption(t *testing.T) {
	d, w, args, out := newTestDriver(t)
	// The terminal's Ctrl-C reaches rigcheck's build too, which then fails:
	// the run is interrupted (3), not bad input (2).
	d.checkRig = func(_, _, _, _ string, _ bool) ([]string, error) {
		w.signals <- syscall.SIGINT
		return nil, bad("rigcheck: signal: interrupt")
	}
	if code := d.main(args); code != exitInterrupted {
		t.Fatalf("exit %d, want 3\n%s", code, w.out.String())
	}
	if w.compiled || w.ginkgoRan {
		t.Errorf("compiled %v, ginkgo %v after an interruption before the run", w.compiled, w.ginkgoRan)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output base created: %v", err)
	}
	if !strings.Contains(w.out.String(), "SIGINT received while the inputs were checked") {
		t.Errorf("output does not say why:\n%s", w.out.String())
	}
}

func TestBadInputRunsNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		flags map[string]bool
		want  string
	}{
		{"missing limits", []string{"-limits", "missing.yaml"}, nil, `limits file "missing.yaml" not found`},
		{"baseline unsupported", []string{"-baseline", "driver_test.go"}, map[string]bool{"report": true}, "no -baseline flag"},
		{"bad run id", nil, nil, "TAP2JOIN_RUN_ID"},
		{"invalid rig", nil, nil, "rig file x: timing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, w, args, out := newTestDriver(t)
			if tc.flags != nil {
				w.flags = tc.flags
			}
			switch tc.name {
			case "bad run id":
				d.env = func(string) string { return "../escape" }
			case "invalid rig":
				w.rigErr = bad("rig file x: timing: \"sometimes\" is not instant or realistic")
			}
			code := d.main(append(tc.extra, args...))
			if code != exitBadInput {
				t.Errorf("exit %d, want 2", code)
			}
			if w.compiled || w.ginkgoRan || w.judged {
				t.Errorf("compiled %v, ginkgo %v, judged %v: nothing may run on bad input", w.compiled, w.ginkgoRan, w.judged)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output base created on bad input: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(w.out.String()), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, tc.want) {
				t.Errorf("last line %q does not say %q", last, tc.want)
			}
		})
	}
}

func TestWithoutRunFlagT2JReportGetsNone(t *testing.T) {
	d, w, args, _ := newTestDriver(t)
	w.flags = map[string]bool{"report": true, "limits": true, "rig": true, "out": true}
	w.onGinkgo = func(w *fakeWorld, dir string) { writeReport(t, dir); w.ginkgo.exit <- 0 }
	if code := d.main(args); code != exitPass {
		t.Fatalf("exit %d\n%s", code, w.out.String())
	}
	if slices.Contains(w.judgeArgs, "-run") {
		t.Errorf("t2jreport without -run got it: %q", w.judgeArgs)
	}
}

func TestParsePcscdVersion(t *testing.T) {
	out := []byte("pcsc-lite version 1.9.9.\nCopyright (C) 1999-2002 by David Corcoran\n")
	if v := parsePcscdVersion(out); v != "1.9.9" {
		t.Errorf("%q", v)
	}
	if v := parsePcscdVersion([]byte("nonsense")); v != "" {
		t.Errorf("%q", v)
	}
}

func TestChirpstackVersion(t *testing.T) {
	root := "../../.."
	if v := chirpstackVersion(inputs{Network: "embedded"}, root); !strings.HasPrefix(v, "embedded twin, ChirpStack API v4.") {
		t.Errorf("embedded: %q", v)
	}
	if v := chirpstackVersion(inputs{Network: "containers", ImageSet: "upstream"}, root); !strings.HasPrefix(v, "chirpstack/chirpstack:4.") {
		t.Errorf("upstream containers: %q", v)
	}
	if v := chirpstackVersion(inputs{Network: "external"}, root); v != "" {
		t.Errorf("external: %q", v)
	}
}

func TestFindSuites(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b/c", "kit", ".hidden", "testdata"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "a"), "a_test.go", "")
	writeFile(t, filepath.Join(dir, "b", "c"), "c_test.go", "")
	writeFile(t, filepath.Join(dir, "kit"), "kit.go", "")
	writeFile(t, filepath.Join(dir, ".hidden"), "h_test.go", "")
	writeFile(t, filepath.Join(dir, "testdata"), "t_test.go", "")
	got, err := findSuites([]string{dir + "/..."})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b", "c")}
	if !slices.Equal(got, want) {
		t.Errorf("findSuites = %q, want %q", got, want)
	}
	if _, err := findSuites([]string{filepath.Join(dir, "nope")}); err == nil {
		t.Error("a missing folder accepted")
	}
}

func TestLabRunChecksTheBenchAndItsLimits(t *testing.T) {
	d, w, args, out := newTestDriver(t)
	w.onGinkgo = func(w *fakeWorld, dir string) { writeReport(t, dir); w.ginkgo.exit <- 0 }
	args = append([]string{"-mode", "lab"}, args[2:]...) // the rig is named "emulated": reports/limits/emulated.yaml
	if code := d.main(args); code != exitPass {
		t.Fatalf("exit %d\n%s", code, w.out.String())
	}
	if !w.rigOnline {
		t.Error("a lab rig's bench was not checked (rigcheck without -offline)")
	}
	for _, want := range []string{"--timeout=60m", "--poll-progress-after=60s"} {
		if !slices.Contains(w.args, want) {
			t.Errorf("lab ginkgo args %q lack %q", w.args, want)
		}
	}
	if slices.ContainsFunc(w.args, func(a string) bool { return strings.HasPrefix(a, "--label-filter") }) {
		t.Errorf("lab without LABELS got a label filter: %q", w.args)
	}
	if r := readRunJSON(t, filepath.Join(out, "lab", "t1")); r.Mode != "lab" || filepath.Base(r.Limits) != "emulated.yaml" {
		t.Errorf("run.json mode %q limits %q", r.Mode, r.Limits)
	}
}

func TestGinkgoThatDoesNotStartIsABrokenRun(t *testing.T) {
	d, w, args, out := newTestDriver(t)
	w.verdict = 2 // t2jreport: no report
	args[slices.Index(args, "fake-ginkgo")] = "no-ginkgo"
	if code := d.main(args); code != exitFail {
		t.Fatalf("exit %d, want 1\n%s", code, w.out.String())
	}
	r := readRunJSON(t, filepath.Join(out, "emulate", "t1"))
	if r.Status != statusBroken || r.GinkgoExit != -1 || !strings.HasPrefix(r.Detail, "ginkgo did not start: ") {
		t.Errorf("run.json status %q ginkgo_exit %d detail %q", r.Status, r.GinkgoExit, r.Detail)
	}
	if !w.judged || !strings.Contains(w.out.String(), "exit 1, FAIL: the run broke: ginkgo did not start") {
		t.Errorf("judged %v:\n%s", w.judged, w.out.String())
	}
}
