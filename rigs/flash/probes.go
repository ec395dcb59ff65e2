package flash

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Probe is a debug probe on the USB bus.
type Probe struct {
	Serial  string
	Product string // e.g. "STLINK-V3"
	PID     string // USB product ID, hex
	Path    string // sysfs device
}

func (p Probe) String() string {
	return fmt.Sprintf("%s (%s, 0483:%s)", p.Serial, p.Product, p.PID)
}

// stlinkPIDs are ST-LINK product IDs under ST's vendor ID 0483 (OpenOCD
// 0.12 interface/stlink.cfg hla_vid_pid list, stlink-tools usb.h).
var stlinkPIDs = map[string]string{
	"3744": "ST-LINK/V1", "3748": "ST-LINK/V2", "374b": "ST-LINK/V2-1", "3752": "ST-LINK/V2-1",
	"374d": "STLINK-V3", "374e": "STLINK-V3", "374f": "STLINK-V3", "3753": "STLINK-V3",
	"3754": "STLINK-V3", "3757": "STLINK-V3PWR",
}

// Probes lists the ST-LINKs the kernel sees, from sysfs (root "" is
// /sys/bus/usb/devices). Unreadable entries are skipped: this only helps
// an error message name what is there.
func Probes(root string) []Probe {
	if root == "" {
		root = "/sys/bus/usb/devices"
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	read := func(dir, name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	var out []Probe
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if read(dir, "idVendor") != "0483" {
			continue
		}
		pid := strings.ToLower(read(dir, "idProduct"))
		name, ok := stlinkPIDs[pid]
		if !ok {
			continue
		}
		if p := read(dir, "product"); p != "" {
			name = p
		}
		out = append(out, Probe{Serial: read(dir, "serial"), Product: name, PID: pid, Path: dir})
	}
	return out
}
