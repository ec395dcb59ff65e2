package main

import (
	"bytes"
	"strings"
	"testing"
)

// The lab example is valid as a file (-offline) and not a bench here: its
// values are placeholders and its port and reader are not on this machine.
func TestLabExample(t *testing.T) {
	const lab = "../../lab-nucleo-wl55.yaml"
	var out, errOut bytes.Buffer
	if rc := run([]string{"-offline", lab}, &out, &errOut); rc != 0 {
		t.Fatalf("-offline: exit %d: %s", rc, errOut.String())
	}
	if !strings.Contains(out.String(), `rig "lab-nucleo-wl55" valid`) {
		t.Errorf("-offline output:\n%s", out.String())
	}
	out.Reset()
	if rc := run([]string{lab}, &out, &errOut); rc != 1 {
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
