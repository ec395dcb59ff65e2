// Command t2jreport turns a Ginkgo JSON report into a release verdict and the
// reports people and CI read: junit.xml (measurements as testcase
// properties, one testcase per limit check), report.html (self-contained,
// inline SVG charts) and summary.md.
//
// Usage:
//
//	go run ./reports/cmd/t2jreport [flags] [report.json]
//
//	-report    Ginkgo JSON report (--json-report); or the first argument
//	           (default with -run: report.json beside run.json)
//	-run       the run driver's run.json: run metadata and status (optional)
//	-limits    limits file, or a name meaning reports/limits/<name>.yaml
//	           (default: run.json's limits, else the rig's name when -rig
//	           is given, else "emulated")
//	-rig       rig file the run used (shown in the report; credentials
//	           hidden; default: run.json's rig)
//	-baseline  an earlier run's Ginkgo JSON report to compare with
//	-frames    captured LoRa frames, JSON lines (default <out>/frames.jsonl;
//	           a missing file means no frames)
//	-out       output directory (default: run.json's directory with -run,
//	           else the report's directory)
//
// It first deletes junit.xml, report.html and summary.md from the output
// directory, then writes all three even for a run that was interrupted or
// whose inputs cannot be read, saying so.
//
// Exit status: 0 the run passes (PASS or MARGINAL), 1 it fails (each
// violation is named on stderr), 2 usage or input errors (BROKEN), 3 the run
// was interrupted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/tap2join/tap2join/reports"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitPass        = 0
	exitFail        = 1
	exitUsage       = 2 // also a BROKEN run: its inputs could not be read
	exitInterrupted = 3
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("t2jreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reportPath := fs.String("report", "", "Ginkgo JSON report (--json-report; default with -run: report.json beside run.json)")
	runPath := fs.String("run", "", "the run driver's run.json: run metadata and status (optional)")
	limitsName := fs.String("limits", "", `limits file, or a name for reports/limits/<name>.yaml (default: run.json's limits, else the rig's name, else "emulated")`)
	rigPath := fs.String("rig", "", "rig file the run used (optional; default: run.json's rig)")
	baselinePath := fs.String("baseline", "", "an earlier run's Ginkgo JSON report to compare with (optional)")
	framesPath := fs.String("frames", "", "captured frames, JSON lines (default <out>/frames.jsonl; missing is fine)")
	outDir := fs.String("out", "", "output directory (default: run.json's directory, else the report's)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: t2jreport [flags] [report.json]\n\nJudges a Ginkgo JSON report against declared limits and writes junit.xml,\nreport.html and summary.md, also for interrupted runs and unreadable inputs.\nExit status: 0 pass or marginal, 1 fail, 2 usage or input error, 3 interrupted.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitPass
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "t2jreport: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case fs.NArg() > 1:
		return usage("one report at a time (got %d arguments)", fs.NArg())
	case fs.NArg() == 1 && *reportPath != "":
		return usage("give the report as -report or as an argument, not both")
	case fs.NArg() == 1:
		*reportPath = fs.Arg(0)
	case *reportPath == "" && *runPath != "":
		*reportPath = filepath.Join(filepath.Dir(*runPath), "report.json")
	case *reportPath == "":
		return usage("no report: give the Ginkgo JSON report (-report out/emulate/report.json)")
	}
	if *outDir == "" {
		*outDir = filepath.Dir(*reportPath)
		if *runPath != "" {
			*outDir = filepath.Dir(*runPath)
		}
	}
	// Never leave an earlier run's reports beside this run's inputs.
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return usage("%v", err)
	}
	if err := reports.RemoveOutputs(*outDir); err != nil {
		return usage("%v", err)
	}

	// From here on every input problem is reported in the outputs too.
	in := reports.Inputs{}
	problem := func(err error) {
		fmt.Fprintf(stderr, "t2jreport: %v\n", err)
		in.Broken = append(in.Broken, err.Error())
	}
	if *runPath != "" {
		meta, err := reports.LoadRunMeta(*runPath)
		if err != nil {
			problem(err)
		} else {
			in.Run = meta
			if *rigPath == "" {
				*rigPath = meta.Rig
			}
			if *limitsName == "" {
				*limitsName = meta.Limits
			}
		}
	}
	rs, err := reports.ReadReports(*reportPath)
	if err != nil {
		problem(err)
	}
	in.Reports = rs
	if *rigPath != "" {
		if in.Rig, err = reports.LoadRigSummary(*rigPath); err != nil {
			problem(err)
		}
	}
	name := *limitsName
	if name == "" {
		name = "emulated"
		if in.Rig != nil && in.Rig.Name != "" {
			name = in.Rig.Name
		}
	}
	lp, err := reports.FindLimits(name)
	if err != nil {
		if *limitsName == "" {
			err = fmt.Errorf("%w; no -limits given, so the rig's name was used: give -limits", err)
		}
		problem(err)
	} else if in.Limits, err = reports.LoadLimits(lp); err != nil {
		problem(err)
	}
	if *framesPath == "" {
		*framesPath = filepath.Join(*outDir, "frames.jsonl")
	}
	if in.Frames, err = reports.LoadFrames(*framesPath); err != nil {
		problem(err)
	}
	if *baselinePath != "" {
		in.BaselinePath = *baselinePath
		var base []types.Report
		if base, err = reports.ReadReports(*baselinePath); err != nil {
			problem(fmt.Errorf("baseline: %w", err))
		} else {
			in.Baseline = base
		}
	}

	r := reports.Assemble(in)
	paths, err := r.WriteFiles(*outDir)
	if err != nil {
		return usage("%v", err)
	}
	o := r.Outcome
	for _, v := range o.Violations {
		fmt.Fprintf(stderr, "VIOLATION %s: %s\n", v.Kind, v.Message)
	}
	for _, c := range o.Marginals() {
		fmt.Fprintf(stdout, "MARGINAL %s%s = %s %s: %s; spec %q\n", c.Measurement.Name, boardSuffix(c.Measurement.Board), fmt.Sprint(c.Measurement.Value), c.Measurement.Unit, c.Reason, c.Spec)
	}
	// Not-run limits, one line per reason (a suite that did not run makes
	// dozens).
	var reasons []string
	byReason := map[string][]string{}
	for _, n := range o.NotRun {
		if byReason[n.Reason] == nil {
			reasons = append(reasons, n.Reason)
		}
		byReason[n.Reason] = append(byReason[n.Reason], n.Limit.Measurement)
	}
	for _, why := range reasons {
		ms := byReason[why]
		list := strings.Join(ms[:min(len(ms), 4)], ", ")
		if len(ms) > 4 {
			list += fmt.Sprintf(" and %d more", len(ms)-4)
		}
		fmt.Fprintf(stdout, "NOT RUN %s: %s\n", list, why)
	}
	for _, w := range r.Meta.Warnings {
		fmt.Fprintf(stderr, "WARNING %s\n", w)
	}
	fmt.Fprintf(stdout, "verdict: %s\n", o.Line())
	if lp != "" {
		fmt.Fprintf(stdout, "limits: %s\n", lp)
	}
	for _, p := range paths {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	switch o.Status {
	case reports.StatusPass, reports.StatusMarginal:
		return exitPass
	case reports.StatusInterrupted:
		return exitInterrupted
	case reports.StatusBroken:
		return exitUsage
	}
	return exitFail
}

func boardSuffix(b string) string {
	if b == "" {
		return ""
	}
	return " on " + b
}
