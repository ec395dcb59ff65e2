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
	Outcome Outcome // Verdict(Merge(Reports), Limits)
	Rig     *RigSummary
	Frames  []Frame
}

// NewRun judges reports against limits (rig and frames may be nil).
func NewRun(rs []types.Report, l *Limits, rig *RigSummary, frames []Frame) *Run {
	return &Run{Reports: rs, Limits: l, Outcome: Verdict(Merge(rs), l), Rig: rig, Frames: frames}
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
// one testcase per limit check and per missing measurement.
func (run *Run) JUnit() reporters.JUnitTestSuites {
	var out reporters.JUnitTestSuites
	o := run.Outcome
	for _, r := range run.Reports {
		suite := reporters.JUnitTestSuite{
			Name:      r.SuiteDescription,
			Package:   r.SuitePath,
			Time:      r.RunTime.Seconds(),
			Timestamp: r.StartTime.Format("2006-01-02T15:04:05"),
		}
		suite.Properties.Properties = run.suiteProperties(r)
		for _, s := range r.SpecReports {
			tc := reporters.JUnitTestCase{
				Name:      junitName(s),
				Classname: r.SuiteDescription,
				Status:    s.State.String(),
				Time:      s.RunTime.Seconds(),
				SystemOut: systemOut(s),
			}
			if props := run.specProperties(s); len(props) > 0 {
				tc.Properties = &reporters.JUnitProperties{Properties: props}
			}
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
	gate.Properties.Properties = []reporters.JUnitProperty{
		{Name: "verdict", Value: string(o.Status)},
		{Name: "verdict.line", Value: o.Line()},
		{Name: "limits", Value: o.LimitsPath},
	}
	for _, c := range o.Checks {
		m := c.Measurement
		tc := reporters.JUnitTestCase{
			Name:      fmt.Sprintf("%s %s", measurementKey(m), c.Limit),
			Classname: GateSuiteName,
			Status:    strings.ToLower(string(c.Status)),
			Properties: &reporters.JUnitProperties{Properties: []reporters.JUnitProperty{
				{Name: PropMeasurement + measurementKey(m), Value: num3(m.Value) + " " + m.Unit},
				{Name: PropLimit + measurementKey(m), Value: limitText(c.Limit)},
				{Name: PropResult + measurementKey(m), Value: string(c.Status)},
				{Name: "spec", Value: c.Spec},
			}},
		}
		gate.Tests++
		if c.Status == StatusFail {
			tc.Failure = &reporters.JUnitFailure{Message: c.Reason, Type: "limit",
				Description: fmt.Sprintf("%s = %s %s: %s\nspec: %s", measurementKey(m), num3(m.Value), m.Unit, c.Reason, c.Spec)}
			gate.Failures++
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
			Name: fmt.Sprintf("%s %s", v.Measurement, v.Limit), Classname: GateSuiteName, Status: "failed",
			Failure: &reporters.JUnitFailure{Message: v.Message, Type: "missing", Description: v.Message},
		})
	}
	// The gate's own testcase: the verdict, failing with every violation.
	verdict := reporters.JUnitTestCase{Name: "verdict", Classname: GateSuiteName, Status: strings.ToLower(string(o.Status))}
	gate.Tests++
	if !o.Status.Passed() {
		var lines []string
		for _, v := range o.Violations {
			lines = append(lines, v.Message)
		}
		verdict.Failure = &reporters.JUnitFailure{Message: o.Line(), Type: "verdict", Description: strings.Join(lines, "\n")}
		gate.Failures++
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
	return p
}

// specProperties lists a spec's measurements (with their limits and results)
// and its other report entries.
func (run *Run) specProperties(s types.SpecReport) []reporters.JUnitProperty {
	var p []reporters.JUnitProperty
	var entries []Limit
	if run.Limits != nil {
		entries = run.Limits.Entries
	}
	if s.NumAttempts > 1 {
		p = append(p, reporters.JUnitProperty{Name: "attempts", Value: fmt.Sprint(s.NumAttempts)})
	}
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
		for _, l := range entries {
			if !l.Applies(m) {
				continue
			}
			c := judge(l, m)
			p = append(p,
				reporters.JUnitProperty{Name: PropLimit + key, Value: limitText(l)},
				reporters.JUnitProperty{Name: PropResult + key, Value: string(c.Status)})
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
