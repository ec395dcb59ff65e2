package rigs

import (
	"errors"
	"strings"
	"testing"
)

// The lab example is a complete, valid rig file: Validate accepts it and
// names what Up cannot drive yet; Load refuses it with the same list.
func TestLabRigValidatesWithGaps(t *testing.T) {
	p, err := Find("rigs/lab-nucleo-wl55.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, gaps, err := Validate(p)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	h := f.Boards[0].Hardware
	if h == nil || h.I2C.Bus != "I2C2" || h.GPO.Pin != "PA6" || f.Boards[0].Lease.Resource != "nucleo-wl55-1" {
		t.Fatalf("hardware/lease not read: %+v %+v", h, f.Boards[0].Lease)
	}
	joined := strings.Join(gaps, "\n")
	for _, want := range []string{"real boards are not supported yet", "real gateways", "flashing", "lease"} {
		if !strings.Contains(joined, want) {
			t.Errorf("gaps do not mention %q:\n%s", want, joined)
		}
	}
	_, err = Load(p)
	var ns *NotSupportedError
	if !errors.As(err, &ns) || len(ns.Gaps) == 0 {
		t.Fatalf("Load = %v, want a *NotSupportedError", err)
	}
}

func TestLabSettingsAreChecked(t *testing.T) {
	bad := `
name: x
boards:
  - name: b
    emulated: false
    nfc: {transport: pcsc, reader: R}
    hardware:
      mcu: NUCLEO-WL55JC1
      tag: X-NUCLEO-NFC07A1
      i2c: {bus: I2C9, scl: PA12, sda: PZ1, hz: 3000000}
      gpo: {pin: PA6, exti: 5}
    lease: {resource: "a/b", ttl: 1ms}
gateways:
  - {id: 0016C001FF10D3F6, emulated: false, hardware: {forwarder: carrier-pigeon}}
`
	_, err := parse([]byte(bad))
	if err == nil {
		t.Fatal("bad lab settings accepted")
	}
	for _, want := range []string{"I2C9", "PZ1", "3000000", "EXTI line 6", "lease.resource", "lease.ttl", "carrier-pigeon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if _, err := Parse([]byte("name: e\nboards: [{name: b, emulated: true, unique_id: 0080E11500000001, hardware: {mcu: x}}]\n")); err == nil {
		t.Error("hardware on an emulated board accepted")
	}
}
