package rigs

import (
	"errors"
	"strings"
	"testing"
)

// A real board offers no capability: the error names the board, the
// capability and why, and matches ErrMissingCapability; the emulated twin
// offers every board capability.
func TestBoardCapabilities(t *testing.T) {
	real := &Board{Name: "nucleo-1", lacks: realBoardLacks}
	_, err := BoardCapability[PhoneHand](real)
	var mc *MissingCapabilityError
	if !errors.As(err, &mc) || !errors.Is(err, ErrMissingCapability) {
		t.Fatalf("real board: %v, want a *MissingCapabilityError", err)
	}
	for _, want := range []string{"board nucleo-1", "PhoneHand", "hardware"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	emulated := &Board{Name: "board-1", parts: []any{&twin{}}}
	if _, err := BoardCapability[PhoneHand](emulated); err != nil {
		t.Errorf("PhoneHand: %v", err)
	}
	if _, err := BoardCapability[MCUControl](emulated); err != nil {
		t.Errorf("MCUControl: %v", err)
	}
	if _, err := BoardCapability[MailboxWatchdog](emulated); err != nil {
		t.Errorf("MailboxWatchdog: %v", err)
	}
	if _, err := BoardCapability[GatewaySwitch](emulated); err == nil {
		t.Error("a board offers a rig capability")
	}
}

func TestRigCapabilities(t *testing.T) {
	r := &Rig{File: &File{Name: "lab", Network: Network{Kind: "external"}}}
	_, err := RigCapability[BrokerRestart](r)
	if !errors.Is(err, ErrMissingCapability) || !strings.Contains(err.Error(), "rig lab offers no BrokerRestart") {
		t.Fatalf("external network: %v", err)
	}
	r.parts = []any{embeddedServer{}, gatewaySwitch{r}, otherNetworks{r}}
	if _, err := RigCapability[NetworkServerRestart](r); err != nil {
		t.Error(err)
	}
	if _, err := RigCapability[GatewaySwitch](r); err != nil {
		t.Error(err)
	}
	if _, err := RigCapability[OtherNetworks](r); err != nil {
		t.Error(err)
	}
}

// faults: asks the firmware to misbehave; a real board runs what it was
// flashed with, so the rig file may not ask it (and Up refuses a File a
// suite changed after Load).
func TestFaultsRefusedOnRealBoards(t *testing.T) {
	const lab = `
name: x
network: {kind: external, api: "h:1", token: t, mqtt: "tcp://h:1"}
boards:
  - name: b
    emulated: false
    nfc: {transport: pcsc, reader: R}
    hardware:
      mcu: NUCLEO-WL55JC1
      tag: X-NUCLEO-NFC07A1
      i2c: {bus: I2C2, scl: PA12, sda: PA11, hz: 1000000}
      gpo: {pin: PA6, exti: 6}
    faults: {store_corrupt_key: true}
`
	_, err := Parse([]byte(lab))
	if err == nil || !strings.Contains(err.Error(), "faults") || !errors.Is(err, ErrMissingCapability) {
		t.Fatalf("faults on a real board: %v", err)
	}
	f, err := Parse([]byte(strings.Replace(lab, "    faults: {store_corrupt_key: true}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Boards[0].FirmwareFaults(); !errors.Is(err, ErrMissingCapability) {
		t.Errorf("FirmwareFaults of a real board: %v", err)
	}
	if err := f.Boards[0].Replicable(); !errors.Is(err, ErrMissingCapability) {
		t.Errorf("Replicable of a real board: %v", err)
	}
	f.Boards[0].Faults.KeyReadBack = true
	if _, err := Up(t.Context(), f, Options{}); err == nil || !errors.Is(err, ErrMissingCapability) {
		t.Errorf("Up with faults on a real board: %v", err)
	}
}
