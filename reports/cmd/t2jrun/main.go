// Command t2jrun runs the suites once and judges them: the driver behind
// `make emulate`, `make integration` and `make lab`.
//
//  1. It validates its inputs before any spec runs, exiting 2 with one line
//     when one is wrong: the limits file (-limits, a path or a name for
//     reports/limits/<name>.yaml; a lab run defaults to the rig's name, which
//     it must have), the baseline, the output folder, t2jreport, then the rig
//     file (rigs.Validate, through rigs/cmd/rigcheck; for a lab run also its
//     bench: ports, readers, placeholders). The cheap checks come first, and
//     this command does not link rigs: on a fresh clone a missing limits file
//     is reported in about 2 s, not after building every emulator.
//  2. It creates the run's folder, <out>/<mode>/<run id> (the id is
//     $TAP2JOIN_RUN_ID, else a UTC timestamp and a short random suffix), with
//     a lock file naming its holder (run.lock: pid, host, start), and points
//     <out>/<mode>/latest at it. A run id already in use fails at once.
//  3. It compiles each suite inside its own folder under a name carrying the
//     run id (two runs in one checkout share no file), then runs ginkgo
//     --keep-going with the JSON report in the run folder and
//     TAP2JOIN_OUT, TAP2JOIN_RUN_ID, TAP2JOIN_RIG and TAP2JOIN_LIMITS set.
//  4. SIGINT, SIGTERM and SIGHUP go to ginkgo's process group (SIGHUP as
//     SIGTERM); after -grace the group is killed. The run is "interrupted".
//  5. Whatever happened, it writes <run>/run.json and calls t2jreport, which
//     writes junit.xml, report.html and summary.md into the run folder.
//
// Exit status: 0 pass (PASS or MARGINAL), 1 fail (the verdict fails, or
// ginkgo failed while the verdict passed, or the run broke), 2 bad input,
// 3 interrupted.
//
// Usage (from the module root; the Makefile does this):
//
//	t2jrun -mode emulate|lab|integration -rig FILE -t2jreport BIN [flags] [packages]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tap2join/tap2join/reports/keyscan"
)

// Exit statuses, the same through make (as make's "Error N").
const (
	exitPass        = 0
	exitFail        = 1
	exitBadInput    = 2
	exitInterrupted = 3
)

// config is the command line.
type config struct {
	Mode, Rig, Limits, Out, Labels, Baseline string
	Tags, Go, Ginkgo, T2JReport              string
	Poll, Timeout                            string
	Grace                                    time.Duration
	Packages                                 []string
}

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	d := newDriver(os.Stdout, os.Stderr, signals)
	os.Exit(d.main(os.Args[1:]))
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("t2jrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Mode, "mode", modeEmulate, "emulate, lab or integration")
	fs.StringVar(&c.Rig, "rig", "", "rig file (emulate, integration: rigs/emulated.yaml; lab: required)")
	fs.StringVar(&c.Limits, "limits", "", "limits file, or a name for reports/limits/<name>.yaml (default: emulate \"emulated\", integration \"integration\", lab the rig's name)")
	fs.StringVar(&c.Out, "out", "out", "output base: runs go to <out>/<mode>/<run id>")
	fs.StringVar(&c.Labels, "labels", "", "Ginkgo label filter (emulate: combined with "+emulateFilter+"; integration: with "+integrationFilter+")")
	fs.StringVar(&c.Baseline, "baseline", "", "a previous run's report.json to compare with (t2jreport -baseline)")
	fs.StringVar(&c.Tags, "tags", "", "Go build tags for the suites (e.g. nopcsc)")
	fs.StringVar(&c.Go, "go", "go", "the go command")
	fs.StringVar(&c.Ginkgo, "ginkgo", "", "ginkgo binary (default: go tool -n ginkgo)")
	fs.StringVar(&c.T2JReport, "t2jreport", "", "t2jreport binary (required)")
	fs.StringVar(&c.Poll, "poll-progress-after", "", "ginkgo --poll-progress-after (default emulate 30s, lab 60s)")
	fs.StringVar(&c.Timeout, "timeout", "", "ginkgo --timeout (default emulate ginkgo's own, integration 10m, lab 60m)")
	fs.DurationVar(&c.Grace, "grace", 30*time.Second, "after a signal, how long ginkgo may take to stop before its process group is killed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: t2jrun -mode emulate|lab|integration -rig FILE -t2jreport BIN [flags] [packages (default ./suites/...)]\n\nRuns the suites once into <out>/<mode>/<run id> and judges them with t2jreport.\nExit status: 0 pass, 1 fail, 2 bad input, 3 interrupted.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Packages = fs.Args()
	if len(c.Packages) == 0 {
		c.Packages = []string{"./suites/..."}
	}
	if c.Rig == "" && (c.Mode == modeEmulate || c.Mode == modeIntegration) {
		c.Rig = "rigs/emulated.yaml"
	}
	if c.Poll == "" {
		c.Poll = map[string]string{modeLab: "60s"}[c.Mode]
		if c.Poll == "" {
			c.Poll = "30s"
		}
	}
	if c.Timeout == "" {
		c.Timeout = map[string]string{modeLab: "60m", modeIntegration: "10m"}[c.Mode]
	}
	return c, nil
}

// driver is one run. Its parts that touch processes are fields, replaced by
// fakes in the tests.
type driver struct {
	stdout, stderr io.Writer
	signals        <-chan os.Signal
	env            func(string) string
	now            func() time.Time
	after          func(time.Duration) <-chan time.Time

	checkRig     func(goCmd, tags, binDir, rig string, online bool) ([]string, error)
	ginkgoBinary func(goCmd string) (string, error)
	reportFlags  func(t2jreport string) (map[string]bool, error)
	probe        func(ctx context.Context, goCmd string, in inputs) environment
	compile      func(ctx context.Context, goCmd, tags, id string, dirs []string, logf func(string, ...any)) compiled
	start        func(name string, args, env []string, stdout, stderr io.Writer) (process, error)
}

func newDriver(stdout, stderr io.Writer, signals <-chan os.Signal) *driver {
	return &driver{
		stdout: stdout, stderr: stderr, signals: signals,
		env: os.Getenv, now: time.Now, after: time.After,
		checkRig: checkRig, ginkgoBinary: ginkgoBinary, reportFlags: reportFlags, probe: probe,
		compile: compileSuites, start: startGroup,
	}
}

// logf prints one progress line.
func (d *driver) logf(format string, a ...any) {
	fmt.Fprintf(d.stdout, "t2jrun: "+format+"\n", a...)
}

// fail prints one input error line and returns exit 2.
func (d *driver) fail(err error) int {
	fmt.Fprintf(d.stderr, "t2jrun: %s\n", oneLine(err.Error()))
	return exitBadInput
}

// prepared is what a run needs once its inputs are checked.
type prepared struct {
	cfg       config
	in        inputs
	ginkgo    string
	runFlag   bool // t2jreport knows -run
	suites    []string
	runFolder *runFolder
	started   time.Time
	leaks     *leakCheck // the run's key escrow and console capture
}

// main validates, runs and judges; it returns the exit status.
func (d *driver) main(args []string) int {
	started := d.now()
	c, err := parseFlags(args, d.stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitPass
		}
		return exitBadInput
	}
	p, code := d.prepare(c, started)
	if p == nil {
		// A signal while the inputs were checked (the rig check builds
		// rigcheck, which can take a while) is an interruption, not bad
		// input, even when it made the check itself fail.
		if s := d.pendingSignal(); s != nil {
			d.logf("%s received while the inputs were checked: nothing ran, no run folder was made (exit %d)", sigName(s), exitInterrupted)
			return exitInterrupted
		}
		return code
	}
	return d.run(p)
}

// pendingSignal returns a signal caught and not yet handled, if any.
func (d *driver) pendingSignal() os.Signal {
	select {
	case s := <-d.signals:
		return s
	default:
		return nil
	}
}

// prepare checks every input and creates the run folder; nothing has run
// yet. It returns nil and the exit status when an input is wrong.
func (d *driver) prepare(c config, started time.Time) (*prepared, int) {
	d.logf("validating rig %s, limits, output folder %s", c.Rig, c.Out)
	in, err := validate(c)
	if err != nil {
		return nil, d.fail(err)
	}
	if err := checkOutBase(c.Out); err != nil {
		return nil, d.fail(err)
	}
	p := &prepared{cfg: c, in: in, started: started}
	if c.T2JReport == "" {
		return nil, d.fail(bad("no t2jreport binary (-t2jreport)"))
	}
	flags, err := d.reportFlags(c.T2JReport)
	if err != nil {
		return nil, d.fail(bad("t2jreport %s: %v", c.T2JReport, err))
	}
	p.runFlag = flags["run"]
	if c.Baseline != "" && !flags["baseline"] {
		return nil, d.fail(bad("baseline %s given, but this t2jreport has no -baseline flag yet", c.Baseline))
	}
	what := "file"
	if c.Mode == modeLab {
		what = "file and bench"
	}
	d.logf("checking rig %s (%s: rigs/cmd/rigcheck)", in.Rig, what)
	gaps, err := d.checkRig(c.Go, c.Tags, filepath.Dir(c.T2JReport), in.Rig, c.Mode == modeLab)
	if err != nil {
		return nil, d.fail(err)
	}
	p.in.RigGaps = gaps
	for _, g := range gaps {
		d.logf("note: rig %s: %s", in.Rig, g)
	}
	if p.ginkgo = c.Ginkgo; p.ginkgo == "" {
		if p.ginkgo, err = d.ginkgoBinary(c.Go); err != nil {
			return nil, d.fail(bad("ginkgo: %v", err))
		}
	}
	if p.suites, err = findSuites(c.Packages); err != nil {
		return nil, d.fail(bad("%v", err))
	} else if len(p.suites) == 0 {
		return nil, d.fail(bad("no suites in %s", strings.Join(c.Packages, " ")))
	}
	id, err := runID(d.env, started)
	if err != nil {
		return nil, d.fail(bad("TAP2JOIN_RUN_ID: %v", err))
	}
	host, _ := os.Hostname()
	h := holder{PID: os.Getpid(), Host: host, Started: started.UTC().Format(time.RFC3339), Mode: c.Mode, RunID: id}
	base := filepath.Join(c.Out, c.Mode)
	if p.runFolder, err = createRunFolder(base, id, h); err != nil {
		return nil, d.fail(err)
	}
	latest := "latest → " + id
	if err := updateLatest(base, id); err != nil {
		latest = "latest not updated: " + err.Error()
	}
	d.logf("run folder %s (%s)", p.runFolder.Dir, latest)
	return p, exitPass
}

// run runs the suites of a prepared run, writes run.json, judges and maps
// the outcome to the exit status. It always ends with the reports.
func (d *driver) run(p *prepared) int {
	c, in, dir := p.cfg, p.in, p.runFolder.Dir
	defer func() {
		if err := p.runFolder.release(); err != nil {
			d.logf("lock not released: %v", err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := d.stdout, d.stderr
	defer func() { d.stdout, d.stderr = stdout, stderr }()
	lc, lcErr := startLeakCheck(dir)
	if lcErr != nil {
		d.logf("key-leak check cannot start (the run will fail): %v", lcErr)
	} else {
		p.leaks = lc
		d.stdout, d.stderr = lc.tee(stdout), lc.tee(stderr)
	}

	rec := runRecord{
		RunID: p.runFolder.ID, Mode: c.Mode, Started: p.started.UTC().Format(time.RFC3339),
		GinkgoExit: -1, Rig: in.Rig, RigName: in.RigName, Limits: in.Limits, LimitsSHA256: in.LimitsSHA,
		LabelFilter: in.LabelFilter, Baseline: in.Baseline,
	}
	e := d.probe(ctx, c.Go, in)
	rec.GitCommit, rec.GitDirty, rec.Host, rec.GoVersion = e.GitCommit, e.GitDirty, e.Host, e.GoVersion
	rec.PcscdVersion, rec.ChirpstackVersion = e.Pcscd, e.ChirpStack

	caught := d.pendingSignal()
	var sup supervision
	switch {
	case caught != nil:
		rec.Status, rec.Detail = statusInterrupted, sigName(caught)+" received before the suites started; no spec ran"
	default:
		d.logf("compiling %d suites", len(p.suites))
		done := make(chan compiled, 1)
		go func() { done <- d.compile(ctx, c.Go, c.Tags, p.runFolder.ID, p.suites, d.logf) }()
		var bins compiled
		select {
		case bins = <-done:
		case caught = <-d.signals:
			d.logf("%s: stopping the build", sigName(caught))
			cancel()
			bins = <-done
		}
		defer bins.removeAll()
		if caught != nil {
			rec.Status, rec.Detail = statusInterrupted, sigName(caught)+" received while the suites compiled; no spec ran"
			break
		}
		sup = d.runGinkgo(p, bins)
		rec.GinkgoExit = sup.Exit
		rec.Status, rec.Detail = outcome(sup, dir)
	}
	finished := d.now()
	rec.Finished = finished.UTC().Format(time.RFC3339)
	rec.DurationS = finished.Sub(p.started).Seconds()

	// From here on the reports get written; late signals only say so.
	stopIgnoring := d.ignoreSignals()
	defer stopIgnoring()
	runJSON, err := writeRunRecord(dir, rec)
	if err != nil {
		d.logf("run.json not written: %v", err)
	}
	verdict := d.judge(p, runJSON)
	code := exitCode(rec.Status, rec.GinkgoExit, verdict)
	final := finalLine(rec, verdict, code, dir)
	// The console log is closed by the check; later lines still reach the
	// terminal (teeWriter ignores the closed file).
	var res keyscan.Result
	err = lcErr
	if lc != nil {
		res, err = lc.finish(dir)
	}
	switch {
	case err != nil:
		d.logf("key-leak check failed: %v", err)
		if code == exitInterrupted {
			final += " — and the key-leak check could not be made"
		} else {
			code = exitFail
			final = fmt.Sprintf("exit %d, FAIL: the key-leak check could not be made (%v); run folder %s", code, err, dir)
		}
	case len(res.Hits) > 0:
		d.logf("key-leak check: %s (%s)", leakWords(res), filepath.Join(dir, leakCheckOut))
		if code != exitInterrupted {
			code = exitFail
			final = fmt.Sprintf("exit %d, FAIL: issued keys in the run's outputs (%d hit(s), %s); run folder %s", code, len(res.Hits), leakCheckOut, dir)
		} else {
			final += fmt.Sprintf(" — and issued keys in its outputs (%d hit(s), %s)", len(res.Hits), leakCheckOut)
		}
	default:
		d.logf("key-leak check: %d issued key(s), %d file(s), %d bytes: no key found", res.Keys, res.Files, res.Bytes)
	}
	d.logf("%s", final)
	return code
}

// runGinkgo starts ginkgo on the compiled suites and supervises it.
func (d *driver) runGinkgo(p *prepared, bins compiled) supervision {
	c, in, dir := p.cfg, p.in, p.runFolder.Dir
	args := []string{"run", "--keep-going"}
	if in.LabelFilter != "" {
		args = append(args, "--label-filter="+in.LabelFilter)
	}
	args = append(args, "--json-report=report.json", "--output-dir="+abs(dir), "--poll-progress-after="+c.Poll)
	if c.Timeout != "" {
		args = append(args, "--timeout="+c.Timeout)
	}
	if c.Tags != "" {
		args = append(args, "--tags="+c.Tags) // for the suites ginkgo compiles itself (those that failed here)
	}
	targets := append(append([]string(nil), bins.Binaries...), bins.Failed...)
	for i, t := range targets {
		if !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, ".") {
			targets[i] = "./" + t
		}
	}
	env := append(os.Environ(),
		"TAP2JOIN_OUT="+abs(dir),
		"TAP2JOIN_RUN_ID="+p.runFolder.ID,
		"TAP2JOIN_RIG="+abs(in.Rig),
		"TAP2JOIN_LIMITS="+abs(in.Limits),
	)
	if p.leaks != nil {
		env = append(env, p.leaks.env(dir)...)
	}
	d.logf("running %d suites: ginkgo %s", len(targets), shellJoin(args))
	proc, err := d.start(p.ginkgo, append(args, targets...), env, d.stdout, d.stderr)
	if err != nil {
		return supervision{Exit: -1, Err: fmt.Errorf("did not start: %w", err)}
	}
	return supervise(proc, d.signals, c.Grace, d.after, d.logf)
}

// outcome is run.json's status and detail after ginkgo.
func outcome(s supervision, dir string) (status, detail string) {
	report := reportState(dir)
	switch {
	case s.Caught != nil:
		detail = sigName(s.Caught) + " received while the suites ran"
		switch {
		case s.Killed:
			detail += "; ginkgo did not stop within the grace period and was killed"
		case s.Err != nil:
			detail += "; ginkgo " + s.Err.Error()
		default:
			detail += fmt.Sprintf("; ginkgo stopped (exit %d)", s.Exit)
		}
		if report != "" {
			detail += "; " + report
		}
		return statusInterrupted, detail
	case s.Err != nil && report != "":
		return statusBroken, "ginkgo " + s.Err.Error() + "; " + report
	case s.Err != nil:
		return statusBroken, "ginkgo " + s.Err.Error() + " (report.json may be partial)"
	case report != "":
		return statusBroken, fmt.Sprintf("ginkgo exited %d; %s", s.Exit, report)
	}
	return statusCompleted, ""
}

// reportState is "" when dir/report.json is a Ginkgo JSON report (a
// non-empty array), else what is wrong with it.
func reportState(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		return "no report.json"
	}
	var rs []map[string]any
	if err := json.Unmarshal(b, &rs); err != nil || len(rs) == 0 {
		return "report.json is not a complete Ginkgo JSON report"
	}
	return ""
}

// ignoreSignals drains signals while the reports are written.
func (d *driver) ignoreSignals() (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-d.signals:
				d.logf("%s: writing the reports first", sigName(s))
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// judge calls t2jreport on the run folder; its exit status, or -1 when it
// could not run.
func (d *driver) judge(p *prepared, runJSON string) int {
	dir := p.runFolder.Dir
	args := []string{"-report", filepath.Join(dir, "report.json"), "-limits", p.in.Limits, "-rig", p.in.Rig, "-out", dir}
	if p.runFlag && runJSON != "" {
		args = append(args, "-run", runJSON)
	}
	if p.in.Baseline != "" {
		args = append(args, "-baseline", p.in.Baseline)
	}
	d.logf("judging: t2jreport %s", shellJoin(args))
	env := os.Environ()
	if p.leaks != nil {
		env = append(env, p.leaks.env(dir)...)
	}
	proc, err := d.start(p.cfg.T2JReport, args, env, d.stdout, d.stderr)
	if err != nil {
		d.logf("t2jreport did not start: %v", err)
		return -1
	}
	code, err := proc.Wait()
	if err != nil {
		d.logf("t2jreport %v", err)
		return -1
	}
	return code
}

// exitCode maps a run to the exit status: 3 interrupted; 1 when the verdict
// fails, or passes while ginkgo failed or the run broke; 0 when both pass;
// 2 when t2jreport could not judge a run that completed cleanly (its input);
// 1 when t2jreport did not run or died (verdict < 0): a broken run.
func exitCode(status string, ginkgoExit, verdict int) int {
	switch {
	case status == statusInterrupted:
		return exitInterrupted
	case verdict < 0:
		return exitFail
	case verdict == exitFail:
		return exitFail
	case verdict == exitPass && status == statusCompleted && ginkgoExit == 0:
		return exitPass
	case verdict == exitPass:
		return exitFail
	case status == statusBroken || ginkgoExit != 0:
		return exitFail
	}
	return exitBadInput
}

// finalLine says what the exit status means.
func finalLine(rec runRecord, verdict, code int, dir string) string {
	var why string
	switch {
	case code == exitInterrupted:
		why = "INTERRUPTED: " + rec.Detail
	case code == exitPass:
		why = "PASS"
	case rec.Status == statusBroken:
		why = "FAIL: the run broke: " + rec.Detail
	case verdict == exitFail:
		why = "FAIL (verdict)"
	case verdict == exitPass:
		why = fmt.Sprintf("FAIL: ginkgo exited %d though the verdict passed", rec.GinkgoExit)
	case code == exitFail:
		why = fmt.Sprintf("FAIL: ginkgo exited %d, and t2jreport could not judge the run (exit %d)", rec.GinkgoExit, verdict)
	default:
		why = fmt.Sprintf("bad input: t2jreport could not judge the run (exit %d)", verdict)
	}
	return fmt.Sprintf("exit %d, %s; run folder %s", code, why, dir)
}

// shellJoin prints args as a shell would read them back (for the log).
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"&|!<>()$*?;\\") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}
