package rigs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// The lab example is a complete, valid rig file: Load accepts it (Up drives
// real boards), Validate reads the bench wiring and names the one thing Up
// does not do, flashing; a real gateway behind the local image set (no
// Gateway Bridge) is refused with a NotSupportedError.
func TestLabRigLoads(t *testing.T) {
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
	if f.Network.GatewayUDPPort != 1700 {
		t.Errorf("gateway_udp_port default %d, want 1700", f.Network.GatewayUDPPort)
	}
	if len(gaps) != 0 {
		t.Errorf("gaps = %q, want none (the flash part flashes the image)", gaps)
	}
	if fl := f.Boards[0].Flash; fl == nil || fl.Tool != "openocd" || f.Boards[0].flashImage() != "out/firmware/tap2join-wl55.bin" {
		t.Errorf("flash part not read: %+v", fl)
	}
	if p, r := f.Boards[0].Power, f.Boards[0].Reset; p == nil || p.Kind != "uhubctl" || p.Hub != "1-1" || p.Port != 2 || r == nil || r.Kind != "openocd" {
		t.Errorf("power/reset parts not read: %+v %+v", p, r)
	}
	for _, c := range []string{"PowerSwitch", "MCUControl"} {
		if ok, why := f.PlannedCapability(c); !ok {
			t.Errorf("the lab bench with power and reset parts plans no %s: %s", c, why)
		}
	}
	if ok, _ := f.PlannedCapability("PhoneHand"); ok {
		t.Error("the lab bench plans a PhoneHand")
	}
	if _, err := Load(p); err != nil {
		t.Fatalf("Load: %v", err)
	}

	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse([]byte(strings.Replace(string(raw), "image_set: upstream", "image_set: local", 1)))
	var ns *NotSupportedError
	if !errors.As(err, &ns) || !strings.Contains(ns.Error(), "Gateway Bridge") {
		t.Fatalf("real gateway on the local image set: %v, want a *NotSupportedError naming the Gateway Bridge", err)
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

// A real gateway must be able to reach the network server: not the embedded
// one (loopback, random port), not a containers stack forwarding anything
// but Semtech UDP.
func TestRealGatewayNeedsAReachableServer(t *testing.T) {
	for _, tc := range []struct{ network, forwarder, want string }{
		{"{kind: embedded}", "semtech-udp", "cannot reach the embedded network server"},
		{"{kind: containers, image_set: upstream}", "basic-station", "publishes only the Gateway Bridge's Semtech UDP port"},
	} {
		raw := "name: x\nnetwork: " + tc.network + "\ngateways:\n  - id: 0016C001FF10D3F6\n    emulated: false\n    hardware: {model: m, forwarder: " + tc.forwarder + "}\nboards:\n  - name: b\n    emulated: true\n    unique_id: 0080E11500000001\n    nfc: {transport: direct}\n"
		_, err := Parse([]byte(raw))
		var ns *NotSupportedError
		if !errors.As(err, &ns) || !strings.Contains(ns.Error(), tc.want) {
			t.Errorf("%s / %s: %v, want a NotSupportedError saying %q", tc.network, tc.forwarder, err, tc.want)
		}
	}
}

// The shared-bench example: every other supported part (etcd lease,
// STM32_Programmer_CLI, GPIO relay and NRST, the reader's field) validates
// and gives the bench the capabilities its specs need.
func TestSharedLabRigLoads(t *testing.T) {
	p, err := Find("rigs/lab-nucleo-wl55-shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, gaps, err := Validate(p)
	if err != nil || len(gaps) != 0 {
		t.Fatalf("Validate: %v, gaps %q", err, gaps)
	}
	b := f.Boards[0]
	if b.Lease.Backend != "etcd" || len(b.Lease.Endpoints) != 1 || b.Flash.Tool != "stm32programmer" || b.Power.Kind != "gpio" || b.Reset.Kind != "gpio" || !b.NFC.FieldControl {
		t.Fatalf("parts not read: %+v %+v %+v %+v %+v", b.Lease, b.Flash, b.Power, b.Reset, b.NFC)
	}
	for _, c := range []string{"PhoneHand", "PowerSwitch", "MCUControl"} {
		if ok, why := f.PlannedCapability(c); !ok {
			t.Errorf("plans no %s: %s", c, why)
		}
	}
}
