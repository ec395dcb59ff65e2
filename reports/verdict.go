package reports

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// Status is a verdict or a single check's result.
type Status string

// Results, in increasing order of severity. MARGINAL passes. NOT RUN is a
// limit whose measurement's spec did not run; INTERRUPTED and BROKEN are runs
// that did not complete (stopped, or their inputs could not be read).
const (
	StatusPass        Status = "PASS"
	StatusMarginal    Status = "MARGINAL"
	StatusNotRun      Status = "NOT RUN"
	StatusFail        Status = "FAIL"
	StatusInterrupted Status = "INTERRUPTED"
	StatusBroken      Status = "BROKEN"
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
	// Baseline compares the value with the same measurement (spec,
	// name, board) of the baseline run; nil without one.
	Baseline *Delta
}

// Key names the check's measurement uniquely in a run: measurement, board
// and spec, e.g. `tap to first uplink [board-1] in "LoRaWAN joins"`.
func (c Check) Key() string { return resultKey(c.Measurement, c.Spec) }

// Recorded is a measurement no limit covers: shown (with its baseline
// delta), not judged.
type Recorded struct {
	Measurement
	Spec     string
	Baseline *Delta
}

// Key names the measurement uniquely in a run, like Check.Key.
func (r Recorded) Key() string { return resultKey(r.Measurement, r.Spec) }

func resultKey(m Measurement, spec string) string {
	k := measurementKey(m)
	if spec != "" {
		k += fmt.Sprintf(" in %q", spec)
	}
	return k
}

// NotRun is a limit whose measurement was not recorded because the spec
// that records it did not run (skipped, pending, its suite absent from the
// report, or the run stopped first) or failed before recording it. It is not
// a violation (a failed spec is one of its own).
type NotRun struct {
	Limit  Limit
	Specs  []string // the specs that record it, where known
	Reason string
}

// Violation kinds.
const (
	KindLimit      = "limit"      // a measurement outside its limit
	KindUnit       = "unit"       // a measurement whose unit cannot be compared with its limit's
	KindMissing    = "missing"    // a required limit's measurement never appeared though its spec ran
	KindRegression = "regression" // worse than the baseline beyond the declared tolerance
	KindSpec       = "spec"       // a spec failed
	KindSuite      = "suite"      // the suite failed for another reason, or nothing ran
)

// Violation is one reason a run fails, named so a person can act on it.
type Violation struct {
	Kind        string
	Measurement string  // limit, unit, missing, regression
	Board       string  // limit, unit, regression (when the measurement had one)
	Value       float64 // limit, unit, regression
	Unit        string  // limit, unit, regression
	Limit       string  // limit, unit, missing: the bounds, e.g. "≤ 1000 ms"
	Spec        string  // spec full text or suite path
	Message     string  // one line naming all of the above
}

func (v Violation) String() string { return v.Message }

// Outcome is the verdict on a run: the specs' results plus every measurement
// within its limits.
type Outcome struct {
	Status Status
	// Detail says why a run is INTERRUPTED or BROKEN.
	Detail     string
	Checks     []Check     // every (measurement, limit) pair, in report order
	Violations []Violation // empty when Status passes
	Unchecked  []Recorded  // measurements no limit covers (shown, not judged)
	NotRun     []NotRun    // limits whose measurement's spec did not run
	// Flaky names specs that passed only after retries (FlakeAttempts): they
	// pass, and are shown so retries do not hide real bugs.
	Flaky []string
	Specs SpecCounts
	// LimitsPath names the limits file the run was judged against.
	LimitsPath string
	// Compared is true when a baseline run was given.
	Compared bool
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
// failed, 0 skipped; 6 measurements checked, 1 marginal)", or
// "INTERRUPTED: ginkgo stopped by SIGINT; 1 violation (…)".
func (o Outcome) Line() string {
	s := string(o.Status)
	if o.Detail != "" {
		s += ": " + o.Detail
		if n := len(o.Violations); n > 0 {
			s += fmt.Sprintf("; %d violation%s", n, plural(n))
		}
	} else if n := len(o.Violations); n > 0 {
		s += fmt.Sprintf(": %d violation%s", n, plural(n))
	}
	s += fmt.Sprintf(" (specs: %d passed, %d failed, %d skipped; %d measurements checked, %d marginal",
		o.Specs.Passed, o.Specs.Failed, o.Specs.Skipped+o.Specs.Pending, len(o.Checks), len(o.Marginals()))
	if n := len(o.NotRun); n > 0 {
		s += fmt.Sprintf(", %d limit%s not run", n, plural(n))
	}
	return s + ")"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Options are what Judge needs beyond the reports and the limits.
type Options struct {
	// Baseline is the Ginkgo JSON report of an earlier run to compare with
	// (nil: no comparison).
	Baseline []types.Report
	// RunStatus is the run driver's status (run.json): "completed",
	// "interrupted", "broken", or "" when unknown; RunDetail says why.
	RunStatus, RunDetail string
	// Broken lists the inputs that could not be read (a missing or partial
	// report, a bad limits file, …): the run is BROKEN.
	Broken []string
}

// Run statuses written by the run driver (run.json).
const (
	RunCompleted   = "completed"
	RunInterrupted = "interrupted"
	RunBroken      = "broken"
)

// Verdict judges a run: it fails if the suite failed (a failed spec, a failed
// setup or report node, a special failure such as a compile error), if no
// spec ran, if a measurement is outside a limit or in a unit its limit cannot
// be compared with, or if a required limit's measurement never appeared
// though the spec recording it ran. A passing value in a limit's marginal
// band is MARGINAL and still passes. Merge a multi-suite JSON report first
// (Merge), or use Judge, which also knows which suite ran which spec.
func Verdict(r types.Report, l *Limits) Outcome {
	return Judge([]types.Report{r}, l, Options{})
}

// specRef is one spec of the run with the suite that ran it.
type specRef struct {
	suitePath, suiteDesc string
	spec                 types.SpecReport
	name                 string
}

func specRefs(rs []types.Report) []specRef {
	var out []specRef
	for _, r := range rs {
		for _, s := range r.SpecReports {
			out = append(out, specRef{r.SuitePath, r.SuiteDescription, s, SpecName(s)})
		}
	}
	return out
}

// Judge is Verdict over the suites of a run (Ginkgo's JSON report is a list,
// one per suite), with a baseline to compare with and the run's status.
func Judge(rs []types.Report, l *Limits, opt Options) Outcome {
	var o Outcome
	if l != nil {
		o.LimitsPath = l.Path
	}
	fail := func(v Violation) { o.Violations = append(o.Violations, v) }
	r := Merge(rs)
	if len(rs) == 0 {
		r = types.Report{}
	}
	refs := specRefs(rs)

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

	// How the run ended, before the measurements: a run that did not
	// complete leaves measurements nobody can attribute "not run".
	// An interrupted run is INTERRUPTED even when that left its report
	// unreadable; the unreadable inputs are named in the detail.
	switch {
	case opt.RunStatus == RunInterrupted:
		o.Status = StatusInterrupted
		o.Detail = strings.Join(append([]string{firstNonEmpty(opt.RunDetail, "the run was interrupted")}, opt.Broken...), "; ")
	case len(opt.Broken) > 0 || opt.RunStatus == RunBroken:
		o.Status = StatusBroken
		var why []string
		if opt.RunStatus == RunBroken {
			why = append(why, firstNonEmpty(opt.RunDetail, "the run driver reports the run broken"))
		}
		o.Detail = strings.Join(append(why, opt.Broken...), "; ")
	default:
		if why := interruption(rs); why != "" {
			o.Status, o.Detail = StatusInterrupted, why
		}
	}
	incomplete := o.Status == StatusBroken || o.Status == StatusInterrupted

	var entries []Limit
	if l != nil {
		entries = l.Entries
	}
	var base *baselineIndex
	if opt.Baseline != nil {
		o.Compared = true
		base = indexBaseline(opt.Baseline)
	}
	seen := make([]bool, len(entries))
	occurrence := map[string]int{}
	for _, ref := range refs {
		s := ref.spec
		for _, m := range SpecMeasurements(s) {
			bkey := baselineKey(ref.name, m)
			occ := occurrence[bkey]
			occurrence[bkey]++
			var bm *Measurement
			if base != nil {
				bm = base.find(bkey, occ)
			}
			covered := false
			for i, lim := range entries {
				if !lim.Covers(m, ref.suitePath, ref.suiteDesc, ref.name) {
					continue
				}
				covered, seen[i] = true, true
				c := judge(lim, m)
				c.Spec = ref.name
				if bm != nil {
					c.Baseline = compare(*bm, m, lim.Unit, &lim, effectiveTolerance(l, lim))
				}
				o.Checks = append(o.Checks, c)
				if c.Status == StatusFail {
					kind := KindLimit
					if _, ok := convert(m.Value, m.Unit, lim.Unit); !ok {
						kind = KindUnit
					}
					fail(Violation{Kind: kind, Measurement: m.Name, Board: m.Board, Value: m.Value, Unit: m.Unit,
						Limit: lim.String(), Spec: c.Spec,
						Message: fmt.Sprintf("%s%s = %s %s: %s; spec %q", m.Name, onBoard(m.Board), num3(m.Value), m.Unit, c.Reason, c.Spec)})
				}
				if d := c.Baseline; d != nil && d.Regression {
					fail(Violation{Kind: KindRegression, Measurement: m.Name, Board: m.Board, Value: m.Value, Unit: m.Unit,
						Limit: lim.String(), Spec: c.Spec,
						Message: fmt.Sprintf("%s%s = %s %s, baseline %s %s: %s, beyond the regression tolerance %s; spec %q",
							m.Name, onBoard(m.Board), num3(d.Value), d.Unit, num3(d.Base), d.Unit, d.Text(), d.Tolerance, c.Spec)})
				}
			}
			if !covered {
				u := Recorded{Measurement: m, Spec: ref.name}
				if bm != nil {
					u.Baseline = compare(*bm, m, m.Unit, nil, nil)
				}
				o.Unchecked = append(o.Unchecked, u)
			}
		}
	}
	for i, lim := range entries {
		if seen[i] {
			continue
		}
		nr, missing := attribute(lim, refs, base, incomplete)
		if missing == "" {
			if !lim.Optional {
				o.NotRun = append(o.NotRun, nr)
			}
			continue
		}
		if lim.Optional {
			continue
		}
		where := ""
		if lim.Board != "" {
			where = " for board " + lim.Board
		}
		fail(Violation{Kind: KindMissing, Measurement: lim.Measurement, Limit: lim.String(),
			Message: fmt.Sprintf("no measurement named %q%s (limit %s): %s", lim.Measurement, where, lim.String(), missing)})
	}

	if o.Status == "" {
		switch {
		case len(o.Violations) > 0:
			o.Status = StatusFail
		case len(o.Marginals()) > 0:
			o.Status = StatusMarginal
		default:
			o.Status = StatusPass
		}
	}
	return o
}

// attribute says why a limit's measurement is absent: not run (nr, "") or
// missing ("" NotRun, the violation's explanation). The specs that record
// the measurement are those the limit's spec/suite fields name, else those
// that recorded it in the baseline run; unknown, the measurement is missing
// unless the run did not complete.
func attribute(lim Limit, refs []specRef, base *baselineIndex, incomplete bool) (NotRun, string) {
	nr := NotRun{Limit: lim}
	var cands []specRef
	known := false
	switch {
	case lim.specRE != nil || lim.suiteRE != nil:
		known = true
		for _, ref := range refs {
			if lim.coversSpec(ref.suitePath, ref.suiteDesc, ref.name) {
				cands = append(cands, ref)
			}
		}
		if len(cands) == 0 {
			var what []string
			if lim.Suite != "" {
				what = append(what, "suite "+lim.Suite)
			}
			if lim.Spec != "" {
				what = append(what, fmt.Sprintf("spec %q", lim.Spec))
			}
			nr.Reason = "its " + strings.Join(what, ", ") + " did not run (not in the report)"
			return nr, ""
		}
	case base != nil:
		specs := base.specsRecording(lim)
		for _, ref := range refs {
			if specs[ref.name] {
				cands = append(cands, ref)
			}
		}
		known = len(cands) > 0
	}
	if !known {
		if incomplete {
			nr.Reason = "not recorded before the run stopped"
			return nr, ""
		}
		return nr, "it was never recorded (if a skipped spec or an absent suite records it, name it in the limit with spec: or suite: to count it as not run; optional: true if it may be absent)"
	}
	var passed, failed, skipped []string
	for _, c := range cands {
		nr.Specs = append(nr.Specs, c.name)
		switch {
		case c.spec.State == types.SpecStatePassed:
			passed = append(passed, c.name)
		case c.spec.Failed():
			failed = append(failed, c.name)
		default:
			skipped = append(skipped, c.name)
		}
	}
	switch {
	case len(passed) > 0:
		return nr, fmt.Sprintf("%s passed without recording it", specList(passed))
	case len(failed) > 0:
		nr.Reason = fmt.Sprintf("%s failed before recording it (see the spec violation)", specList(failed))
	default:
		nr.Reason = fmt.Sprintf("%s did not run (skipped or pending)", specList(skipped))
	}
	return nr, ""
}

func specList(names []string) string {
	const max = 3
	q := make([]string, 0, max)
	for i, n := range names {
		if i == max {
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := "spec " + strings.Join(q, ", ")
	if len(names) > 1 {
		s = "specs " + strings.Join(q, ", ")
	}
	if len(names) > max {
		s += fmt.Sprintf(" and %d more", len(names)-max)
	}
	return s
}

// interruption says why Ginkgo stopped a suite early, or "": a signal
// while specs ran ("Interrupted by User", or by another Ginkgo process), or
// while the suite compiled ("Failed to compile lorawan:\n\nsignal: interrupt").
// A suite timeout is a failure, not an interruption.
func interruption(rs []types.Report) string {
	for _, r := range rs {
		for _, reason := range r.SpecialSuiteFailureReasons {
			if strings.HasPrefix(reason, "Interrupted") || interruptSignal.MatchString(reason) {
				return fmt.Sprintf("%s (%s)", strings.Join(strings.Fields(reason), " "), firstNonEmpty(r.SuiteDescription, r.SuitePath))
			}
		}
	}
	return ""
}

// interruptSignal is how Go reports a child killed by an interrupting signal.
var interruptSignal = regexp.MustCompile(`signal: (interrupt|terminated|hangup)\b`)

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
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
