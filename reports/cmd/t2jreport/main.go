// Command t2jreport turns a Ginkgo JSON report into a release verdict and the
// reports people and CI read: junit.xml (measurements as testcase
// properties, one testcase per limit check), report.html (self-contained,
// inline SVG charts) and summary.md.
//
// Usage:
//
//	go run ./reports/cmd/t2jreport [flags] [report.json]
//
//	-report  Ginkgo JSON report (--json-report); or the first argument
//	-limits  limits file, or a name meaning reports/limits/<name>.yaml
//	         (default: the rig's name when -rig is given, else "emulated")
//	-rig     rig file the run used (shown in the report; credentials hidden)
//	-frames  captured LoRa frames, JSON lines (default <out>/frames.jsonl;
//	         a missing file means no frames)
//	-out     output directory (default: the report's directory)
//
// Exit status: 0 the run passes (PASS or MARGINAL), 1 it fails (each
// violation is named on stderr), 2 usage or input errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tap2join/tap2join/reports"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("t2jreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reportPath := fs.String("report", "", "Ginkgo JSON report (--json-report)")
	limitsName := fs.String("limits", "", `limits file, or a name for reports/limits/<name>.yaml (default: the rig's name, else "emulated")`)
	rigPath := fs.String("rig", "", "rig file the run used (optional)")
	framesPath := fs.String("frames", "", "captured frames, JSON lines (default <out>/frames.jsonl; missing is fine)")
	outDir := fs.String("out", "", "output directory (default: the report's directory)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: t2jreport [flags] [report.json]\n\nJudges a Ginkgo JSON report against declared limits and writes junit.xml,\nreport.html and summary.md. Exit status: 0 pass, 1 fail, 2 usage or input error.\n\n")
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
	case *reportPath == "":
		return usage("no report: give the Ginkgo JSON report (-report out/emulate/report.json)")
	}

	rs, err := reports.LoadReports(*reportPath)
	if err != nil {
		return usage("%v", err)
	}
	var rig *reports.RigSummary
	if *rigPath != "" {
		if rig, err = reports.LoadRigSummary(*rigPath); err != nil {
			return usage("%v", err)
		}
	}
	name := *limitsName
	if name == "" {
		name = "emulated"
		if rig != nil && rig.Name != "" {
			name = rig.Name
		}
	}
	lp, err := reports.FindLimits(name)
	if err != nil {
		if *limitsName == "" {
			return usage("%v; no -limits given, so the rig's name was used: give -limits", err)
		}
		return usage("%v", err)
	}
	limits, err := reports.LoadLimits(lp)
	if err != nil {
		return usage("%v", err)
	}
	if *outDir == "" {
		*outDir = filepath.Dir(*reportPath)
	}
	if *framesPath == "" {
		*framesPath = filepath.Join(*outDir, "frames.jsonl")
	}
	frames, err := reports.LoadFrames(*framesPath)
	if err != nil {
		return usage("%v", err)
	}

	r := reports.NewRun(rs, limits, rig, frames)
	paths, err := r.WriteFiles(*outDir)
	if err != nil {
		return usage("%v", err)
	}
	o := r.Outcome
	for _, v := range o.Violations {
		fmt.Fprintf(stderr, "VIOLATION %s: %s\n", v.Kind, v.Message)
	}
	for _, c := range o.Marginals() {
		fmt.Fprintf(stdout, "MARGINAL %s%s = %s %s: %s\n", c.Measurement.Name, boardSuffix(c.Measurement.Board), fmt.Sprint(c.Measurement.Value), c.Measurement.Unit, c.Reason)
	}
	fmt.Fprintf(stdout, "verdict: %s\n", o.Line())
	fmt.Fprintf(stdout, "limits: %s\n", lp)
	for _, p := range paths {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if !o.Status.Passed() {
		return exitFail
	}
	return exitPass
}

func boardSuffix(b string) string {
	if b == "" {
		return ""
	}
	return " on " + b
}
