package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// Property names in the JUnit report. Per testcase, for each measurement the
// spec recorded (board in brackets when it has one):
//
//	measurement: tap to join [board-1]   207.176 ms
//	limit: tap to join [board-1]         ≤ 1000 ms (marginal > 900 ms)
//	result: tap to join [board-1]        PASS | MARGINAL | FAIL
//
// Other report entries keep their own name. Per testsuite: "verdict",
// "verdict.line", "limits", "rig" and Ginkgo's suite settings.
const (
	PropMeasurement = "measurement: "
	PropLimit       = "limit: "
	PropResult      = "result: "
)

// GateSuiteName is the name of the extra JUnit testsuite holding one testcase
// per limit check, so CI shows each violated limit as a failed test.
const GateSuiteName = "release gate"

// Run is everything a report is made from.
type Run struct {
	Reports []types.Report // Ginkgo's JSON report: one per suite
	Limits  *Limits
	Outcome Outcome // Judge(Reports, Limits, …)
	Rig     *RigSummary
	Frames  []Frame
	Meta    Metadata
}

// Inputs are what t2jreport read. Every field may be empty: a run whose
// report could not be read still gets reports saying so (Broken).
type Inputs struct {
	Reports []types.Report
	Limits  *Limits
	Rig     *RigSummary
	Frames  []Frame
	// Run is run.json (nil without -run).
	Run *RunMeta
	// Baseline is an earlier run's Ginkgo JSON report to compare with,
	// read from BaselinePath.
	Baseline     []types.Report
	BaselinePath string
	// Broken names the inputs that could not be read.
	Broken []string
}

// NewRun judges reports against limits (rig and frames may be nil).
func NewRun(rs []types.Report, l *Limits, rig *RigSummary, frames []Frame) *Run {
	return Assemble(Inputs{Reports: rs, Limits: l, Rig: rig, Frames: frames})
}

// Assemble judges a run from its inputs and gathers its metadata.
func Assemble(in Inputs) *Run {
	opt := Options{Baseline: in.Baseline, Broken: in.Broken}
	if in.Run != nil {
		opt.RunStatus, opt.RunDetail = in.Run.Status, in.Run.Detail
	}
	if in.BaselinePath != "" && opt.Baseline == nil {
		opt.Baseline = []types.Report{}
	}
	return &Run{
		Reports: in.Reports, Limits: in.Limits, Rig: in.Rig, Frames: in.Frames,
		Outcome: Judge(in.Reports, in.Limits, opt),
		Meta:    NewMetadata(in.Run, in.Reports, in.Limits, in.Rig, in.BaselinePath),
	}
}

// measurementKey names a measurement in properties: "tap to join [board-1]".
func measurementKey(m Measurement) string {
	if m.Board == "" {
		return m.Name
	}
	return m.Name + " [" + m.Board + "]"
}

// JUnit builds the JUnit report of a run: one testsuite per Ginkgo suite with
// measurements as testcase properties, and a "release gate" testsuite with
// one testcase per limit check, per missing or not-run measurement, and the
// verdict. Testcase names are unique within their testsuite.
//
// CI shows a MARGINAL check as skipped (<skipped message="MARGINAL: …">) and
// so not green, without failing the build; a NOT RUN limit likewise. An
// INTERRUPTED or BROKEN run makes the verdict testcase an <error>.
func (run *Run) JUnit() reporters.JUnitTestSuites {
	var out reporters.JUnitTestSuites
	o := run.Outcome
	bySpec := map[string][]Check{}
	for _, c := range o.Checks {
		bySpec[c.Spec] = append(bySpec[c.Spec], c)
	}
	res := newSpecResults(o)
	for _, r := range run.Reports {
		suite := reporters.JUnitTestSuite{
			Name:      r.SuiteDescription,
			Package:   r.SuitePath,
			Time:      r.RunTime.Seconds(),
			Timestamp: r.StartTime.Format("2006-01-02T15:04:05"),
		}
		suite.Properties.Properties = run.suiteProperties(r)
		names := uniqueNames{}
		for _, s := range r.SpecReports {
			tc := reporters.JUnitTestCase{
				Name:      names.add(junitName(s)),
				Classname: r.SuiteDescription,
				Status:    s.State.String(),
				Time:      s.RunTime.Seconds(),
				SystemOut: systemOut(s),
			}
			if props := run.specProperties(s, res); len(props) > 0 {
				tc.Properties = &reporters.JUnitProperties{Properties: props}
			}
			// A passing spec whose measurements are marginal says so where
			// CI shows a testcase's details.
			var marg []string
			for _, c := range bySpec[SpecName(s)] {
				if c.Status == StatusMarginal {
					marg = append(marg, marginalText(c))
				}
			}
			tc.SystemErr = strings.Join(marg, "\n")
			suite.Tests++
			switch {
			case s.State == types.SpecStateSkipped:
				msg := "skipped"
				if s.Failure.Message != "" {
					msg += " - " + s.Failure.Message
				}
				tc.Skipped = &reporters.JUnitSkipped{Message: msg}
				suite.Skipped++
			case s.State == types.SpecStatePending:
				tc.Skipped = &reporters.JUnitSkipped{Message: "pending"}
				suite.Disabled++
			case s.State == types.SpecStatePanicked || s.State == types.SpecStateInterrupted:
				tc.Error = &reporters.JUnitError{Message: failureMessage(s), Type: s.State.String(), Description: failureDescription(s)}
				suite.Errors++
			case s.Failed():
				tc.Failure = &reporters.JUnitFailure{Message: failureMessage(s), Type: s.State.String(), Description: failureDescription(s)}
				suite.Failures++
			}
			suite.TestCases = append(suite.TestCases, tc)
		}
		out.TestSuites = append(out.TestSuites, suite)
	}

	gate := reporters.JUnitTestSuite{Name: GateSuiteName, Package: run.limitsName()}
	gate.Properties.Properties = append([]reporters.JUnitProperty{
		{Name: "verdict", Value: string(o.Status)},
		{Name: "verdict.line", Value: o.Line()},
		{Name: "limits", Value: o.LimitsPath},
	}, run.metaProperties()...)
	names := uniqueNames{}
	regressions := map[string]string{} // check key → regression message
	for _, v := range o.Violations {
		if v.Kind == KindRegression {
			regressions[resultKey(Measurement{Name: v.Measurement, Board: v.Board}, v.Spec)+"\x00"+v.Limit] = v.Message
		}
	}
	for _, c := range o.Checks {
		m := c.Measurement
		key := measurementKey(m)
		props := []reporters.JUnitProperty{
			{Name: PropMeasurement + key, Value: num3(m.Value) + " " + m.Unit},
			{Name: PropLimit + key, Value: limitText(c.Limit)},
			{Name: PropResult + key, Value: string(c.Status)},
			{Name: "spec", Value: c.Spec},
		}
		if d := c.Baseline; d != nil {
			props = append(props, reporters.JUnitProperty{Name: PropBaseline + key, Value: deltaText(d)})
		}
		tc := reporters.JUnitTestCase{
			Name:       names.add(fmt.Sprintf("%s %s in %q", key, c.Limit, c.Spec)),
			Classname:  GateSuiteName,
			Status:     strings.ToLower(string(c.Status)),
			Properties: &reporters.JUnitProperties{Properties: props},
		}
		gate.Tests++
		reg := regressions[c.Key()+"\x00"+c.Limit.String()]
		switch {
		case c.Status == StatusFail:
			desc := fmt.Sprintf("%s = %s %s: %s\nspec: %s", key, num3(m.Value), m.Unit, c.Reason, c.Spec)
			if reg != "" {
				desc += "\n" + reg
			}
			tc.Failure = &reporters.JUnitFailure{Message: c.Reason, Type: "limit", Description: desc}
			gate.Failures++
		case reg != "":
			tc.Status = "regression"
			tc.Failure = &reporters.JUnitFailure{Message: "regression: " + c.Baseline.Text(), Type: "regression", Description: reg}
			gate.Failures++
		case c.Status == StatusMarginal:
			tc.Skipped = &reporters.JUnitSkipped{Message: marginalText(c)}
			tc.SystemErr = marginalText(c) + "\nspec: " + c.Spec
			gate.Skipped++
		}
		gate.TestCases = append(gate.TestCases, tc)
	}
	for _, v := range o.Violations {
		if v.Kind != KindMissing {
			continue
		}
		gate.Tests++
		gate.Failures++
		gate.TestCases = append(gate.TestCases, reporters.JUnitTestCase{
			Name: names.add(fmt.Sprintf("%s %s", v.Measurement, v.Limit)), Classname: GateSuiteName, Status: "failed",
			Failure: &reporters.JUnitFailure{Message: v.Message, Type: "missing", Description: v.Message},
		})
	}
	for _, n := range o.NotRun {
		gate.Tests++
		gate.Skipped++
		msg := "NOT RUN: " + n.Reason
		gate.TestCases = append(gate.TestCases, reporters.JUnitTestCase{
			Name: names.add(fmt.Sprintf("%s %s", n.Limit.Measurement, n.Limit)), Classname: GateSuiteName, Status: "not run",
			Skipped: &reporters.JUnitSkipped{Message: msg}, SystemErr: msg,
		})
	}
	// The gate's own testcase: the verdict, failing with every violation.
	verdict := reporters.JUnitTestCase{Name: "verdict", Classname: GateSuiteName, Status: strings.ToLower(string(o.Status))}
	gate.Tests++
	var lines []string
	for _, v := range o.Violations {
		lines = append(lines, v.Message)
	}
	switch o.Status {
	case StatusMarginal:
		var ms []string
		for _, c := range o.Marginals() {
			ms = append(ms, marginalText(c)+" (spec "+c.Spec+")")
		}
		verdict.Skipped = &reporters.JUnitSkipped{Message: o.Line()} // "MARGINAL (specs: …)"
		verdict.SystemErr = strings.Join(ms, "\n")
		gate.Skipped++
	case StatusFail:
		verdict.Failure = &reporters.JUnitFailure{Message: o.Line(), Type: "verdict", Description: strings.Join(lines, "\n")}
		gate.Failures++
	case StatusInterrupted, StatusBroken:
		desc := o.Line() + "\n" + specsRan(run.Reports)
		if len(lines) > 0 {
			desc += "\n\nviolations:\n" + strings.Join(lines, "\n")
		}
		verdict.Error = &reporters.JUnitError{Message: o.Line(), Type: strings.ToLower(string(o.Status)), Description: desc}
		gate.Errors++
	}
	gate.TestCases = append(gate.TestCases, verdict)
	out.TestSuites = append(out.TestSuites, gate)

	for _, s := range out.TestSuites {
		out.Tests += s.Tests
		out.Disabled += s.Disabled + s.Skipped
		out.Errors += s.Errors
		out.Failures += s.Failures
		out.Time += s.Time
	}
	return out
}

// PropBaseline is the property comparing a measurement with the baseline
// run: "baseline: tap to first uplink [board-1]" = "200 ms → 240 ms: +20% (+40 ms) worse".
const PropBaseline = "baseline: "

func deltaText(d *Delta) string {
	s := fmt.Sprintf("%s %s → %s %s: %s", num3(d.Base), d.Unit, num3(d.Value), d.Unit, d.Text())
	if d.Tolerance != "" {
		s += " (tolerance " + d.Tolerance + ")"
	}
	if d.Regression {
		s += " REGRESSION"
	}
	return s
}

func marginalText(c Check) string {
	return fmt.Sprintf("MARGINAL: %s%s = %s %s: %s", c.Measurement.Name, onBoard(c.Measurement.Board), num3(c.Value), c.Limit.Unit, c.Reason)
}

// specsRan lists which specs ran and which did not, for a run that stopped.
func specsRan(rs []types.Report) string {
	var ran, not []string
	for _, r := range rs {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			line := fmt.Sprintf("  [%s] %s", s.State, SpecName(s))
			if s.State == types.SpecStateSkipped || s.State == types.SpecStatePending || s.State == types.SpecStateInvalid {
				not = append(not, line)
			} else {
				ran = append(ran, line)
			}
		}
	}
	if len(rs) == 0 {
		return "no report: no spec is known to have run"
	}
	s := fmt.Sprintf("specs that ran (%d):\n%s", len(ran), strings.Join(ran, "\n"))
	if len(not) > 0 {
		s += fmt.Sprintf("\nspecs that did not run (%d):\n%s", len(not), strings.Join(not, "\n"))
	}
	var empty []string
	for _, r := range rs {
		if len(r.SpecReports) == 0 {
			empty = append(empty, fmt.Sprintf("  %s: %s", firstNonEmpty(r.SuitePath, r.SuiteDescription),
				firstNonEmpty(strings.Join(strings.Fields(strings.Join(r.SpecialSuiteFailureReasons, "; ")), " "), "no spec in its report")))
		}
	}
	if len(empty) > 0 {
		s += fmt.Sprintf("\nsuites that ran no spec (%d):\n%s", len(empty), strings.Join(empty, "\n"))
	}
	return s
}

// uniqueNames makes testcase names unique by numbering repeats: "x", "x #2".
type uniqueNames map[string]int

func (u uniqueNames) add(name string) string {
	u[name]++
	if n := u[name]; n > 1 {
		return fmt.Sprintf("%s #%d", name, n)
	}
	return name
}

// WriteJUnit writes the run's JUnit XML.
func (run *Run) WriteJUnit(w io.Writer) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(run.JUnit()); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return nil
}

func (run *Run) limitsName() string {
	if run.Limits == nil {
		return ""
	}
	if run.Limits.Name != "" {
		return run.Limits.Name
	}
	return run.Limits.Path
}

func (run *Run) suiteProperties(r types.Report) []reporters.JUnitProperty {
	p := []reporters.JUnitProperty{
		{Name: "verdict", Value: string(run.Outcome.Status)},
		{Name: "limits", Value: run.Outcome.LimitsPath},
		{Name: "SuiteSucceeded", Value: fmt.Sprint(r.SuiteSucceeded)},
		{Name: "SpecialSuiteFailureReason", Value: strings.Join(r.SpecialSuiteFailureReasons, ",")},
		{Name: "RandomSeed", Value: fmt.Sprint(r.SuiteConfig.RandomSeed)},
		{Name: "LabelFilter", Value: r.SuiteConfig.LabelFilter},
		{Name: "ParallelTotal", Value: fmt.Sprint(r.SuiteConfig.ParallelTotal)},
	}
	if run.Rig != nil {
		p = append(p, reporters.JUnitProperty{Name: "rig", Value: run.Rig.Name}, reporters.JUnitProperty{Name: "rig.path", Value: run.Rig.Path})
	}
	return append(p, run.metaProperties()...)
}

// metaProperties are the run metadata as properties ("run.id",
// "git.commit", "firmware.board-1", …).
func (run *Run) metaProperties() []reporters.JUnitProperty {
	var p []reporters.JUnitProperty
	for _, f := range run.Meta.Fields() {
		if f.Key == "rig" { // the suite's "rig" property is the rig's name
			f.Key = "rig.file"
		}
		p = append(p, reporters.JUnitProperty{Name: f.Key, Value: f.Value})
	}
	return p
}

// specResults hands out the outcome's checks and unchecked measurements
// spec by spec, in the order Judge made them (each spec's measurements in
// recorded order, each measurement's limits in file order).
type specResults struct {
	checks    map[string][]Check
	unchecked map[string][]Recorded
}

func newSpecResults(o Outcome) *specResults {
	r := &specResults{checks: map[string][]Check{}, unchecked: map[string][]Recorded{}}
	for _, c := range o.Checks {
		r.checks[c.Spec] = append(r.checks[c.Spec], c)
	}
	for _, u := range o.Unchecked {
		r.unchecked[u.Spec] = append(r.unchecked[u.Spec], u)
	}
	return r
}

// next returns the checks of the spec's next measurement m, or its
// unchecked record.
func (r *specResults) next(spec string, m Measurement) ([]Check, *Recorded) {
	var cs []Check
	for len(r.checks[spec]) > 0 && sameMeasurement(r.checks[spec][0].Measurement, m) {
		cs = append(cs, r.checks[spec][0])
		r.checks[spec] = r.checks[spec][1:]
	}
	if len(cs) > 0 {
		return cs, nil
	}
	if us := r.unchecked[spec]; len(us) > 0 && sameMeasurement(us[0].Measurement, m) {
		r.unchecked[spec] = us[1:]
		return nil, &us[0]
	}
	return nil, nil
}

func sameMeasurement(a, b Measurement) bool {
	return a.Name == b.Name && a.Value == b.Value && a.Unit == b.Unit && a.Board == b.Board && a.Start.Equal(b.Start)
}

// specProperties lists a spec's measurements (with their limits, results
// and baseline deltas) and its other report entries.
func (run *Run) specProperties(s types.SpecReport, res *specResults) []reporters.JUnitProperty {
	var p []reporters.JUnitProperty
	if s.NumAttempts > 1 {
		p = append(p, reporters.JUnitProperty{Name: "attempts", Value: fmt.Sprint(s.NumAttempts)})
	}
	name := SpecName(s)
	for _, e := range s.ReportEntries {
		if !strings.HasPrefix(e.Name, EntryPrefix) {
			v := entryText(e)
			p = append(p, reporters.JUnitProperty{Name: e.Name, Value: v})
			continue
		}
		m, ok := entryMeasurement(e)
		if !ok {
			continue
		}
		key := measurementKey(m)
		p = append(p, reporters.JUnitProperty{Name: PropMeasurement + key, Value: num3(m.Value) + " " + m.Unit})
		checks, rec := res.next(name, m)
		var delta *Delta
		for _, c := range checks {
			p = append(p,
				reporters.JUnitProperty{Name: PropLimit + key, Value: limitText(c.Limit)},
				reporters.JUnitProperty{Name: PropResult + key, Value: string(c.Status)})
			if delta == nil {
				delta = c.Baseline
			}
		}
		if rec != nil {
			delta = rec.Baseline
		}
		if delta != nil {
			p = append(p, reporters.JUnitProperty{Name: PropBaseline + key, Value: deltaText(delta)})
		}
	}
	return p
}

func limitText(l Limit) string {
	s := l.String()
	if m := l.MarginalString(); m != "" {
		s += " (" + m + ")"
	}
	return s
}

func junitName(s types.SpecReport) string {
	name := fmt.Sprintf("[%s]", s.LeafNodeType)
	if t := s.FullText(); t != "" {
		name += " " + t
	}
	if l := s.Labels(); len(l) > 0 {
		name += " [" + strings.Join(l, ", ") + "]"
	}
	return name
}

func failureMessage(s types.SpecReport) string {
	if s.State == types.SpecStatePanicked && s.Failure.ForwardedPanic != "" {
		return s.Failure.ForwardedPanic
	}
	return s.Failure.Message
}

// failureDescription is the failure message, its location and, for a
// timed-out or interrupted spec, what it was doing.
func failureDescription(s types.SpecReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s\n", strings.ToUpper(s.State.String()), s.Failure.Message)
	if s.Failure.ForwardedPanic != "" {
		fmt.Fprintf(&b, "panic: %s\n", s.Failure.ForwardedPanic)
	}
	if loc := s.Failure.Location; loc.FileName != "" {
		fmt.Fprintf(&b, "In [%s] at: %s:%d\n", s.Failure.FailureNodeType, loc.FileName, loc.LineNumber)
		if loc.FullStackTrace != "" {
			fmt.Fprintf(&b, "\nFull Stack Trace\n%s\n", loc.FullStackTrace)
		}
	}
	if af := s.Failure.AdditionalFailure; af != nil {
		fmt.Fprintf(&b, "\nThere was an additional failure: %s\n", af.Failure.Message)
	}
	if pr := s.Failure.ProgressReport; !pr.IsZero() {
		fmt.Fprintf(&b, "\nProgress report:\n%s\n", pr.CurrentStepText)
		if pr.CapturedGinkgoWriterOutput != "" {
			fmt.Fprintf(&b, "%s\n", pr.CapturedGinkgoWriterOutput)
		}
	}
	return b.String()
}

// systemOut is what the spec printed: its captured stdout/stderr and its
// GinkgoWriter output.
func systemOut(s types.SpecReport) string {
	var parts []string
	if s.CapturedStdOutErr != "" {
		parts = append(parts, s.CapturedStdOutErr)
	}
	if s.CapturedGinkgoWriterOutput != "" {
		parts = append(parts, s.CapturedGinkgoWriterOutput)
	}
	return strings.Join(parts, "\n")
}

// entryText renders a report entry's value as Ginkgo shows it.
func entryText(e types.ReportEntry) string {
	if s := e.Value.String(); s != "" {
		return s
	}
	return e.Value.AsJSON
}
