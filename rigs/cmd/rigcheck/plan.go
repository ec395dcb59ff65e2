package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/tap2join/tap2join/rigs"
)

// The spec plan: every spec of the suites with what a run on the rig would
// do with it — run, or skip and why — from the specs' labels (a capability
// a spec needs: cap:<name>, suites/kit enforces it; needs:docker and
// needs:pcscd; slow) and the capabilities the rig file's bench will offer
// (rigs.File.PlannedCapability). The suites are compiled and walked with
// `ginkgo --dry-run` (nothing runs), with TAP2JOIN_RIG set to the rig, so
// specs declared for one mailbox protocol only are planned as the run
// would see them.

// planSpec is one spec of the plan.
type planSpec struct {
	Suite, Text string
	Skip        string // why it will skip ("" = it will run)
	Note        string // a condition on running it (needs Docker, …)
}

// plan builds the spec plan of rig file f (at path).
func plan(path string, f *rigs.File, progress io.Writer) ([]planSpec, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rigcheck-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	report := filepath.Join(dir, "plan.json")
	// --output-dir, not a path in --json-report: ginkgo joins the report's
	// path to every suite's folder for the per-suite reports it merges
	// (ginkgo/internal/profiles_and_reports.go AbsPathForGeneratedAsset),
	// which left an empty tmp/rigcheck-plan-… in each suite.
	args := []string{"tool", "ginkgo", "--dry-run", "--keep-going", "--no-color", "--output-dir=" + dir, "--json-report=plan.json"}
	if exec.Command("pkg-config", "--exists", "libpcsclite").Run() != nil {
		args = append(args, "--tags=nopcsc") // as the Makefile builds without the PC/SC headers
	}
	args = append(args, "./suites/...")
	fmt.Fprintf(progress, "rigcheck: compiling the suites for the spec plan (go %s)…\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TAP2JOIN_RIG="+abs, "TAP2JOIN_PROGRESS=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, serr := os.Stat(report); serr != nil {
			return nil, fmt.Errorf("spec plan: ginkgo --dry-run: %v: %s", err, lastLines(string(out), 5))
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		return nil, fmt.Errorf("spec plan: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(raw, &reports); err != nil {
		return nil, fmt.Errorf("spec plan: %s: %w", report, err)
	}
	var out []planSpec
	for _, r := range reports {
		suite := filepath.Base(r.SuitePath)
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			out = append(out, planOne(f, suite, s.FullText(), s.Labels()))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Suite < out[j].Suite })
	return out, nil
}

// planOne decides one spec from its labels.
func planOne(f *rigs.File, suite, text string, labels []string) planSpec {
	p := planSpec{Suite: suite, Text: text}
	var notes []string
	for _, l := range labels {
		switch {
		case strings.HasPrefix(l, "cap:"):
			if ok, reason := f.PlannedCapability(strings.TrimPrefix(l, "cap:")); !ok && p.Skip == "" {
				p.Skip = reason
			}
		case l == "needs:docker":
			notes = append(notes, "needs Docker (make integration)")
		case l == "needs:pcscd":
			notes = append(notes, "needs pcscd + vpcd (make integration)")
		case l == "slow":
			notes = append(notes, "only with the label slow")
		}
	}
	p.Note = strings.Join(notes, "; ")
	return p
}

// printPlan writes the plan, one spec a line, and a count.
func printPlan(w io.Writer, specs []planSpec) {
	run, skip := 0, 0
	for _, s := range specs {
		verdict, why := "run ", ""
		if s.Skip != "" {
			verdict, why = "skip", " — "+strings.TrimPrefix(s.Skip, "rigs: ")
			skip++
		} else {
			run++
		}
		if s.Note != "" {
			why += " (" + s.Note + ")"
		}
		fmt.Fprintf(w, "  %s %s: %s%s\n", verdict, s.Suite, s.Text, why)
	}
	fmt.Fprintf(w, "  spec plan: %d run, %d skip\n", run, skip)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("spec plan: run rigcheck inside the tap2join module (no go.mod above %s)", dir)
		}
		dir = parent
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
