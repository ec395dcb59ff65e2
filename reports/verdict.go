package reports

import (
	"fmt"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// Status is a verdict or a single check's result.
type Status string

// Results, in increasing order of severity. MARGINAL passes.
const (
	StatusPass     Status = "PASS"
	StatusMarginal Status = "MARGINAL"
	StatusFail     Status = "FAIL"
)

// Passed reports whether s lets a release through (PASS or MARGINAL).
func (s Status) Passed() bool { return s == StatusPass || s == StatusMarginal }

// Check is one measurement judged against one limit.
type Check struct {
	Limit       Limit
	Measurement Measurement
	// Value is the measurement converted to the limit's unit.
	Value  float64
	Spec   string // full text of the spec that recorded the measurement
	Status Status
	Reason string // why it is MARGINAL or FAIL; "" on PASS
}

// Violation kinds.
const (
	KindLimit   = "limit"   // a measurement outside its limit
	KindUnit    = "unit"    // a measurement whose unit cannot be compared with its limit's
	KindMissing = "missing" // a required limit whose measurement never appeared
	KindSpec    = "spec"    // a spec failed
	KindSuite   = "suite"   // the suite failed for another reason, or nothing ran
)

// Violation is one reason a run fails, named so a person can act on it.
type Violation struct {
	Kind        string
	Measurement string  // limit, unit, missing
	Board       string  // limit, unit (when the measurement had one)
	Value       float64 // limit, unit
	Unit        string  // limit, unit
	Limit       string  // limit, unit, missing: the bounds, e.g. "≤ 1000 ms"
	Spec        string  // spec full text or suite path
	Message     string  // one line naming all of the above
}

func (v Violation) String() string { return v.Message }

// Outcome is the verdict on a run: the specs' results plus every measurement
// within its limits.
type Outcome struct {
	Status     Status
	Checks     []Check       // every (measurement, limit) pair, in report order
	Violations []Violation   // empty when Status passes
	Unchecked  []Measurement // measurements no limit covers (shown, not judged)
	// Flaky names specs that passed only after retries (FlakeAttempts): they
	// pass, and are shown so retries do not hide real bugs.
	Flaky []string
	Specs SpecCounts
	// LimitsPath names the limits file the run was judged against.
	LimitsPath string
}

// SpecCounts counts the It specs of a run by result.
type SpecCounts struct {
	Passed, Failed, Skipped, Pending int
}

// Marginals returns the checks that passed in their marginal band.
func (o Outcome) Marginals() []Check {
	var out []Check
	for _, c := range o.Checks {
		if c.Status == StatusMarginal {
			out = append(out, c)
		}
	}
	return out
}

// Line is the one-line verdict, e.g. "FAIL: 1 violation (specs: 2 passed, 0
// failed, 0 skipped; 6 measurements checked, 1 marginal)".
func (o Outcome) Line() string {
	s := string(o.Status)
	if n := len(o.Violations); n > 0 {
		s += fmt.Sprintf(": %d violation%s", n, plural(n))
	}
	return fmt.Sprintf("%s (specs: %d passed, %d failed, %d skipped; %d measurements checked, %d marginal)",
		s, o.Specs.Passed, o.Specs.Failed, o.Specs.Skipped+o.Specs.Pending, len(o.Checks), len(o.Marginals()))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Verdict judges a run: it fails if the suite failed (a failed spec, a failed
// setup or report node, a special failure such as a compile error), if no
// spec ran, if a measurement is outside a limit or in a unit its limit cannot
// be compared with, or if a required limit's measurement never appeared. A
// passing value in a limit's marginal band is MARGINAL and still passes.
// Merge a multi-suite JSON report first (Merge).
func Verdict(r types.Report, l *Limits) Outcome {
	var o Outcome
	if l != nil {
		o.LimitsPath = l.Path
	}
	fail := func(v Violation) { o.Violations = append(o.Violations, v) }

	ran := 0
	for _, s := range r.SpecReports {
		if s.LeafNodeType == types.NodeTypeIt {
			switch {
			case s.State == types.SpecStatePassed:
				o.Specs.Passed++
				ran++
				if s.NumAttempts > 1 && s.MaxFlakeAttempts > 1 {
					o.Flaky = append(o.Flaky, fmt.Sprintf("%s (passed on attempt %d)", SpecName(s), s.NumAttempts))
				}
			case s.State == types.SpecStateSkipped:
				o.Specs.Skipped++
			case s.State == types.SpecStatePending:
				o.Specs.Pending++
			case s.Failed():
				o.Specs.Failed++
				ran++
			}
		}
		if s.Failed() {
			fail(Violation{Kind: KindSpec, Spec: SpecName(s),
				Message: fmt.Sprintf("spec %s: %s", s.State, SpecName(s)) + failureSuffix(s)})
		}
	}
	for _, reason := range r.SpecialSuiteFailureReasons {
		fail(Violation{Kind: KindSuite, Spec: r.SuitePath, Message: "suite failed: " + reason})
	}
	if ran == 0 && len(r.SpecialSuiteFailureReasons) == 0 {
		fail(Violation{Kind: KindSuite, Spec: r.SuitePath, Message: "no spec ran: the run proves nothing"})
	}
	if !r.SuiteSucceeded && len(o.Violations) == 0 {
		fail(Violation{Kind: KindSuite, Spec: r.SuitePath, Message: "suite failed: Ginkgo reports the suite did not succeed"})
	}

	var entries []Limit
	if l != nil {
		entries = l.Entries
	}
	seen := make([]bool, len(entries))
	for _, s := range r.SpecReports {
		for _, m := range SpecMeasurements(s) {
			covered := false
			for i, lim := range entries {
				if !lim.Applies(m) {
					continue
				}
				covered, seen[i] = true, true
				c := judge(lim, m)
				c.Spec = SpecName(s)
				o.Checks = append(o.Checks, c)
				if c.Status != StatusFail {
					continue
				}
				kind := KindLimit
				if _, ok := convert(m.Value, m.Unit, lim.Unit); !ok {
					kind = KindUnit
				}
				fail(Violation{Kind: kind, Measurement: m.Name, Board: m.Board, Value: m.Value, Unit: m.Unit,
					Limit: lim.String(), Spec: c.Spec,
					Message: fmt.Sprintf("%s%s = %s %s: %s", m.Name, onBoard(m.Board), num3(m.Value), m.Unit, c.Reason)})
			}
			if !covered {
				o.Unchecked = append(o.Unchecked, m)
			}
		}
	}
	for i, lim := range entries {
		if seen[i] || lim.Optional {
			continue
		}
		where := ""
		if lim.Board != "" {
			where = " for board " + lim.Board
		}
		fail(Violation{Kind: KindMissing, Measurement: lim.Measurement, Limit: lim.String(),
			Message: fmt.Sprintf("no measurement named %q%s (limit %s; mark it optional: true if it may be absent)", lim.Measurement, where, lim.String())})
	}

	switch {
	case len(o.Violations) > 0:
		o.Status = StatusFail
	case len(o.Marginals()) > 0:
		o.Status = StatusMarginal
	default:
		o.Status = StatusPass
	}
	return o
}

func onBoard(b string) string {
	if b == "" {
		return ""
	}
	return " on " + b
}

func failureSuffix(s types.SpecReport) string {
	msg := s.Failure.Message
	if s.State == types.SpecStatePanicked && s.Failure.ForwardedPanic != "" {
		msg = "panic: " + s.Failure.ForwardedPanic
	}
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " …"
	}
	loc := ""
	if s.Failure.Location.FileName != "" {
		loc = fmt.Sprintf(" at %s:%d", s.Failure.Location.FileName, s.Failure.Location.LineNumber)
	}
	if msg == "" {
		return loc
	}
	return ": " + msg + loc
}

// judge checks one measurement against one limit.
func judge(l Limit, m Measurement) Check {
	c := Check{Limit: l, Measurement: m, Status: StatusPass}
	v, ok := convert(m.Value, m.Unit, l.Unit)
	if !ok {
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("unit %q cannot be compared with the limit's %q (limit %s)", m.Unit, l.Unit, l)
		return c
	}
	c.Value = v
	switch {
	case l.Low != nil && v < *l.Low:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("below low limit %s %s (limit %s)", num(*l.Low), l.Unit, l)
	case l.High != nil && v > *l.High:
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("above high limit %s %s (limit %s)", num(*l.High), l.Unit, l)
	case l.marginalLow != nil && v < *l.marginalLow:
		c.Status = StatusMarginal
		c.Reason = fmt.Sprintf("within %s %s of low limit %s %s", num3(*l.marginalLow-*l.Low), l.Unit, num(*l.Low), l.Unit)
	case l.marginalHigh != nil && v > *l.marginalHigh:
		c.Status = StatusMarginal
		c.Reason = fmt.Sprintf("within %s %s of high limit %s %s", num3(*l.High-*l.marginalHigh), l.Unit, num(*l.High), l.Unit)
	}
	return c
}

// timeUnits are the units convert scales between, in nanoseconds.
var timeUnits = map[string]float64{"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "min": 60e9}

// convert expresses v (in unit from) in unit to. Equal units always convert;
// time units scale; anything else does not.
func convert(v float64, from, to string) (float64, bool) {
	if strings.EqualFold(from, to) {
		return v, true
	}
	f, ok1 := timeUnits[from]
	t, ok2 := timeUnits[to]
	if !ok1 || !ok2 {
		return 0, false
	}
	return v * f / t, true
}

func num3(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// SpecName is a spec's full text with its node type for setup and report
// nodes, e.g. "NFC provisioning to OTAA join taps each board …" or
// "[ReportAfterSuite] no key material in the report".
func SpecName(s types.SpecReport) string {
	t := s.FullText()
	if s.LeafNodeType != types.NodeTypeIt {
		t = strings.TrimSpace(fmt.Sprintf("[%s] %s", s.LeafNodeType, t))
	}
	return t
}

// Merge folds the reports of a multi-suite run (Ginkgo's JSON report is a
// list, one per suite) into one: specs in order, the suite succeeded only if
// all did, failure reasons prefixed with their suite's path.
func Merge(rs []types.Report) types.Report {
	if len(rs) == 1 {
		return rs[0]
	}
	var m types.Report
	m.SuiteSucceeded = true
	var names, paths []string
	for i, r := range rs {
		names = append(names, r.SuiteDescription)
		paths = append(paths, r.SuitePath)
		if i == 0 || (!r.StartTime.IsZero() && r.StartTime.Before(m.StartTime)) {
			m.StartTime = r.StartTime
		}
		if r.EndTime.After(m.EndTime) {
			m.EndTime = r.EndTime
		}
		m.SuiteSucceeded = m.SuiteSucceeded && r.SuiteSucceeded
		for _, reason := range r.SpecialSuiteFailureReasons {
			m.SpecialSuiteFailureReasons = append(m.SpecialSuiteFailureReasons, r.SuitePath+": "+reason)
		}
		m.SpecReports = append(m.SpecReports, r.SpecReports...)
		m.SuiteConfig = r.SuiteConfig
	}
	m.SuiteDescription = strings.Join(names, ", ")
	m.SuitePath = strings.Join(paths, ", ")
	m.RunTime = m.EndTime.Sub(m.StartTime)
	return m
}
