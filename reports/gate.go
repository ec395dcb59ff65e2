package reports

import (
	"fmt"
	"os"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// LimitsEnv overrides the limits file GateAfterSuite uses (a path or a name
// under reports/limits/); `make emulate LIMITS=...` sets it.
const LimitsEnv = "TAP2JOIN_LIMITS"

// GateOption configures GateAfterSuite.
type GateOption func(*gateConfig)

type gateConfig struct{ fail bool }

// FailOnViolation makes the gate node fail the suite when the verdict fails,
// so a plain `go test` run gates too. Without it the gate only prints.
func FailOnViolation() GateOption { return func(c *gateConfig) { c.fail = true } }

// GateAfterSuite declares a ReportAfterSuite node that judges the suite's
// report against a limits file (a path, or a name for
// reports/limits/<name>.yaml; $TAP2JOIN_LIMITS overrides it) and prints the
// verdict and every violation at the end of the run. Call it at the top
// level of a suite:
//
//	var _ = reports.GateAfterSuite("emulated")
//
// The verdict printed here covers one suite; t2jreport judges the whole run
// and writes the reports.
func GateAfterSuite(limits string, opts ...GateOption) bool {
	var cfg gateConfig
	for _, o := range opts {
		o(&cfg)
	}
	return ginkgo.ReportAfterSuite("release gate", func(r ginkgo.Report) {
		o, text, err := Gate(r, limits)
		if err != nil {
			ginkgo.Fail(fmt.Sprintf("release gate: %v", err))
			return
		}
		ginkgo.AddReportEntry("release gate", text, ginkgo.ReportEntryVisibilityAlways)
		if cfg.fail && !o.Status.Passed() {
			ginkgo.Fail(text)
		}
	})
}

// Gate judges r against the named limits file, returning the outcome and its
// text: the verdict line, then one line per violation and marginal value.
func Gate(r types.Report, limits string) (Outcome, string, error) {
	if env := os.Getenv(LimitsEnv); env != "" {
		limits = env
	}
	p, err := FindLimits(limits)
	if err != nil {
		return Outcome{}, "", err
	}
	l, err := LoadLimits(p)
	if err != nil {
		return Outcome{}, "", err
	}
	o := Verdict(r, l)
	var b strings.Builder
	fmt.Fprintf(&b, "verdict against %s: %s", p, o.Line())
	for _, v := range o.Violations {
		fmt.Fprintf(&b, "\n  VIOLATION %s: %s", v.Kind, v.Message)
	}
	for _, c := range o.Marginals() {
		fmt.Fprintf(&b, "\n  MARGINAL %s%s = %s %s: %s", c.Measurement.Name, onBoard(c.Measurement.Board), num3(c.Measurement.Value), c.Measurement.Unit, c.Reason)
	}
	return o, b.String(), nil
}
