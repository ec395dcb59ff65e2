package main

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/rigs"
)

// The lab example is valid as a file (-offline) and not a bench here: its
// values are placeholders and its port and reader are not on this machine.
func TestLabExample(t *testing.T) {
	const lab = "../../lab-nucleo-wl55.yaml"
	var out, errOut bytes.Buffer
	if rc := run([]string{"-plan=false", "-offline", lab}, &out, &errOut); rc != 0 {
		t.Fatalf("-offline: exit %d: %s", rc, errOut.String())
	}
	if !strings.Contains(out.String(), `rig "lab-nucleo-wl55" valid`) {
		t.Errorf("-offline output:\n%s", out.String())
	}
	out.Reset()
	if rc := run([]string{"-plan=false", lab}, &out, &errOut); rc != 1 {
		t.Fatalf("bench check: exit %d, want 1", rc)
	}
	for _, want := range []string{"the bench is not as the file says", "placeholder", "serial.usb_serial 0026003A3331510A33353533: no USB serial port",
		"flash: the ST-LINK 0026003A3331510A33353533 (hardware.probe.usb_serial) is not on the USB bus"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("bench check does not say %q:\n%s", want, errOut.String())
		}
	}
	if rc := run(nil, &out, &errOut); rc != 2 {
		t.Errorf("no arguments: exit %d, want 2", rc)
	}
}

// The spec plan of the lab example: compiled and walked with ginkgo
// --dry-run, every spec listed; those needing a part the bench lacks skip,
// naming it; the flow runs.
func TestLabPlan(t *testing.T) {
	const lab = "../../lab-nucleo-wl55.yaml"
	leftBefore := planLeftovers(t)
	var out, errOut bytes.Buffer
	if rc := run([]string{"-offline", lab}, &out, &errOut); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errOut.String())
	}
	for _, want := range []string{
		"run  provisioning: NFC provisioning to OTAA join taps each board, writes its AppKey through the FTM mailbox and sees it join",
		"skip faults: the phone lifted mid-write",
		"offers no PhoneHand",
		"skip provisioning: a board that stores a wrong key does not join, and the failure names the join phase — board nucleo-wl55-1 offers no firmware faults",
		"spec plan: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan does not say %q:\n%s", want, out.String())
		}
	}
	// ginkgo writes a per-suite report beside each suite unless told an
	// output folder; the plan leaves nothing behind in the tree.
	for _, p := range planLeftovers(t) {
		if !slices.Contains(leftBefore, p) {
			t.Errorf("the plan left %s in the suites", p)
		}
	}
}

// planLeftovers lists the folders named like the plan's temporary one
// anywhere under the suites (wherever $TMPDIR pointed, ginkgo joined it to
// each suite's folder).
func planLeftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("../../../suites", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "rigcheck-plan-") {
			out = append(out, p)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPlanOne(t *testing.T) {
	f, err := rigs.Load("../../emulated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p := planOne(f, "faults", "x", []string{"faults", "cap:PhoneHand", "needs:docker"}); p.Skip != "" || p.Note != "needs Docker (make integration)" {
		t.Errorf("emulated PhoneHand: %+v", p)
	}
	if p := planOne(f, "faults", "x", []string{"cap:TagHost"}); !strings.Contains(p.Skip, "offers no TagHost") {
		t.Errorf("emulated TagHost: %+v", p)
	}
}
