package rigs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is a rig file. See rigs/README.md for the format.
type File struct {
	Name         string       `yaml:"name"`
	Timing       string       `yaml:"timing"` // instant (default) | realistic
	Network      Network      `yaml:"network"`
	Provisioning Provisioning `yaml:"provisioning"`
	Gateways     []Gateway    `yaml:"gateways"`
	Boards       []BoardSpec  `yaml:"boards"`

	// gaps are settings valid in the file that Up cannot drive yet
	// (rigfile_hardware.go).
	gaps []string
	// Path is where the file was read from (not part of the YAML).
	Path string `yaml:"-"`
}

// Network selects the LoRaWAN network server.
type Network struct {
	Kind   string `yaml:"kind"`   // embedded (default) | containers | external
	Region string `yaml:"region"` // eu868 (default)
	// For kind containers (fixtures/containers): local (default; images built
	// here from this module, nothing pulled) | upstream (chirpstack/chirpstack,
	// postgres, redis, mosquitto pulled from a registry: lab runners).
	ImageSet string `yaml:"image_set"`
	// GatewayUDPPort is the host port of the Gateway Bridge's Semtech UDP
	// listener for real gateways (containers, image_set upstream). Default 1700.
	GatewayUDPPort int `yaml:"gateway_udp_port"`
	// For kind external: a running ChirpStack v4.
	API   string `yaml:"api"`   // host:port of its gRPC API
	Token string `yaml:"token"` // API key; "$VAR" reads the environment
	MQTT  string `yaml:"mqtt"`  // integration broker URL
	TLS   bool   `yaml:"tls"`   // external: gRPC over TLS (system roots)
	// Device profile and tenant names created (or found) on the server.
	Tenant      string `yaml:"tenant"`
	Application string `yaml:"application"`
	MACVersion  string `yaml:"mac_version"` // 1.0.4 (default) | 1.1.0
	// DeviceStatusReqInterval: DevStatusReq per day in the device profile
	// (ChirpStack's device_status_req_interval; 0, the default, none).
	DeviceStatusReqInterval uint32 `yaml:"device_status_req_interval"`
	// Events is how the rig's own server (embedded or containers) encodes
	// its MQTT integration events: json (default; chirpstack-docker's
	// integration.mqtt.json = true) or protobuf (json = false, the cheaper
	// one for a fleet). The rig's client reads either, message by message;
	// an external server's own setting is its own business.
	Events string `yaml:"events"`
}

// Network.Events values.
const (
	EventsJSON     = "json"
	EventsProtobuf = "protobuf"
)

// Provisioning selects the HTTPS provisioning backend.
type Provisioning struct {
	Kind    string `yaml:"kind"`     // embedded (default) | external
	URL     string `yaml:"url"`      // for external
	Token   string `yaml:"token"`    // for external; "$VAR" reads the environment
	JoinEUI string `yaml:"join_eui"` // default JoinEUI given to devices
	Wrapped bool   `yaml:"wrapped"`  // ask devices for wrapped-key (ECDH) provisioning
}

// Gateway is a LoRa gateway on the bench.
type Gateway struct {
	ID       string `yaml:"id"`       // 16 hex digits
	Emulated bool   `yaml:"emulated"` // an emulated gateway on the emulated air
	// Hardware describes a real gateway (rigfile_hardware.go; registered
	// with the network server, nothing started for it).
	Hardware *GatewayHardware `yaml:"hardware"`
}

// BoardSpec is one device under test.
type BoardSpec struct {
	Name     string `yaml:"name"`
	Emulated bool   `yaml:"emulated"`
	// UniqueID is the MCU's 64-bit unique id (16 hex digits) of an emulated board.
	UniqueID string `yaml:"unique_id"`
	NFC      NFC    `yaml:"nfc"`
	// MailboxProtocol is how the board's firmware speaks over the FTM
	// mailbox: tap2join (default; SPEC.md §1) or st25ftm (ST's protocol,
	// SPEC.md §8). The phone speaks the same.
	MailboxProtocol string `yaml:"mailbox_protocol"`
	Serial          Serial `yaml:"serial"` // AT console
	Faults          Faults `yaml:"faults"`
	// Hardware is a real board's bench wiring and Lease its exclusive lease
	// (rigfile_hardware.go; Up takes the lease and checks firmware.version,
	// realboard.go).
	Hardware *Hardware  `yaml:"hardware"`
	Lease    *LeaseSpec `yaml:"lease"`
	// Flash is the board's flashing part (flashpart.go): Up writes the image
	// before it checks the version the board reports.
	Flash *FlashSpec `yaml:"flash"`
	// Power and Reset are a real board's supply switch and reset line
	// (powerpart.go): with them it offers PowerSwitch and MCUControl.
	Power *PowerSpec `yaml:"power"`
	Reset *ResetSpec `yaml:"reset"`
	// NVM is a file holding an emulated board's flash (its NVM context), so
	// the board keeps its key across rig restarts: a second rig on the same
	// file is the same board powered up again. "" = in memory.
	NVM string `yaml:"nvm"`
	// Firmware is what an emulated board's MCU runs: "" (the firmware twin,
	// emulators/stm32wl5) or FirmwareNone — no firmware, no console: the tag
	// alone, its I2C side left to the spec (TagHost), which plays the MCU.
	Firmware string `yaml:"firmware"`
}

// FirmwareNone is rig file `firmware: none`: an emulated board whose MCU
// runs no firmware (BoardSpec.Firmware).
const FirmwareNone = "none"

// validFirmware checks `firmware:`: only emulated boards take it, and a
// board without firmware has nothing that keeps an NVM, misbehaves or
// answers on a console.
func (b BoardSpec) validFirmware() error {
	switch {
	case b.Firmware == "":
		return nil
	case b.Firmware != FirmwareNone:
		return fmt.Errorf("firmware %q is not none (omit it for the firmware twin)", b.Firmware)
	case !b.Emulated:
		return errors.New("firmware: none is for emulated boards (a real board runs what it was flashed with, hardware.firmware)")
	case b.Faults != (Faults{}) || b.NVM != "" || b.Serial != (Serial{}):
		return errors.New("firmware: none: faults, nvm and serial need a firmware")
	}
	return nil
}

// NFC says how the phone reaches the board's tag.
type NFC struct {
	Transport string `yaml:"transport"` // direct (emulated only) | pcsc
	Reader    string `yaml:"reader"`    // PC/SC reader name (pcsc)
	Profile   string `yaml:"profile"`   // pcsc: transparent | acr1552 ("" = from the reader name)
	// FieldControl: the real board's reader switches its RF field off and
	// on when told (PC/SC Part 3 Manage Session 83/84; pcsc.Transport.
	// SetField), so the board offers PhoneHand: the phone lifted and laid
	// back. UNCONFIRMED per reader model: try it with the nfc suite.
	FieldControl bool `yaml:"field_control"`
}

// Faults injects firmware faults into an emulated board: the firmware twin
// misbehaves as told. A real board runs the firmware it was flashed with, so
// the rig file may not ask faults of it (BoardSpec.FirmwareFaults says why).
type Faults struct {
	// StoreCorruptKey: the firmware acknowledges the key it received but
	// stores a corrupted one, so the device cannot join.
	StoreCorruptKey bool `yaml:"store_corrupt_key"`
	// KeyReadBack: the firmware prints keys on AT+APPKEY=? (ST's default
	// KEY_EXTRACTABLE build), for the security suite's leak detector.
	KeyReadBack bool `yaml:"key_read_back"`
	// NVMKillAtStep > 0 cuts the power during the first NVM write after that
	// many flash steps (NVMWriteSteps per write); the board then stops
	// (ErrPowerLoss in BackgroundErrors). Use with nvm: to power it up again
	// in a new rig.
	NVMKillAtStep int `yaml:"nvm_kill_at_step"`
	// LeakKeyToLog: the firmware twin writes each key it stores to its
	// debug log, in hex — a deliberate leak the run's key-leak check must
	// catch (t2jrun with TAP2JOIN_LOG=debug).
	LeakKeyToLog bool `yaml:"leak_key_to_log"`
}

// Serial says where a board's AT console is (rig file `serial:`).
//
//	serial:
//	  port: /dev/ttyACM0          # a real board: device path or /dev/serial/by-id link
//	  usb_serial: 0026003A3331…   # or find it by USB serial number (survives re-enumeration)
//	  reenumerate_on_reset: false # emulated board: its pty vanishes and returns on ATZ/AT+RFS
//
// An emulated board always gets a console: a pty the rig creates (port and
// usb_serial must then be empty).
type Serial struct {
	Port               string `yaml:"port"`
	USBSerial          string `yaml:"usb_serial"`
	ReenumerateOnReset bool   `yaml:"reenumerate_on_reset"`
}

func (s Serial) validate(emulated bool) error {
	switch {
	case emulated && (s.Port != "" || s.USBSerial != ""):
		return errors.New("serial.port/usb_serial: an emulated board's console is a pty the rig creates")
	case !emulated && s.ReenumerateOnReset:
		return errors.New("serial.reenumerate_on_reset: only for emulated boards")
	}
	return nil
}

var hex16 = regexp.MustCompile(`^[0-9A-Fa-f]{16}$`)

// Load reads and validates a rig file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rigs: %w", err)
	}
	f, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("rigs: %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse parses and validates rig YAML, filling defaults. A file that is
// valid but asks for what Up cannot drive yet (a real gateway behind the
// containers network) fails with a *NotSupportedError; Validate accepts it
// (rigfile_hardware.go).
func Parse(raw []byte) (*File, error) {
	f, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if len(f.gaps) > 0 {
		return nil, &NotSupportedError{Gaps: f.gaps}
	}
	return f, nil
}

func parse(raw []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	f.defaults()
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *File) defaults() {
	if f.Timing == "" {
		f.Timing = "instant"
	}
	n := &f.Network
	if n.Kind == "" {
		n.Kind = "embedded"
	}
	if n.Region == "" {
		n.Region = "eu868"
	}
	if n.Tenant == "" {
		n.Tenant = "tap2join"
	}
	if n.Application == "" {
		n.Application = "tap2join"
	}
	if n.MACVersion == "" {
		n.MACVersion = "1.0.4"
	}
	if f.Provisioning.Kind == "" {
		f.Provisioning.Kind = "embedded"
	}
	if f.Provisioning.JoinEUI == "" {
		f.Provisioning.JoinEUI = "70B3D57ED0000001"
	}
	for i := range f.Boards {
		b := &f.Boards[i]
		if b.Name == "" {
			b.Name = fmt.Sprintf("board-%d", i+1)
		}
		if b.NFC.Transport == "" && b.Emulated {
			b.NFC.Transport = "direct"
		}
	}
}

func (f *File) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if f.Timing != "instant" && f.Timing != "realistic" {
		bad("timing: %q is not instant or realistic", f.Timing)
	}
	switch f.Network.Kind {
	case "embedded":
	case "containers":
		if f.Network.ImageSet != "" && f.Network.ImageSet != "local" && f.Network.ImageSet != "upstream" {
			bad("network.image_set: %q is not local or upstream", f.Network.ImageSet)
		}
		if f.Network.GatewayUDPPort == 0 {
			f.Network.GatewayUDPPort = 1700
		}
		if f.Network.GatewayUDPPort < 1 || f.Network.GatewayUDPPort > 65535 {
			bad("network.gateway_udp_port: %d is not a port", f.Network.GatewayUDPPort)
		}
	case "external":
		if f.Network.API == "" || f.Network.Token == "" || f.Network.MQTT == "" {
			bad("network: kind external needs api, token and mqtt")
		}
	default:
		bad("network.kind: %q is not embedded, containers or external", f.Network.Kind)
	}
	if f.Network.TLS && f.Network.Kind != "external" {
		bad("network.tls: only for kind external (the rig's own servers speak plaintext h2c on loopback)")
	}
	switch {
	case f.Network.Events != "" && f.Network.Events != EventsJSON && f.Network.Events != EventsProtobuf:
		bad("network.events: %q is not json or protobuf", f.Network.Events)
	case f.Network.Events != "" && f.Network.Kind == "external":
		bad("network.events: only for the rig's own server (embedded, containers); an external server publishes as its integration.mqtt.json says, and the rig reads both")
	}
	if f.Network.Region != "eu868" {
		bad("network.region: %q is not supported yet (eu868)", f.Network.Region)
	}
	if f.Network.MACVersion != "1.0.4" && f.Network.MACVersion != "1.1.0" {
		bad("network.mac_version: %q is not supported (1.0.4 or 1.1.0)", f.Network.MACVersion)
	}
	switch f.Provisioning.Kind {
	case "embedded":
	case "external":
		if f.Provisioning.URL == "" || f.Provisioning.Token == "" {
			bad("provisioning: kind external needs url and token")
		}
	default:
		bad("provisioning.kind: %q is not embedded or external", f.Provisioning.Kind)
	}
	if !hex16.MatchString(f.Provisioning.JoinEUI) {
		bad("provisioning.join_eui: %q is not 16 hex digits", f.Provisioning.JoinEUI)
	}
	if len(f.Boards) == 0 {
		bad("boards: the rig has no board")
	}
	names := map[string]bool{}
	for i, b := range f.Boards {
		where := fmt.Sprintf("boards[%d] (%s)", i, b.Name)
		if names[b.Name] {
			bad("%s: duplicate name", where)
		}
		names[b.Name] = true
		if err := b.Serial.validate(b.Emulated); err != nil {
			bad("%s: %v", where, err)
		}
		if err := b.validFirmware(); err != nil {
			bad("%s: %v", where, err)
		}
		if !b.Emulated && b.NVM != "" {
			bad("%s: nvm is for emulated boards (a real board keeps its key in its own flash)", where)
		}
		if b.Faults != (Faults{}) {
			if err := b.FirmwareFaults(); err != nil {
				bad("%s: faults: %w", where, err)
			}
		}
		errs = append(errs, b.flashErrors(where)...)
		errs = append(errs, b.powerErrors(where)...)
		if b.NFC.FieldControl && (b.Emulated || b.NFC.Transport != "pcsc") {
			bad("%s: nfc.field_control is for a real board's PC/SC reader (an emulated board's phone is lifted by the rig)", where)
		}
		switch b.MailboxProtocol {
		case "", "tap2join", "st25ftm":
		default:
			bad("%s: mailbox_protocol %q: want tap2join or st25ftm", where, b.MailboxProtocol)
		}
		if b.Faults.NVMKillAtStep < 0 {
			bad("%s: faults.nvm_kill_at_step %d is negative", where, b.Faults.NVMKillAtStep)
		}
		if b.Emulated && !hex16.MatchString(b.UniqueID) {
			bad("%s: unique_id %q is not 16 hex digits", where, b.UniqueID)
		}
		switch b.NFC.Transport {
		case "direct":
			if !b.Emulated {
				bad("%s: nfc.transport direct works only for emulated boards", where)
			}
		case "pcsc":
			if err := validPCSC(b); err != nil {
				bad("%s: %w", where, err)
			}
		default:
			bad("%s: nfc.transport %q is not direct or pcsc", where, b.NFC.Transport)
		}
	}
	for i, g := range f.Gateways {
		if !hex16.MatchString(g.ID) {
			bad("gateways[%d]: id %q is not 16 hex digits", i, g.ID)
		}
		// A real gateway forwards to the network server by itself; the rig
		// only registers it, so the server must be reachable from it: an
		// external one, or the upstream container stack, whose Gateway
		// Bridge listens for Semtech UDP on network.gateway_udp_port. The
		// embedded server (loopback, random port) and the local image set
		// (no bridge) are not.
		if !g.Emulated {
			switch {
			case f.Network.Kind == "external":
			case f.Network.Kind == "containers" && f.Network.ImageSet == "upstream":
				if g.Hardware != nil && g.Hardware.Forwarder != "" && g.Hardware.Forwarder != "semtech-udp" {
					f.gaps = append(f.gaps, fmt.Sprintf("gateways[%d]: forwarder %s: the container stack publishes only the Gateway Bridge's Semtech UDP port (use semtech-udp, or network kind external)", i, g.Hardware.Forwarder))
				}
			default:
				f.gaps = append(f.gaps, fmt.Sprintf("gateways[%d]: a real gateway cannot reach the %s network server: use network kind external, or containers with image_set upstream (its Gateway Bridge on UDP network.gateway_udp_port)", i, f.Network.Kind))
			}
		}
	}
	errs = append(errs, f.labErrors()...) // rigfile_hardware.go
	return errors.Join(errs...)
}

// Find locates a rig file: an absolute or working-directory-relative path, or
// one relative to the module root (so suites run from their own directory can
// say "rigs/emulated.yaml").
func Find(path string) (string, error) {
	if _, err := os.Stat(path); err == nil || filepath.IsAbs(path) {
		return path, nil
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, path)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("rigs: rig file %q not found (looked in %s)", path, dir)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("rigs: rig file %q not found", path)
		}
		dir = parent
	}
}

// EnvRig names the environment variable that picks the rig file suites run
// on; DefaultRig is used when it is unset.
const (
	EnvRig     = "TAP2JOIN_RIG"
	DefaultRig = "rigs/emulated.yaml"
)

// LoadFromEnv finds (see Find) and loads the rig file named by TAP2JOIN_RIG,
// rigs/emulated.yaml by default — what every suite runs on.
func LoadFromEnv() (*File, error) {
	path := os.Getenv(EnvRig)
	if path == "" {
		path = DefaultRig
	}
	p, err := Find(path)
	if err != nil {
		return nil, err
	}
	return Load(p)
}
