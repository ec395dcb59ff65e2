package rigs

import (
	"context"
	"errors"
	"fmt"
	"github.com/tap2join/tap2join/rigs/flash"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tap2join/tap2join/rigs/at"
)

// Checking a real bench before a run: the parts a lab rig file names must
// be there — its serial ports, its PC/SC readers — and no value may still be
// the example file's placeholder. rigcheck runs CheckBench; Up fails a real
// board's bring-up within realPortWait with the same one-line reasons.

// realPortWait bounds the wait for a real board's serial port at bring-up:
// the port of a board on the bench exists when the run starts (a USB
// re-enumeration after a reset is waited for later, by rigs/at). Wall clock:
// the port is a real device.
const realPortWait = 5 * time.Second

// CheckBench looks for what the rig file at path names on this machine:
// every real board's serial port (by path or USB serial number) and PC/SC
// reader, and values the file still marks as placeholders (a line comment
// saying "placeholder"). It returns one line per problem, naming what
// exists instead; none means the bench is as the file says.
func CheckBench(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rigs: %w", err)
	}
	f, err := parse(raw)
	if err != nil {
		return nil, fmt.Errorf("rigs: %s: %w", path, err)
	}
	problems := placeholders(raw)
	for _, p := range missingParts(f, false) {
		problems = append(problems, fmt.Sprintf("boards[%d] (%s): %s", p.board, f.Boards[p.board].Name, p.what))
	}
	return problems, nil
}

// realPartsMissing is Up's first check: a real board whose serial port or
// PC/SC reader is not there fails the bring-up at once, in one line, before
// a network server or container starts. Readers that cannot be listed
// (pcscd down) are left to the transport, which reports pcscd's own error
// when it opens.
func realPartsMissing(f *File, noFlash bool) error {
	var problems []string
	for _, p := range missingParts(f, noFlash) {
		if !p.unlisted {
			problems = append(problems, fmt.Sprintf("rigs: board %s: %s", f.Boards[p.board].Name, p.what))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &PartsMissingError{Rig: f.Name, Problems: problems}
}

// ErrPartMissing matches the error of Up when a part of a real bench named
// by the rig file (serial port, PC/SC reader) is not on this machine: no
// spec on that rig can run, so a suite stops at the first (suites/kit).
var ErrPartMissing = errors.New("rigs: a bench part is missing")

// PartsMissingError lists the bench parts Up did not find, one problem per
// part, each naming what is there instead.
type PartsMissingError struct {
	Rig      string
	Problems []string
}

func (e *PartsMissingError) Error() string { return strings.Join(e.Problems, "; ") }

// Is makes errors.Is(err, ErrPartMissing) true.
func (e *PartsMissingError) Is(target error) bool { return target == ErrPartMissing }

// partProblem is a part of a real board that is not on this machine.
type partProblem struct {
	board    int    // index in File.Boards
	what     string // the problem, naming what is there instead
	unlisted bool   // the PC/SC readers could not be listed at all
}

// missingParts looks for every real board's serial port and PC/SC reader.
func missingParts(f *File, noFlash bool) []partProblem {
	var out []partProblem
	var readers []string
	var readersErr error
	listed := false
	for i, b := range f.Boards {
		if b.Emulated {
			continue
		}
		if p := serialPortProblem(b.Serial); p != "" {
			out = append(out, partProblem{board: i, what: p})
		}
		if p := flashProblem(b); p != "" && !noFlash {
			out = append(out, partProblem{board: i, what: p})
		}
		if b.NFC.Transport != "pcsc" {
			continue
		}
		if !listed {
			readers, readersErr = pcscReaders()
			listed = true
		}
		switch {
		case readersErr != nil:
			out = append(out, partProblem{board: i, unlisted: true,
				what: fmt.Sprintf("nfc.reader %q: cannot list PC/SC readers: %v", b.NFC.Reader, readersErr)})
		case !slices.Contains(readers, b.NFC.Reader):
			out = append(out, partProblem{board: i,
				what: fmt.Sprintf("nfc.reader %q is not connected; readers here: %s", b.NFC.Reader, listOrNone(readers))})
		}
	}
	return out
}

// serialPortProblem says why a real board's serial port is not there,
// naming the ports that are; "" when it is (or the board has none).
func serialPortProblem(s Serial) string {
	if s.Port == "" && s.USBSerial == "" {
		return ""
	}
	ports, err := at.Ports()
	here := listOrNone(ports)
	if err != nil {
		here = err.Error()
	}
	if s.USBSerial != "" {
		for _, p := range ports {
			if strings.Contains(strings.ToLower(p), "(usb serial "+strings.ToLower(s.USBSerial)+",") {
				return ""
			}
		}
		return fmt.Sprintf("serial.usb_serial %s: no USB serial port with that serial number; serial ports here: %s", s.USBSerial, here)
	}
	if _, err := os.Stat(s.Port); err != nil {
		return fmt.Sprintf("serial.port %s: %v; serial ports here: %s", s.Port, errors.Unwrap(err), here)
	}
	return ""
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// placeholders lists the values of a rig file whose line comment says they
// are placeholders (the lab example marks each value a bench must replace).
func placeholders(raw []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if v.Kind == yaml.ScalarNode && strings.Contains(strings.ToLower(v.LineComment+k.LineComment), "placeholder") {
					out = append(out, fmt.Sprintf("%s: %q is still the example's placeholder (line %d): replace it with this bench's value", p, v.Value, v.Line))
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&doc, "")
	return out
}

// openRealConsole opens a real board's console, failing within realPortWait
// with one line naming the ports that are there when its port is not.
func (r *Rig) openRealConsole(ctx context.Context, s Serial) (at.Console, error) {
	if p := serialPortProblem(s); p != "" {
		return nil, errors.New(p)
	}
	octx, cancel := context.WithTimeout(ctx, realPortWait)
	defer cancel()
	con, err := r.openConsole(octx, at.Config{Port: s.Port, USBSerial: s.USBSerial})
	if err != nil && octx.Err() != nil {
		return nil, fmt.Errorf("serial port %s: not open within %v: %w", s.Port+s.USBSerial, realPortWait, err)
	}
	return con, err
}

// flashProblem says why a real board's flash part cannot run here: its
// tool is not installed, or no ST-LINK with the probe's serial is on the
// USB bus (naming those that are); "" when it can (or there is none).
func flashProblem(b BoardSpec) string {
	if b.Flash == nil || b.Emulated {
		return ""
	}
	tool, err := flash.NewTool(b.Flash.Tool, "")
	if err != nil {
		return "" // Parse reports it
	}
	argv, err := tool.Command(flash.Image{Path: "x.bin", Format: "bin"})
	if err == nil {
		if _, err := exec.LookPath(argv[0]); err != nil {
			return fmt.Sprintf("flash.tool %s: %s is not installed", b.Flash.Tool, argv[0])
		}
	}
	serial := ""
	if b.Hardware != nil {
		serial = b.Hardware.Probe.USBSerial
	}
	probes := flash.Probes("")
	var here []string
	for _, p := range probes {
		if serial == "" || strings.EqualFold(p.Serial, serial) {
			return ""
		}
		here = append(here, p.String())
	}
	what := "an ST-LINK"
	if serial != "" {
		what = "the ST-LINK " + serial + " (hardware.probe.usb_serial)"
	}
	return fmt.Sprintf("flash: %s is not on the USB bus; ST-LINKs here: %s", what, listOrNone(here))
}
