package rigs

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Lab benches: real boards, readers and gateways. The rig file describes
// them completely (wiring, probes, leases); Up drives real boards through
// their serial console and PC/SC reader and holds their leases (realboard.go).
// Validate checks a file without bringing anything up and lists what Up
// cannot do with it (Gaps), e.g. an image named without a flash part. See rigs/lab-nucleo-wl55.yaml and the README's "Lab bench".

// Hardware is a real board's bench description (rig file `hardware:`).
type Hardware struct {
	MCU string `yaml:"mcu"` // board, e.g. NUCLEO-WL55JC1
	Tag string `yaml:"tag"` // tag board, e.g. X-NUCLEO-NFC07A1 (ST25DV64KC)
	// I2C is the MCU ↔ tag bus.
	I2C I2CWiring `yaml:"i2c"`
	// GPO is the MCU input the tag's GPO (open drain, active low on the
	// 8-pin tag; CMOS on the 12-pin one) drives, with its EXTI line.
	GPO PinWiring `yaml:"gpo"`
	// LPD is the MCU output on the tag's low-power-down pin ("" if unwired).
	LPD PinWiring `yaml:"lpd"`
	// Power says where the tag's VCC comes from (free text, for people).
	Power string `yaml:"power"`
	// Probe is the debug probe (flashing, reset), by USB serial number.
	Probe Probe `yaml:"probe"`
	// Firmware is the image the board must run for the suites.
	Firmware FirmwareSpec `yaml:"firmware"`
}

// I2CWiring is an I2C bus on named MCU pins.
type I2CWiring struct {
	Bus   string `yaml:"bus"`    // I2C1 | I2C2 | I2C3
	SCL   string `yaml:"scl"`    // MCU pin, e.g. PA12
	SDA   string `yaml:"sda"`    // MCU pin, e.g. PA11
	Hz    int    `yaml:"hz"`     // SCL clock; the ST25DV takes 1 MHz (DS Table 250)
	Where string `yaml:"header"` // connector pins, for people (e.g. Arduino D15/D14)
}

// PinWiring is one MCU pin.
type PinWiring struct {
	Pin   string `yaml:"pin"`    // e.g. PA6
	EXTI  *int   `yaml:"exti"`   // interrupt line (the pin number on STM32)
	Where string `yaml:"header"` // connector pin, for people
}

// Probe names a debug probe.
type Probe struct {
	Kind      string `yaml:"kind"`       // e.g. stlink-v3
	USBSerial string `yaml:"usb_serial"` // to pick the right one among several
}

// FirmwareSpec is the firmware under test.
type FirmwareSpec struct {
	Image   string `yaml:"image"`   // path of the .bin/.elf to flash before the run
	Version string `yaml:"version"` // major.minor.patch the IDENTITY must report
}

// GatewayHardware is a real gateway.
type GatewayHardware struct {
	Model string `yaml:"model"`
	// Forwarder is how it reaches the network server: semtech-udp (to the
	// ChirpStack Gateway Bridge, UDP 1700), basic-station, or chirpstack-mqtt
	// (ChirpStack Concentratord + MQTT Forwarder).
	Forwarder string `yaml:"forwarder"`
}

// LeaseSpec is the exclusive lease a run takes on a real board (rigs/lease).
type LeaseSpec struct {
	Resource string `yaml:"resource"` // lease name, e.g. nucleo-wl55-1
	TTL      string `yaml:"ttl"`      // Go duration; default 30s
	// Backend: file (default: a lease file under Dir, one host) or etcd
	// (a lab's runner hosts sharing benches; rigs/lease etcd.go).
	Backend string `yaml:"backend"`
	Dir     string `yaml:"dir"` // file: default $TAP2JOIN_LEASE_DIR or /run/lock/tap2join
	// Endpoints are etcd's client URLs (etcd: default $TAP2JOIN_ETCD_ENDPOINTS,
	// comma-separated).
	Endpoints []string `yaml:"endpoints"`
}

// NotSupportedError is a valid rig file that asks for parts Up cannot drive
// yet. Gaps names each one.
type NotSupportedError struct{ Gaps []string }

func (e *NotSupportedError) Error() string {
	return "rigs: not supported yet (rigs.Validate accepts the file): " + strings.Join(e.Gaps, "; ")
}

// Validate reads a rig file in "validate only" mode: every setting is
// checked as Load does, and a file whose only problem is parts Up cannot
// drive yet is accepted, those parts listed in gaps.
func Validate(path string) (*File, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("rigs: %w", err)
	}
	f, err := parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("rigs: %s: %w", path, err)
	}
	f.Path = path
	gaps := append([]string(nil), f.gaps...)
	for i, b := range f.Boards {
		if !b.Emulated && b.Hardware != nil && b.Hardware.Firmware.Image != "" && b.Flash == nil {
			gaps = append(gaps, fmt.Sprintf("boards[%d] (%s): hardware.firmware.image is not flashed by Up without a flash part (add flash: {tool: openocd}, or flash it in the job before the run; Up checks hardware.firmware.version)", i, b.Name))
		}
	}
	return f, gaps, nil
}

var (
	stm32Pin = regexp.MustCompile(`^P([A-H])([0-9]|1[0-5])$`)
	i2cBus   = regexp.MustCompile(`^I2C[1-3]$`)
	semver   = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
)

// labErrors checks the lab-only settings (hardware, lease).
func (f *File) labErrors() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for i, b := range f.Boards {
		where := fmt.Sprintf("boards[%d] (%s)", i, b.Name)
		if b.Emulated && (b.Hardware != nil || b.Lease != nil) {
			bad("%s: hardware and lease are for real boards", where)
			continue
		}
		if b.Emulated {
			continue
		}
		if b.Hardware == nil {
			bad("%s: a real board needs hardware: (mcu, tag, i2c, gpo)", where)
		} else {
			h := b.Hardware
			if h.MCU == "" || h.Tag == "" {
				bad("%s: hardware.mcu and hardware.tag are required", where)
			}
			if !i2cBus.MatchString(h.I2C.Bus) {
				bad("%s: hardware.i2c.bus %q is not I2C1..I2C3", where, h.I2C.Bus)
			}
			for name, p := range map[string]string{"scl": h.I2C.SCL, "sda": h.I2C.SDA} {
				if !stm32Pin.MatchString(p) {
					bad("%s: hardware.i2c.%s %q is not an STM32 pin (PA0..PH15)", where, name, p)
				}
			}
			if h.I2C.Hz < 10_000 || h.I2C.Hz > 1_000_000 {
				bad("%s: hardware.i2c.hz %d out of the ST25DV's range (DS Table 250: up to 1 MHz)", where, h.I2C.Hz)
			}
			if m := stm32Pin.FindStringSubmatch(h.GPO.Pin); m == nil {
				bad("%s: hardware.gpo.pin %q is not an STM32 pin", where, h.GPO.Pin)
			} else if h.GPO.EXTI != nil && fmt.Sprint(*h.GPO.EXTI) != m[2] {
				bad("%s: hardware.gpo.exti %d: pin %s is on EXTI line %s", where, *h.GPO.EXTI, h.GPO.Pin, m[2])
			}
			if h.LPD.Pin != "" && !stm32Pin.MatchString(h.LPD.Pin) {
				bad("%s: hardware.lpd.pin %q is not an STM32 pin", where, h.LPD.Pin)
			}
			if h.Firmware.Version != "" && !semver.MatchString(h.Firmware.Version) {
				bad("%s: hardware.firmware.version %q is not major.minor.patch", where, h.Firmware.Version)
			}
		}
		if b.NFC.Transport != "pcsc" {
			bad("%s: a real board's tag is reached through a PC/SC reader (nfc.transport: pcsc)", where)
		}
		if l := b.Lease; l != nil {
			if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`).MatchString(l.Resource) {
				bad("%s: lease.resource %q: letters, digits, '.', '_', '-'", where, l.Resource)
			}
			if l.TTL != "" {
				if d, err := time.ParseDuration(l.TTL); err != nil || d < time.Second {
					bad("%s: lease.ttl %q is not a duration of at least 1s", where, l.TTL)
				}
			}
			switch l.Backend {
			case "", "file":
				if len(l.Endpoints) > 0 {
					bad("%s: lease.endpoints are for backend etcd", where)
				}
			case "etcd":
				if d, err := time.ParseDuration(l.TTL); l.TTL != "" && err == nil && d < 5*time.Second {
					bad("%s: lease.ttl %s: at least 5s with etcd (keep-alives every TTL/3 need slack)", where, l.TTL)
				}
				if l.Dir != "" {
					bad("%s: lease.dir is for backend file", where)
				}
				for _, ep := range l.Endpoints {
					if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
						bad("%s: lease.endpoints %q: an etcd client URL (http:// or https://)", where, ep)
					}
				}
			default:
				bad("%s: lease.backend %q: want file or etcd", where, l.Backend)
			}
		}
	}
	for i, g := range f.Gateways {
		if g.Emulated && g.Hardware != nil {
			bad("gateways[%d]: hardware is for real gateways", i)
		}
		if !g.Emulated {
			if g.Hardware == nil {
				bad("gateways[%d]: a real gateway needs hardware: (model, forwarder)", i)
				continue
			}
			switch g.Hardware.Forwarder {
			case "semtech-udp", "basic-station", "chirpstack-mqtt":
			default:
				bad("gateways[%d]: hardware.forwarder %q is not semtech-udp, basic-station or chirpstack-mqtt", i, g.Hardware.Forwarder)
			}
		}
	}
	return errs
}
