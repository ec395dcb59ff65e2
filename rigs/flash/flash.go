// Package flash programs a board's MCU with a firmware image, as a bench
// part: a Tool builds the exact command line of a real flashing program
// (OpenOCD, ST's STM32_Programmer_CLI, stlink-tools' st-flash), Run runs it,
// keeping its whole output for the report, and maps the ways it fails — no
// probe, no such probe serial, the tool or its config scripts missing, a
// verify mismatch — to errors a caller can branch on (ErrProbeAbsent,
// ErrToolMissing, …), naming the ST-LINK probes that are on the USB bus.
//
// The image is checked before any tool runs: its format (.bin at the flash
// base, .hex, .elf) and, when it carries one, its tap2join image descriptor
// (descriptor.go: target and version), so an image built for another MCU is
// refused without touching the board.
package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FlashBase is the STM32WL5x's flash start, where a raw .bin goes (RM0453
// §3.3.1: main memory 0x0800 0000).
const FlashBase = 0x08000000

// Errors a caller branches on; Run's errors wrap one of them.
var (
	// ErrProbeAbsent: the tool found no debug probe, or none with the
	// serial asked for.
	ErrProbeAbsent = errors.New("flash: debug probe not found")
	// ErrToolMissing: the flashing program is not installed.
	ErrToolMissing = errors.New("flash: tool not installed")
	// ErrToolConfig: the tool is there but its configuration (OpenOCD's
	// interface/target scripts) is not.
	ErrToolConfig = errors.New("flash: tool configuration not found")
	// ErrTargetUnreachable: the probe is there but the MCU does not answer
	// (unpowered, held in reset, SWD disabled).
	ErrTargetUnreachable = errors.New("flash: target MCU not reachable through the probe")
	// ErrVerify: the image was written but reads back different.
	ErrVerify = errors.New("flash: verify failed")
	// ErrImage: the image file is not one the tool can write to this board.
	ErrImage = errors.New("flash: bad image")
)

// Tool is one flashing program.
type Tool interface {
	// Name is the rig file's flash.tool value.
	Name() string
	// Command is the program and its arguments that write image to the
	// probe's target, verify it and reset the MCU.
	Command(image Image) ([]string, error)
	// classify maps the program's output and exit error to one of the
	// errors above, or nil when it does not recognise the failure.
	classify(output string) error
}

// Image is a firmware file to flash.
type Image struct {
	Path   string
	Format string // "bin", "hex" or "elf" (from the extension)
	Size   int64
	// Descriptor is the tap2join image descriptor the image carries (nil
	// if it has none: a firmware that does not embed one).
	Descriptor *Descriptor
}

// OpenImage checks an image file and reads its descriptor.
func OpenImage(path string) (Image, error) {
	img := Image{Path: path}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".bin":
		img.Format = "bin"
	case ".hex", ".ihex":
		img.Format = "hex"
	case ".elf", ".axf", ".out":
		img.Format = "elf"
	default:
		return img, fmt.Errorf("%w: %s: want a .bin, .hex or .elf file", ErrImage, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return img, fmt.Errorf("%w: %v", ErrImage, err)
	}
	if len(data) == 0 {
		return img, fmt.Errorf("%w: %s is empty", ErrImage, path)
	}
	img.Size = int64(len(data))
	if img.Format == "elf" && !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return img, fmt.Errorf("%w: %s has no ELF header", ErrImage, path)
	}
	if img.Format == "hex" && data[0] != ':' {
		return img, fmt.Errorf("%w: %s is not Intel HEX (no ':' record)", ErrImage, path)
	}
	if d, ok, err := FindDescriptor(data); err != nil {
		return img, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	} else if ok {
		img.Descriptor = &d
	}
	return img, nil
}

// OpenOCD is the Open On-Chip Debugger (Debian openocd 0.12) with an
// ST-LINK: interface/stlink.cfg, the probe picked by its USB serial
// (`adapter serial`), target/stm32wlx.cfg, then `program … verify reset
// exit` (OpenOCD User's Guide §16 "Flash Programming").
type OpenOCD struct {
	Bin       string // default "openocd"
	Serial    string // the ST-LINK's USB serial; "" takes the first probe
	Interface string // default interface/stlink.cfg
	Target    string // default target/stm32wlx.cfg
}

func (OpenOCD) Name() string { return "openocd" }

func (o OpenOCD) Command(img Image) ([]string, error) {
	bin, iface, target := or(o.Bin, "openocd"), or(o.Interface, "interface/stlink.cfg"), or(o.Target, "target/stm32wlx.cfg")
	args := []string{bin, "-f", iface}
	if o.Serial != "" {
		args = append(args, "-c", "adapter serial "+o.Serial)
	}
	prog := "program {" + img.Path + "} verify reset exit"
	if img.Format == "bin" {
		prog += fmt.Sprintf(" 0x%08X", FlashBase)
	}
	return append(args, "-f", target, "-c", prog), nil
}

func (OpenOCD) classify(out string) error {
	switch {
	case strings.Contains(out, "Can't find "):
		return ErrToolConfig
	case strings.Contains(out, "Error: open failed"), strings.Contains(out, "unable to find a matching"):
		return ErrProbeAbsent
	case strings.Contains(out, "verify failed"), strings.Contains(out, "checksum mismatch"):
		return ErrVerify
	}
	return nil
}

// STM32Programmer is ST's STM32CubeProgrammer command line
// (STM32_Programmer_CLI, UM2237 §3.2): SWD to the probe by serial, write
// with verify (-v), then reset (-rst).
type STM32Programmer struct {
	Bin    string // default "STM32_Programmer_CLI"
	Serial string
}

func (STM32Programmer) Name() string { return "stm32programmer" }

func (s STM32Programmer) Command(img Image) ([]string, error) {
	conn := "port=SWD"
	if s.Serial != "" {
		conn += " sn=" + s.Serial
	}
	args := []string{or(s.Bin, "STM32_Programmer_CLI"), "-c"}
	args = append(args, strings.Fields(conn)...)
	args = append(args, "-w", img.Path)
	if img.Format == "bin" {
		args = append(args, fmt.Sprintf("0x%08X", FlashBase))
	}
	return append(args, "-v", "-rst"), nil
}

func (STM32Programmer) classify(out string) error {
	switch {
	case strings.Contains(out, "No STM32 target found"):
		return ErrTargetUnreachable
	case strings.Contains(out, "No debug probe detected"), strings.Contains(out, "No STLink"),
		strings.Contains(out, "ST-LINK error"):
		return ErrProbeAbsent
	case strings.Contains(out, "Data mismatch"), strings.Contains(out, "verification failed"):
		return ErrVerify // UNCONFIRMED: the CLI's wording of a verify failure
	}
	return nil
}

// STFlash is stlink-tools' st-flash (Debian stlink-tools 1.7): `--serial`
// picks the probe, `--reset` resets after writing; a .bin goes to the flash
// base, a .hex with `--format ihex`. It writes no ELF.
type STFlash struct {
	Bin    string // default "st-flash"
	Serial string
}

func (STFlash) Name() string { return "st-flash" }

func (s STFlash) Command(img Image) ([]string, error) {
	args := []string{or(s.Bin, "st-flash")}
	if s.Serial != "" {
		args = append(args, "--serial", s.Serial)
	}
	args = append(args, "--reset")
	switch img.Format {
	case "bin":
		return append(args, "write", img.Path, fmt.Sprintf("0x%08X", FlashBase)), nil
	case "hex":
		return append(args, "--format", "ihex", "write", img.Path), nil
	}
	return nil, fmt.Errorf("%w: st-flash writes .bin or .hex, not %s (use openocd or stm32programmer)", ErrImage, img.Path)
}

func (STFlash) classify(out string) error {
	switch {
	case strings.Contains(out, "Failed to connect to target"):
		return ErrTargetUnreachable
	case strings.Contains(out, "Couldn't find any ST-Link"), strings.Contains(out, "No ST-LINK"):
		return ErrProbeAbsent
	case strings.Contains(out, "Verification of flash failed"):
		return ErrVerify
	}
	return nil
}

// Tools are the flash.tool values of the rig file.
var Tools = []string{"openocd", "stm32programmer", "st-flash"}

// NewTool returns the named tool for the probe with that serial.
func NewTool(name, serial string) (Tool, error) {
	switch name {
	case "openocd":
		return OpenOCD{Serial: serial}, nil
	case "stm32programmer":
		return STM32Programmer{Serial: serial}, nil
	case "st-flash":
		return STFlash{Serial: serial}, nil
	}
	return nil, fmt.Errorf("flash: tool %q: want one of %s", name, strings.Join(Tools, ", "))
}

// Result is what a flashing run left.
type Result struct {
	Tool    string
	Command []string
	Output  string // stdout and stderr, interleaved as the tool wrote them
	Elapsed time.Duration
}

// Run flashes img with tool, copying the tool's output to progress (nil:
// none) as it comes and keeping it in the result. A failure names the
// probes present on the USB bus (Probes).
func Run(ctx context.Context, tool Tool, img Image, progress io.Writer) (Result, error) {
	argv, err := tool.Command(img)
	res := Result{Tool: tool.Name(), Command: argv}
	if err != nil {
		return res, err
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return res, fmt.Errorf("%w: %s (%s): %v", ErrToolMissing, argv[0], installHint(tool.Name()), err)
	}
	var out bytes.Buffer
	var w io.Writer = &out
	if progress != nil {
		w = io.MultiWriter(&out, progress)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	res.Elapsed, res.Output = time.Since(start), out.String()
	if runErr == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("flash: %s interrupted: %w", tool.Name(), ctx.Err())
	}
	kind := tool.classify(res.Output)
	if kind == nil {
		return res, fmt.Errorf("flash: %s failed (%v): %s", tool.Name(), runErr, lastLines(res.Output, 3))
	}
	msg := fmt.Sprintf("%s: %s", tool.Name(), lastLines(res.Output, 2))
	if errors.Is(kind, ErrProbeAbsent) {
		msg += "; " + describeProbes(Probes(""))
	}
	return res, fmt.Errorf("%w: %s", kind, msg)
}

func installHint(tool string) string {
	switch tool {
	case "openocd":
		return "apt-get install openocd"
	case "st-flash":
		return "apt-get install stlink-tools"
	}
	return "install STM32CubeProgrammer and put STM32_Programmer_CLI on PATH"
}

// lastLines is the last n non-empty lines of out, joined with " | ".
func lastLines(out string, n int) string {
	var lines []string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, " | ")
}

func describeProbes(ps []Probe) string {
	if len(ps) == 0 {
		return "no ST-LINK on the USB bus"
	}
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	slices.Sort(s)
	return "ST-LINKs on the USB bus: " + strings.Join(s, ", ")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
