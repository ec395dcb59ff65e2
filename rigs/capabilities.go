package rigs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/tap2join/tap2join/rigs/nfc"
)

// Capabilities: what a bench part can do besides the provisioning flow — the
// faults a spec injects. Each is a small interface a part of the rig may
// implement: an emulated board's twin offers all the board capabilities, the
// embedded network server restarts, emulated gateways can be cut. A spec asks
// for one (BoardCapability, RigCapability) and skips with the reason the
// error gives when the rig lacks it; a real bench offers one the day a part
// of it does (a relay on the board's power, a switchable gateway).

// ErrMissingCapability matches every *MissingCapabilityError (errors.Is).
var ErrMissingCapability = errors.New("rigs: the bench lacks a capability")

// MissingCapabilityError says which part of the bench lacks a capability,
// and why.
type MissingCapabilityError struct {
	Part       string // e.g. "board nucleo-wl55-1", "rig lab-nucleo-wl55"
	Capability string // the interface's name, e.g. "PhoneHand"
	Reason     string
}

func (e *MissingCapabilityError) Error() string {
	return fmt.Sprintf("rigs: %s offers no %s: %s", e.Part, e.Capability, e.Reason)
}

// Is makes errors.Is(err, ErrMissingCapability) true.
func (e *MissingCapabilityError) Is(target error) bool { return target == ErrMissingCapability }

// PhoneHand lifts the phone off a board's tag and lays it back: the RF field
// vanishes (RF sessions close, frames get no answer, nfc.ErrNoResponse; the
// mailbox keeps its message: DS13519 Fig 12 makes its state depend on VCC
// and MB_EN only — UNCONFIRMED by a test on silicon) and comes back (the tag
// boots into Ready). Through a PC/SC reader the card leaves the reader and
// comes back: each returns once pcscd reports it.
type PhoneHand interface {
	Lift() error
	Tap() error
}

// MailboxWatchdog lets the tag's mailbox watchdog (FTM.MB_WDG, DS13519
// Table 16, §5.1.2) expire now, as if its time had passed. It reports false when
// MB_WDG is 0 or no message is pending.
type MailboxWatchdog interface {
	ExpireMailboxWatchdog() (bool, error)
}

// MCUControl halts a board's firmware (a hung MCU, a debugger halt: it no
// longer reads the mailbox, answers its console or uses the radio; the tag
// keeps its VCC) and resets it (RAM lost, the context read from NVM, the tag
// configured again; ResetMCU returns once it booted).
type MCUControl interface {
	HaltMCU() error
	ResetMCU(ctx context.Context) error
}

// NVMCut cuts a board's power in the middle of one NVM write of the
// firmware, of a chosen kind ("devnonce", "fcnt", "session", "provision",
// "keypair", "context"; "" the first write of any kind), after step of its
// NVMWriteSteps flash steps — exactly where a PowerSwitch at a measured
// offset only lands by chance. The returned channel is closed once the cut
// happened (the firmware stopped; ErrPowerLoss among the rig's
// BackgroundErrors); PowerSwitch.PowerOn boots the board again from what
// its flash holds. An emulated board offers it.
type NVMCut interface {
	ArmNVMCut(kind string, step int) (cut <-chan struct{}, err error)
}

// GatewaySwitch takes the rig's gateways off the network (they announce
// OFFLINE and stop forwarding: devices transmit to nobody) and back
// (connected to the broker, forwarding, before RestoreGateways returns).
type GatewaySwitch interface {
	CutGateways() error
	RestoreGateways(ctx context.Context) error
}

// BrokerRestart restarts the network server's MQTT broker: every MQTT client
// is cut off. Rig.NetworkReady says when everything reconnected.
type BrokerRestart interface {
	RestartBroker(ctx context.Context) error
}

// NetworkServerRestart restarts the network server (API and its MQTT
// client); its state is kept, as ChirpStack's database keeps it.
type NetworkServerRestart interface {
	RestartNetworkServer(ctx context.Context) error
}

// OtherNetworks brings a second network up on the rig's air (othernetwork.go).
type OtherNetworks interface {
	StartOtherNetwork(ctx context.Context, c OtherNetworkConfig) (*OtherNetwork, error)
}

// TagHost is the MCU's side of a board's tag, for a spec that plays the
// firmware: an emulated board whose MCU runs none (rig file `firmware:
// none`) offers it. Its I2C target answers the ST25DV's device selects
// (DS13519 §6.2, Table 88, E0 = 1): 53h user memory, dynamic registers and
// mailbox; 57h system configuration — the 16-bit register address first,
// MSB first, as the firmware sends it.
type TagHost interface {
	// TagI2C runs one I2C transaction on device select addr (7 bits):
	// write w, then (repeated START) read len(r) bytes into r. A NACK (the
	// chip busy programming its EEPROM, a protected register) is an error;
	// empty w and r is an ACK poll (DS §6.4.3).
	TagI2C(addr uint16, w, r []byte) error
}

// ModelClock is the time a board's tag has accounted by its timing model
// (every RF exchange and I2C transaction, DS Table 102, 255): slept with rig
// file `timing: realistic`, only counted with instant. A spec compares it
// with the model (MailboxWriteTime, MailboxReadTime, MailboxLengthTime) and
// with the wall clock.
type ModelClock interface {
	ModeledTime() time.Duration
}

// FirmwareSlot reads back the image a board's firmware staged after a
// firmware transfer over FTM (SPEC.md §7) whose SHA-256 it verified: nil
// until one did.
type FirmwareSlot interface {
	StagedFirmware() *StagedImage
}

// StagedImage is an image the firmware received and verified (FW_END).
type StagedImage struct {
	Size   int
	SHA256 [32]byte
	Data   []byte
}

// Transport is the NFC transport the board's Tag driver uses (direct or
// pcsc), for a spec that sends raw ISO 15693 frames, times each exchange or
// builds a driver with other options (nfc.WithAddressed(false), …) on it.
// The rig closes it at Close.
func (b *Board) Transport() nfc.Transport { return b.transport }

// BoardCapability returns the part of board b that offers C, or a
// *MissingCapabilityError saying why the bench has none.
func BoardCapability[C any](b *Board) (C, error) {
	for _, p := range b.parts {
		if c, ok := p.(C); ok {
			return c, nil
		}
	}
	var zero C
	name := capabilityName[C]()
	reason, ok := b.lacks[name]
	if !ok {
		reason = b.lacks[""]
	}
	if reason == "" {
		reason = "no part of it offers it"
	}
	return zero, &MissingCapabilityError{Part: "board " + b.Name, Capability: name, Reason: reason}
}

// RigCapability returns the part of rig r that offers C, or a
// *MissingCapabilityError saying why the bench has none.
func RigCapability[C any](r *Rig) (C, error) {
	for _, p := range r.parts {
		if c, ok := p.(C); ok {
			return c, nil
		}
	}
	var zero C
	reason := fmt.Sprintf("no part of it does (network %s, %d emulated gateway(s))", r.File.Network.Kind, len(r.gateways))
	return zero, &MissingCapabilityError{Part: "rig " + r.File.Name, Capability: capabilityName[C](), Reason: reason}
}

func capabilityName[C any]() string {
	if t := reflect.TypeFor[C](); t.Name() != "" {
		return t.Name()
	}
	return reflect.TypeFor[C]().String()
}

// realBoardLacks is why a real board lacks a capability: the rig reaches it
// only through its serial console and PC/SC reader, and the rig file names
// no other part (relay, switchable reader) that could act on it.
var realBoardLacks = map[string]string{"": "it is hardware, reached only through its serial console and PC/SC reader, and its rig file names no part that could do it"}

// FirmwareFaults says whether the board's firmware can be told to misbehave
// (rig file `faults:`): only an emulated board's firmware twin can. Load
// refuses `faults:` on a real board with this error, and a spec that needs
// a faulty firmware asks before bringing the rig up, and skips with it.
func (b BoardSpec) FirmwareFaults() error {
	if b.Emulated && b.Firmware == FirmwareNone {
		return &MissingCapabilityError{Part: "board " + b.Name, Capability: "firmware faults",
			Reason: "its MCU runs no firmware (rig file firmware: none)"}
	}
	if b.Emulated {
		return nil
	}
	return &MissingCapabilityError{Part: "board " + b.Name, Capability: "firmware faults",
		Reason: "it runs the firmware it was flashed with; fault builds (a key stored corrupted, keys printed on AT+APPKEY=?, a power cut during an NVM write) need an emulated board"}
}

// Replicable says whether copies of the board can join the rig (a fleet of N
// boards cloned from one with their own unique ids): only emulated boards.
func (b BoardSpec) Replicable() error {
	if b.Emulated {
		return nil
	}
	return &MissingCapabilityError{Part: "board " + b.Name, Capability: "copies",
		Reason: "a real board is one board; a fleet is made of emulated boards (unique_id per copy)"}
}
