package reports

import (
	"fmt"
	"os"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// LimitsEnv overrides the limits file Gate uses (a path or a name under
// reports/limits/); `make emulate LIMITS=...` sets it.
const LimitsEnv = "TAP2JOIN_LIMITS"

// Gate judges r against the named limits file (a path, or a name for
// reports/limits/<name>.yaml; $TAP2JOIN_LIMITS overrides it), returning the
// outcome and its text: the verdict line, then one line per violation and
// marginal value. It covers one report; t2jreport judges the whole run and
// writes the reports.
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
