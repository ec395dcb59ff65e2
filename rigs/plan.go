package rigs

import (
	"fmt"
	"slices"
)

// The spec plan: which capabilities a bench will offer, worked out from its
// rig file alone, so `rigcheck -plan` can say before a run which specs will
// run on it and which will skip, and why — as BoardCapability and
// RigCapability decide once the rig is up (capabilities_test.go checks the
// two agree on the emulated rigs). Specs declare what they need with a
// Ginkgo label CapabilityLabel(name) (suites/kit enforces it).

// Board capability names (the interfaces), and the two board properties
// specs also ask for.
var (
	BoardCapabilities = []string{"PhoneHand", "MailboxWatchdog", "MCUControl", "TagHost", "ModelClock", "FirmwareSlot", "PowerSwitch", "NVMCut"}
	RigCapabilities   = []string{"GatewaySwitch", "BrokerRestart", "NetworkServerRestart", "OtherNetworks"}
)

const (
	// CapFirmwareFaults is a board whose firmware can be told to misbehave
	// (BoardSpec.FirmwareFaults).
	CapFirmwareFaults = "firmware-faults"
	// CapCopies is a board that can be copied into a fleet
	// (BoardSpec.Replicable).
	CapCopies = "copies"
)

// CapabilityLabel is the Ginkgo label of a spec needing capability name.
func CapabilityLabel(name string) string { return "cap:" + name }

// PlannedCapability says whether the bench of f will offer capability name
// (every board, for a board capability) and, when it will not, why.
func (f *File) PlannedCapability(name string) (ok bool, reason string) {
	switch {
	case name == CapFirmwareFaults || name == CapCopies:
		for _, b := range f.Boards {
			err := b.FirmwareFaults()
			if name == CapCopies {
				err = b.Replicable()
			}
			if err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	case slices.Contains(BoardCapabilities, name):
		for _, b := range f.Boards {
			if r := b.plannedLack(name); r != "" {
				return false, (&MissingCapabilityError{Part: "board " + b.Name, Capability: name, Reason: r}).Error()
			}
		}
		return true, ""
	case slices.Contains(RigCapabilities, name):
		emulatedGateways := 0
		for _, g := range f.Gateways {
			if g.Emulated {
				emulatedGateways++
			}
		}
		has := false
		switch name {
		case "GatewaySwitch", "OtherNetworks":
			has = emulatedGateways > 0
		case "BrokerRestart", "NetworkServerRestart":
			has = f.Network.Kind == "" || f.Network.Kind == "embedded"
		}
		if has {
			return true, ""
		}
		return false, (&MissingCapabilityError{Part: "rig " + f.Name, Capability: name,
			Reason: fmt.Sprintf("no part of it does (network %s, %d emulated gateway(s))", f.Network.Kind, emulatedGateways)}).Error()
	}
	return false, fmt.Sprintf("rigs: no capability %q is known (spec label %s)", name, CapabilityLabel(name))
}

// plannedLack is why board b will lack a board capability ("" if it will
// offer it): what upEmulatedBoard, upBareTag and upRealBoard give it.
func (b BoardSpec) plannedLack(name string) string {
	switch {
	case !b.Emulated && name == "PowerSwitch" && b.Power != nil:
		return ""
	case !b.Emulated && name == "MCUControl" && b.Reset != nil:
		return ""
	case !b.Emulated && name == "PhoneHand" && b.NFC.FieldControl:
		return ""
	case !b.Emulated:
		return realBoardLacks[""]
	case b.Firmware == FirmwareNone:
		if name == "MCUControl" || name == "FirmwareSlot" || name == "PowerSwitch" || name == "NVMCut" {
			return "its MCU runs no firmware (rig file firmware: none)"
		}
		return ""
	case name == "TagHost":
		return firmwareOwnsTag
	}
	return ""
}
