package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// rigYAML is a valid emulated rig; name is its name: line ("" for none).
func rigYAML(name string) string {
	s := `timing: instant
network:
  kind: embedded
gateways:
  - id: 0016C001FF10D3F6
    emulated: true
boards:
  - name: board-1
    emulated: true
    unique_id: 0080E11500000001
`
	if name != "" {
		s = "name: " + name + "\n" + s
	}
	return s
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// emulatedLimits is the real default limits file (found from the module root).
func emulatedLimits(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../limits/emulated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateAcceptsTheDefaults(t *testing.T) {
	dir := t.TempDir()
	rig := writeFile(t, dir, "rig.yaml", rigYAML("bench-x"))
	in, err := validate(config{Mode: modeEmulate, Rig: rig})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(in.Limits) != "emulated.yaml" || len(in.LimitsSHA) != 64 {
		t.Errorf("limits %q sha %q: want reports/limits/emulated.yaml and its SHA-256", in.Limits, in.LimitsSHA)
	}
	if in.RigName != "bench-x" || in.Network != "embedded" {
		t.Errorf("rig name %q network %q", in.RigName, in.Network)
	}
	if in.LabelFilter != emulateFilter {
		t.Errorf("label filter %q, want %q", in.LabelFilter, emulateFilter)
	}

	in, err = validate(config{Mode: modeEmulate, Rig: rig, Labels: "ftm"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "(" + emulateFilter + ") && (ftm)"; in.LabelFilter != want {
		t.Errorf("label filter %q, want %q", in.LabelFilter, want)
	}

	// A lab rig with a name and LIMITS given; LABELS as they are.
	in, err = validate(config{Mode: modeLab, Rig: rig, Limits: "emulated", Labels: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if in.LabelFilter != "lab" || filepath.Base(in.Limits) != "emulated.yaml" {
		t.Errorf("lab: filter %q limits %q", in.LabelFilter, in.Limits)
	}

	// make integration: the pcscd and Docker specs, judged against the
	// wall-clock limits; make containers narrows it to Docker.
	in, err = validate(config{Mode: modeIntegration, Rig: rig, Labels: "needs:docker"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "(needs:docker || needs:pcscd) && (needs:docker)"; in.LabelFilter != want || filepath.Base(in.Limits) != "integration.yaml" {
		t.Errorf("integration: filter %q limits %q", in.LabelFilter, in.Limits)
	}
}

func TestValidateRefusesBadInputInOneLine(t *testing.T) {
	dir := t.TempDir()
	rig := writeFile(t, dir, "rig.yaml", rigYAML("bench-x"))
	unnamed := writeFile(t, dir, "unnamed.yaml", rigYAML(""))
	invalid := writeFile(t, dir, "invalid.yaml", "name: [x\n")
	badLimits := writeFile(t, dir, "limits.yaml", "limits:\n  - measurement: x\n    unit: ms\n    hgih: 3\n")
	noLimitsForBench := writeFile(t, dir, "nolimits.yaml", rigYAML("no-such-bench-limits"))

	for _, tc := range []struct {
		name string
		c    config
		want string
	}{
		{"unknown mode", config{Mode: "bench", Rig: rig}, `-mode "bench"`},
		{"missing rig", config{Mode: modeEmulate, Rig: filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file"},
		{"not YAML", config{Mode: modeEmulate, Rig: invalid}, "is not valid"},
		{"missing limits file", config{Mode: modeEmulate, Rig: rig, Limits: "missing.yaml"}, `"missing.yaml" not found`},
		{"missing limits name", config{Mode: modeEmulate, Rig: rig, Limits: "nosuchname"}, "not found"},
		{"absolute missing limits", config{Mode: modeEmulate, Rig: rig, Limits: filepath.Join(dir, "x.yaml")}, "x.yaml: no such file"},
		{"bad limits", config{Mode: modeEmulate, Rig: rig, Limits: badLimits}, "is not valid"},
		{"lab without rig", config{Mode: modeLab}, "make lab RIG="},
		{"lab rig without name", config{Mode: modeLab, Rig: unnamed}, "has no name"},
		{"lab rig without name, limits given", config{Mode: modeLab, Rig: unnamed, Limits: "emulated"}, "has no name"},
		{"lab without limits file", config{Mode: modeLab, Rig: noLimitsForBench}, "reports/limits/<rig name>.yaml"},
		{"missing baseline", config{Mode: modeEmulate, Rig: rig, Baseline: filepath.Join(dir, "old.json")}, "old.json: no such file"},
		{"baseline folder", config{Mode: modeEmulate, Rig: rig, Baseline: dir}, "is a folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validate(tc.c)
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if _, ok := err.(badInput); !ok {
				t.Errorf("%T, want badInput", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("%q does not say %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("%q is more than one line", msg)
			}
		})
	}
}

func TestCheckOutBase(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "file", "")
	if err := checkOutBase(f); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("a file as output base: %v", err)
	}
	if err := checkOutBase(filepath.Join(dir, "new")); err != nil {
		t.Errorf("a folder still to be made: %v", err)
	}
}

// checkRig builds rigs/cmd/rigcheck and asks it: every rig setting is
// rigs.Validate's to judge, in one line.
func TestCheckRigThroughRigcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rigs/cmd/rigcheck")
	}
	dir := t.TempDir()
	valid := writeFile(t, dir, "valid.yaml", rigYAML("bench-x"))
	unknown := writeFile(t, dir, "unknown.yaml", rigYAML("x")+"colour: blue\n")
	badTiming := writeFile(t, dir, "timing.yaml", strings.Replace(rigYAML("x"), "timing: instant", "timing: sometimes", 1))
	t.Chdir("../../..") // the module root, where make runs the driver
	// make's BIN: after a make emulate the build is a no-op, and the run
	// after this test finds rigcheck built.
	bin := filepath.Join("out", "bin")
	tags := "" // as the Makefile picks them
	if exec.Command("pkg-config", "--exists", "libpcsclite").Run() != nil {
		tags = "nopcsc"
	}
	if _, err := checkRig("go", tags, bin, valid, false); err != nil {
		t.Fatalf("valid rig: %v", err)
	}
	// The lab example without its flash part: Up would not flash the image
	// it names, and rigcheck's note about that reaches the driver.
	lab, err := os.ReadFile("rigs/lab-nucleo-wl55.yaml")
	if err != nil {
		t.Fatal(err)
	}
	noFlash := regexp.MustCompile(`(?m)^    flash:\n(      .*\n|\s+#.*\n)*`).ReplaceAllString(string(lab), "")
	if noFlash == string(lab) {
		t.Fatal("the lab rig's flash part was not found to remove")
	}
	labNoFlash := writeFile(t, dir, "lab.yaml", noFlash)
	gaps, err := checkRig("go", tags, bin, labNoFlash, false)
	if err != nil || len(gaps) == 0 || !strings.Contains(gaps[0], "firmware.image") {
		t.Errorf("lab rig without flash part, offline: gaps %q, %v; want the flashing note", gaps, err)
	}
	for _, tc := range []struct{ rig, want string }{{unknown, "colour"}, {badTiming, "timing"}} {
		_, err := checkRig("go", tags, bin, tc.rig, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line naming %q", filepath.Base(tc.rig), err, tc.want)
		}
		if _, ok := err.(badInput); !ok {
			t.Errorf("%T, want badInput", err)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb": "a; b",
		"rig x: not as it says:\n  port missing\n  reader missing\n": "rig x: not as it says: port missing; reader missing",
		"  spaced   out  ": "spaced out",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
