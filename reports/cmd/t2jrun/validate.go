package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tap2join/tap2join/reports"
)

// Modes.
const (
	modeEmulate     = "emulate"
	modeLab         = "lab"
	modeIntegration = "integration"
)

// emulateFilter is the label filter of make emulate: no Docker, no pcscd
// (make integration runs those).
const emulateFilter = "!needs:docker && !needs:pcscd"

// integrationFilter is the label filter of make integration: the specs
// that need real processes beside them (pcscd + vpcd, Docker), judged
// against reports/limits/integration.yaml (wall-clock limits).
const integrationFilter = "needs:docker || needs:pcscd"

// inputs are the validated inputs of a run.
type inputs struct {
	Mode        string
	Rig         string // as given (relative to the module root)
	RigName     string
	RigGaps     []string // parts rigs.Validate accepts but Up cannot drive (notes)
	Network     string   // the rig's network kind
	ImageSet    string   // the rig's network.image_set
	Limits      string   // resolved limits file
	LimitsSHA   string
	Baseline    string
	LabelFilter string
}

// badInput is an input error: exit 2 before anything runs.
type badInput struct{ msg string }

func (e badInput) Error() string { return e.msg }

func bad(format string, a ...any) error {
	return badInput{oneLine(fmt.Sprintf(format, a...))}
}

// oneLine joins a multi-line message (errors.Join) with "; ".
func oneLine(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// rigHead is what the driver reads of a rig file itself: enough to pick the
// limits and name the network server. The whole file is checked by
// rigs.Validate (through rigs/cmd/rigcheck, checkRig), which this command
// does not import: linking rigs (every emulator, gRPC, MQTT, PC/SC) would
// make the first run on a fresh clone take seconds before it could say that
// a limits file is missing.
type rigHead struct {
	Name    string `yaml:"name"`
	Network struct {
		Kind     string `yaml:"kind"`
		ImageSet string `yaml:"image_set"`
	} `yaml:"network"`
}

// validate checks the inputs that need no build: the rig file exists and
// parses, the limits file exists and is valid, the baseline exists. For lab
// runs the rig must be given and must have a name, which picks
// reports/limits/<rig name>.yaml unless limits are given.
func validate(c config) (inputs, error) {
	in := inputs{Mode: c.Mode, Baseline: c.Baseline}
	switch c.Mode {
	case modeEmulate, modeLab, modeIntegration:
	default:
		return in, bad("-mode %q: want emulate, lab or integration", c.Mode)
	}
	if c.Rig == "" {
		if c.Mode == modeLab {
			return in, bad("lab: name the bench's rig file: make lab RIG=rigs/lab-<bench>.yaml")
		}
		return in, bad("no rig file (-rig)")
	}
	raw, err := os.ReadFile(c.Rig)
	if err != nil {
		return in, bad("rig file %s: %v", c.Rig, unwrap(err))
	}
	var head rigHead
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return in, bad("rig file %s is not valid: %v", c.Rig, err)
	}
	in.Rig, in.RigName = c.Rig, head.Name
	in.Network, in.ImageSet = head.Network.Kind, head.Network.ImageSet
	if in.Network == "" {
		in.Network = "embedded" // rigs' default
	}

	limits := c.Limits
	switch {
	case c.Mode == modeLab && head.Name == "":
		return in, bad("lab: rig file %s has no name: (a bench's runs are judged against reports/limits/<rig name>.yaml): add name: to it", c.Rig)
	case limits == "" && c.Mode == modeLab:
		limits = head.Name
	case limits == "" && c.Mode == modeIntegration:
		limits = "integration"
	case limits == "":
		// An emulated rig with its own limits file (reports/limits/
		// emulated-st25ftm.yaml) is judged by it; any other by emulated.
		limits = "emulated"
		if head.Name != "" {
			if p, err := reports.FindLimits(head.Name); err == nil {
				if _, err := os.Stat(p); err == nil {
					limits = head.Name
				}
			}
		}
	}
	hint := ""
	if c.Limits == "" && c.Mode == modeLab {
		hint = " (a lab run is judged against reports/limits/<rig name>.yaml: write it, or give LIMITS=)"
	}
	p, err := reports.FindLimits(limits)
	if err != nil {
		return in, bad("%v%s", trimLimits(err), hint)
	}
	if _, err := os.Stat(p); err != nil {
		return in, bad("limits file %s: %v%s", p, unwrap(err), hint)
	}
	if _, err := reports.LoadLimits(p); err != nil {
		return in, bad("limits file %s is not valid: %v", p, trimLimits(err))
	}
	lraw, err := os.ReadFile(p)
	if err != nil {
		return in, bad("limits file %s: %v", p, err)
	}
	sum := sha256.Sum256(lraw)
	in.Limits, in.LimitsSHA = p, hex.EncodeToString(sum[:])

	if c.Baseline != "" {
		if st, err := os.Stat(c.Baseline); err != nil {
			return in, bad("baseline %s: %v", c.Baseline, unwrap(err))
		} else if st.IsDir() {
			return in, bad("baseline %s is a folder: give a report.json (e.g. out/emulate/<run id>/report.json)", c.Baseline)
		}
	}

	in.LabelFilter = c.Labels
	if f := map[string]string{modeEmulate: emulateFilter, modeIntegration: integrationFilter}[c.Mode]; f != "" {
		in.LabelFilter = f
		if c.Labels != "" {
			in.LabelFilter = "(" + f + ") && (" + c.Labels + ")"
		}
	}
	return in, nil
}

func unwrap(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func trimLimits(err error) string {
	return strings.TrimPrefix(err.Error(), "limits: ")
}

// checkOutBase refuses an output base that is a file. Writability is proven
// by creating the run folder.
func checkOutBase(out string) error {
	if out == "" {
		return bad("no output folder (-out)")
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return bad("output folder %s is a file", out)
	}
	return nil
}

// checkRig validates the rig file with rigs.Validate through
// rigs/cmd/rigcheck, built into binDir (go build relinks only when rigs
// changed; GOTMPDIR in binDir makes it rename the new binary into place, so
// runs at once never see half of one). online (lab) also looks for the
// bench's ports and readers and rejects placeholder values
// (rigs.CheckBench). It returns what Up leaves to the job (notes).
func checkRig(goCmd, tags, binDir, rig string, online bool) ([]string, error) {
	tmp := filepath.Join(binDir, ".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, bad("rigcheck: %v", err)
	}
	args := []string{"build"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "-o", binDir+string(filepath.Separator), "./rigs/cmd/rigcheck")
	build := exec.Command(goCmd, args...)
	build.Env = append(os.Environ(), "GOTMPDIR="+abs(tmp))
	if out, err := build.CombinedOutput(); err != nil {
		return nil, bad("rigs/cmd/rigcheck does not build (so the rig cannot be checked): %s", firstLines(out, 3))
	}
	rargs := []string{"-plan=false", rig} // the run itself is the plan
	if !online {
		rargs = []string{"-plan=false", "-offline", rig}
	}
	var stdout, stderr bytes.Buffer
	run := exec.Command(filepath.Join(binDir, "rigcheck"), rargs...)
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		msg = strings.TrimPrefix(msg, "rigs: ")
		msg = strings.TrimPrefix(msg, rig+": ")
		return nil, bad("rig file %s: %s", rig, msg)
	}
	var gaps []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if g, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "not done by Up: "); ok {
			gaps = append(gaps, g)
		}
	}
	return gaps, nil
}

func firstLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// abs is filepath.Abs that keeps the path when it cannot make it absolute.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
