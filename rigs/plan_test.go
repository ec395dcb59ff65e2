package rigs_test

import (
	"testing"

	"github.com/tap2join/tap2join/rigs"
)

// offers asks a live board / rig for a capability by name.
func offers(r *rigs.Rig, name string) bool {
	b := r.Boards[0]
	var err error
	switch name {
	case "PhoneHand":
		_, err = rigs.BoardCapability[rigs.PhoneHand](b)
	case "MailboxWatchdog":
		_, err = rigs.BoardCapability[rigs.MailboxWatchdog](b)
	case "MCUControl":
		_, err = rigs.BoardCapability[rigs.MCUControl](b)
	case "TagHost":
		_, err = rigs.BoardCapability[rigs.TagHost](b)
	case "ModelClock":
		_, err = rigs.BoardCapability[rigs.ModelClock](b)
	case "FirmwareSlot":
		_, err = rigs.BoardCapability[rigs.FirmwareSlot](b)
	case "PowerSwitch":
		_, err = rigs.BoardCapability[rigs.PowerSwitch](b)
	case "NVMCut":
		_, err = rigs.BoardCapability[rigs.NVMCut](b)
	case "GatewaySwitch":
		_, err = rigs.RigCapability[rigs.GatewaySwitch](r)
	case "BrokerRestart":
		_, err = rigs.RigCapability[rigs.BrokerRestart](r)
	case "NetworkServerRestart":
		_, err = rigs.RigCapability[rigs.NetworkServerRestart](r)
	case "OtherNetworks":
		_, err = rigs.RigCapability[rigs.OtherNetworks](r)
	default:
		panic(name)
	}
	return err == nil
}

// The plan (from the rig file) and the rig once up agree on every
// capability, for a board with the firmware twin and for a bare tag.
func TestPlanMatchesTheRig(t *testing.T) {
	for _, path := range []string{"rigs/emulated.yaml", "rigs/tag-direct.yaml"} {
		f := loadRigFile(t, path)
		r := upRig(t, f)
		for _, name := range append(append([]string(nil), rigs.BoardCapabilities...), rigs.RigCapabilities...) {
			planned, reason := f.PlannedCapability(name)
			if got := offers(r, name); got != planned {
				t.Errorf("%s: %s: planned %v (%s), the rig offers it: %v", path, name, planned, reason, got)
			}
		}
	}
	if ok, reason := loadRigFile(t, "rigs/lab-nucleo-wl55.yaml").PlannedCapability("PhoneHand"); ok || reason == "" {
		t.Errorf("lab rig PhoneHand planned %v %q", ok, reason)
	}
	if ok, _ := loadRigFile(t, "rigs/emulated.yaml").PlannedCapability("Frobnicate"); ok {
		t.Error("an unknown capability planned")
	}
}
