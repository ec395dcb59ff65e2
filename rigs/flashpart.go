package rigs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tap2join/tap2join/reports/progress"
	"github.com/tap2join/tap2join/rigs/flash"
)

// Flashing as a bench part (rig file `flash:`, rigs/flash): Up flashes a
// real board's image through its debug probe before it checks the version
// the board reports, and "flashes" an emulated board by reading the image's
// descriptor: the twin then runs the version the image says, so every
// emulated run goes through flash → version check as a bench does. `make
// flash RIG=…` (rigs/cmd/flash) does only the flashing.

// FlashSpec is a board's flashing part.
type FlashSpec struct {
	// Tool: openocd, stm32programmer or st-flash for a real board (through
	// hardware.probe.usb_serial); an emulated board takes none (or
	// "emulated").
	Tool string `yaml:"tool"`
	// Image is the .bin (at 0x08000000), .hex or .elf to flash, relative to
	// the module root or absolute; default hardware.firmware.image.
	Image string `yaml:"image"`
	// Target is the MCU an image's descriptor must name (default
	// STM32WL55).
	Target string `yaml:"target"`
}

// DefaultFlashTarget is the MCU of the boards tap2join knows.
const DefaultFlashTarget = "STM32WL55"

const flashEmulated = "emulated"

// flashErrors checks a board's flash part.
func (b BoardSpec) flashErrors(where string) []error {
	f := b.Flash
	if f == nil {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	switch {
	case b.Emulated && f.Tool != "" && f.Tool != flashEmulated:
		bad("flash.tool %q: an emulated board is flashed by the rig itself (leave tool out)", f.Tool)
	case b.Emulated && b.Firmware == FirmwareNone:
		bad("flash: a board with firmware: none runs no image")
	case !b.Emulated && f.Tool == "":
		bad("flash.tool is required for a real board: one of %s", strings.Join(flash.Tools, ", "))
	case !b.Emulated:
		if _, err := flash.NewTool(f.Tool, ""); err != nil {
			bad("flash.tool %q: want one of %s", f.Tool, strings.Join(flash.Tools, ", "))
		}
		if b.Hardware == nil || b.Hardware.Probe.USBSerial == "" {
			bad("flash needs hardware.probe.usb_serial (without it the tool takes the first ST-LINK, maybe another board's)")
		}
	}
	if b.flashImage() == "" {
		bad("flash.image (or hardware.firmware.image) is required")
	}
	if f.Target != "" && !regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`).MatchString(f.Target) {
		bad("flash.target %q: up to 16 letters, digits, '_' or '-'", f.Target)
	}
	return errs
}

// flashImage is the image a board's flash part writes.
func (b BoardSpec) flashImage() string {
	if b.Flash != nil && b.Flash.Image != "" {
		return b.Flash.Image
	}
	if b.Hardware != nil {
		return b.Hardware.Firmware.Image
	}
	return ""
}

// openFlashImage finds, reads and checks a board's image: its format and,
// when it has a descriptor, its target.
func (b BoardSpec) openFlashImage() (flash.Image, error) {
	p, err := findFile(b.flashImage())
	if err != nil {
		return flash.Image{}, fmt.Errorf("flash: %w", err)
	}
	img, err := flash.OpenImage(p)
	if err != nil {
		return img, err
	}
	target := DefaultFlashTarget
	if b.Flash != nil && b.Flash.Target != "" {
		target = b.Flash.Target
	}
	return img, img.CheckTarget(target)
}

// findFile resolves a path relative to the module root (as Find does for
// rig files: a suite runs in its own directory).
func findFile(path string) (string, error) {
	p, err := Find(path)
	if err != nil {
		return "", fmt.Errorf("image %q not found (relative paths start at the module root)", path)
	}
	return p, nil
}

// FlashReport is what flashing a board left, for the run's report.
type FlashReport struct {
	Image, SHA256, Tool string
	Version             string // the image descriptor's ("" without one)
	Skipped             string // why the tool did not run ("" when it did)
	Output              string // the tool's output
	Elapsed             time.Duration
}

func (f FlashReport) String() string {
	sha := f.SHA256
	if len(sha) > 12 {
		sha = sha[:12] + "…"
	}
	s := fmt.Sprintf("%s (sha256 %s) with %s", f.Image, sha, f.Tool)
	if f.Version != "" {
		s += ", image version " + f.Version
	}
	if f.Skipped != "" {
		return s + ": not flashed, " + f.Skipped
	}
	return fmt.Sprintf("%s in %v\n%s", s, f.Elapsed.Round(time.Millisecond), strings.TrimSpace(f.Output))
}

// FlashEmulated reads an emulated board's image as Up does (the version
// its twin will run): for `make flash` on an emulated rig.
func FlashEmulated(bs BoardSpec) (FlashReport, error) {
	rep, _, err := flashEmulatedBoard(bs)
	return rep, err
}

// flashEmulatedBoard reads an emulated board's image: the firmware twin
// runs the version its descriptor says (an image without one cannot run
// on the twin).
func flashEmulatedBoard(bs BoardSpec) (FlashReport, [3]byte, error) {
	img, err := bs.openFlashImage()
	if err != nil {
		return FlashReport{}, [3]byte{}, fmt.Errorf("flash: %w", err)
	}
	rep, err := imageReport(img, flashEmulated)
	if err != nil {
		return rep, [3]byte{}, err
	}
	if img.Descriptor == nil {
		return rep, [3]byte{}, fmt.Errorf("flash: %s has no %s descriptor: the emulated board takes its version from it (rigs/flash/descriptor.go)", img.Path, flash.DescriptorMagic)
	}
	rep.Output = fmt.Sprintf("emulated flash: %d bytes, target %s, version %s", img.Size, img.Descriptor.Target, rep.Version)
	return rep, img.Descriptor.Version, nil
}

func imageReport(img flash.Image, tool string) (FlashReport, error) {
	data, err := os.ReadFile(img.Path)
	if err != nil {
		return FlashReport{}, fmt.Errorf("flash: %w", err)
	}
	sum := sha256.Sum256(data)
	rep := FlashReport{Image: img.Path, SHA256: hex.EncodeToString(sum[:]), Tool: tool}
	if img.Descriptor != nil {
		rep.Version = img.Descriptor.VersionString()
	}
	return rep, nil
}

// flashed remembers, per process, the image last flashed to each probe, so
// the specs of one suite (each brings its rig up) flash once; flashStamp
// does the same across the suites of one run (TAP2JOIN_RUN_ID).
var flashed sync.Map // probe serial → image sha256

// FlashRealBoard flashes a real board's image through its probe with the
// rig file's tool, unless this run already flashed that image there. The
// tool's output goes to w as it comes (nil: nowhere) and into the report.
func FlashRealBoard(ctx context.Context, bs BoardSpec, w io.Writer, lg *slog.Logger) (FlashReport, error) {
	img, err := bs.openFlashImage()
	if err != nil {
		return FlashReport{}, err
	}
	serial := ""
	if bs.Hardware != nil {
		serial = bs.Hardware.Probe.USBSerial
	}
	tool, err := flash.NewTool(bs.Flash.Tool, serial)
	if err != nil {
		return FlashReport{}, err
	}
	rep, err := imageReport(img, tool.Name())
	if err != nil {
		return rep, err
	}
	// The record is per probe (the board it is wired to) and lease
	// resource; it is cleared before the tool runs, so a flash that fails
	// half-way is never taken for done. UNCONFIRMED safety: between two
	// specs of a run the lease is released and taken again, and a job
	// taking the board in between could flash another image of the same
	// version unseen (the version check catches any other).
	resource := bs.Name
	if bs.Lease != nil {
		resource = bs.Lease.Resource
	}
	key := serial + "|" + resource
	if v, ok := flashed.Load(key); ok && v == rep.SHA256 {
		rep.Skipped = "flashed earlier in this process"
		return rep, nil
	}
	stamp := flashStampPath(key)
	if runID := os.Getenv("TAP2JOIN_RUN_ID"); runID != "" && readFlashStamp(stamp) == runID+"|"+rep.SHA256 {
		rep.Skipped = "flashed earlier in this run (" + runID + ")"
		flashed.Store(key, rep.SHA256)
		return rep, nil
	}
	flashed.Delete(key)
	_ = os.Remove(stamp)
	lg.Info("flashing", "board", bs.Name, "tool", tool.Name(), "image", img.Path, "probe", serial)
	progress.Printf("board %s: flashing %s with %s", bs.Name, filepath.Base(img.Path), tool.Name())
	res, err := flash.Run(ctx, tool, img, w)
	rep.Output, rep.Elapsed = res.Output, res.Elapsed
	if err != nil {
		return rep, fmt.Errorf("board %s: %w", bs.Name, err)
	}
	flashed.Store(key, rep.SHA256)
	if runID := os.Getenv("TAP2JOIN_RUN_ID"); runID != "" {
		writeFlashStamp(stamp, runID+"|"+rep.SHA256)
	}
	return rep, nil
}

func flashStampPath(key string) string {
	safe := regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(key, "_")
	return filepath.Join(os.TempDir(), "tap2join-flash", safe+".json")
}

type flashStamp struct {
	Stamp string `json:"stamp"` // run id | image sha256
}

func readFlashStamp(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	var s flashStamp
	if json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s.Stamp
}

func writeFlashStamp(p, v string) {
	b, _ := json.Marshal(flashStamp{Stamp: v})
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = os.WriteFile(p, b, 0o644) // best effort: a missing stamp only flashes again
	}
}
