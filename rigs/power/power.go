// Package power switches a bench board's supply and drives its MCU's reset,
// as bench parts with real drivers: uhubctl (the port power of a switchable
// USB hub, for a board powered from it), a GPIO line through libgpiod's
// character-device tools (a relay; gpioset holds the line while the part
// lives — no sysfs), and OpenOCD through the board's ST-LINK (reset, halt).
// Each keeps the tool's output and names what is missing in its errors.
package power

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors a caller branches on.
var (
	// ErrPartAbsent: the hub, port, GPIO chip or line, or probe is not there.
	ErrPartAbsent = errors.New("power: bench part not found")
	// ErrToolMissing: the program is not installed.
	ErrToolMissing = errors.New("power: tool not installed")
)

// Switch is a board's supply.
type Switch interface {
	Off(ctx context.Context) error
	On(ctx context.Context) error
	// Close releases what the switch holds (a GPIO line); the supply stays
	// as it was last set where the hardware keeps it.
	Close() error
}

// UHubCtl switches one port of a USB hub with per-port power switching
// (uhubctl, Debian uhubctl 2.5): `uhubctl -l <location> -p <port> -a off|on`.
type UHubCtl struct {
	Bin      string // default "uhubctl"
	Location string // the hub's location, e.g. "1-1" (uhubctl lists them)
	Port     int
}

// Command is the command line for action "off" or "on".
func (u UHubCtl) Command(action string) []string {
	return []string{or(u.Bin, "uhubctl"), "-l", u.Location, "-p", strconv.Itoa(u.Port), "-a", action}
}

func (u UHubCtl) Off(ctx context.Context) error { return u.run(ctx, "off") }
func (u UHubCtl) On(ctx context.Context) error  { return u.run(ctx, "on") }
func (UHubCtl) Close() error                    { return nil }

func (u UHubCtl) run(ctx context.Context, action string) error {
	out, err := run(ctx, u.Command(action), "apt-get install uhubctl")
	if err == nil {
		return nil
	}
	if strings.Contains(out, "No compatible devices detected") || strings.Contains(out, "No compatible smart hubs") {
		return fmt.Errorf("%w: uhubctl: no switchable hub at location %s (port %d): %s", ErrPartAbsent, u.Location, u.Port, lastLine(out))
	}
	return err
}

// GPIO drives a relay on a GPIO line through libgpiod's character device:
// `gpioset --mode=signal [--active-low] <chip> <line>=<value>` (Debian gpiod
// 1.6), kept running to hold the line; `gpioinfo <chip>` checks the line
// first. On sets the line active (1), Off inactive (0); ActiveLow for a
// relay that closes on a low level.
type GPIO struct {
	Set, Info string // default "gpioset", "gpioinfo"
	Chip      string // e.g. gpiochip0
	Line      int
	ActiveLow bool
	// OpenDrain drives the line open-drain (gpioset --drive=open-drain):
	// for a line others drive too, as an MCU's NRST.
	OpenDrain bool

	mu   sync.Mutex
	hold *exec.Cmd
	done chan error
}

// Command is the gpioset command line holding the line at value.
func (g *GPIO) Command(value int) []string {
	args := []string{or(g.Set, "gpioset"), "--mode=signal"}
	if g.ActiveLow {
		args = append(args, "--active-low")
	}
	if g.OpenDrain {
		args = append(args, "--drive=open-drain")
	}
	return append(args, g.Chip, fmt.Sprintf("%d=%d", g.Line, value))
}

func (g *GPIO) Off(ctx context.Context) error { return g.set(ctx, 0) }
func (g *GPIO) On(ctx context.Context) error  { return g.set(ctx, 1) }

var gpioLine = regexp.MustCompile(`(?m)^\s*line\s+(\d+):`)

func (g *GPIO) set(ctx context.Context, value int) error {
	out, err := run(ctx, []string{or(g.Info, "gpioinfo"), g.Chip}, "apt-get install gpiod")
	if err != nil {
		if errors.Is(err, ErrToolMissing) {
			return err
		}
		return fmt.Errorf("%w: GPIO chip %s: %s", ErrPartAbsent, g.Chip, lastLine(out))
	}
	found := false
	for _, m := range gpioLine.FindAllStringSubmatch(out, -1) {
		if m[1] == strconv.Itoa(g.Line) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: GPIO chip %s has no line %d", ErrPartAbsent, g.Chip, g.Line)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release()
	argv := g.Command(value)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = holdAttr() // dies with us: no orphan keeps the line
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("power: %s: %w", strings.Join(argv, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// gpioset requests the line at once and exits on failure (busy line,
	// no permission); holding, it waits for a signal. A real process: the
	// wall clock bounds how long it may take to fail.
	select {
	case err := <-done:
		return fmt.Errorf("%w: %s: %v: %s", ErrPartAbsent, strings.Join(argv, " "), err, lastLine(stderr.String()))
	case <-time.After(300 * time.Millisecond):
	}
	g.hold, g.done = cmd, done
	return nil
}

// release stops the process holding the line. Callers hold g.mu.
func (g *GPIO) release() {
	if g.hold == nil {
		return
	}
	_ = g.hold.Process.Signal(interruptSignal)
	select {
	case <-g.done:
	case <-time.After(2 * time.Second):
		_ = g.hold.Process.Kill()
		<-g.done
	}
	g.hold = nil
}

func (g *GPIO) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release()
	return nil
}

// OpenOCDReset resets or halts the MCU through its ST-LINK with OpenOCD:
// `-c init -c "reset run" -c shutdown` (or "reset halt": the core stays
// halted after OpenOCD disconnects — UNCONFIRMED on the ST-LINK's HLA
// driver; a halted STM32WL5 no longer reads its mailbox or answers AT).
type OpenOCDReset struct {
	Bin, Serial       string
	Interface, Target string // default interface/stlink.cfg, target/stm32wlx.cfg
}

// Command is the command line running reset mode "run" or "halt".
func (o OpenOCDReset) Command(mode string) []string {
	args := []string{or(o.Bin, "openocd"), "-f", or(o.Interface, "interface/stlink.cfg")}
	if o.Serial != "" {
		args = append(args, "-c", "adapter serial "+o.Serial)
	}
	return append(args, "-f", or(o.Target, "target/stm32wlx.cfg"), "-c", "init", "-c", "reset "+mode, "-c", "shutdown")
}

func (o OpenOCDReset) Reset(ctx context.Context) error { return o.run(ctx, "run") }
func (o OpenOCDReset) Halt(ctx context.Context) error  { return o.run(ctx, "halt") }

func (o OpenOCDReset) run(ctx context.Context, mode string) error {
	out, err := run(ctx, o.Command(mode), "apt-get install openocd")
	if err != nil && strings.Contains(out, "Error: open failed") {
		return fmt.Errorf("%w: openocd: no ST-LINK %s: %s", ErrPartAbsent, o.Serial, lastLine(out))
	}
	return err
}

// run runs argv, returning its combined output.
func run(ctx context.Context, argv []string, install string) (string, error) {
	if _, err := exec.LookPath(argv[0]); err != nil {
		return "", fmt.Errorf("%w: %s (%s)", ErrToolMissing, argv[0], install)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("power: %s: %v: %s", strings.Join(argv, " "), err, lastLine(string(out)))
	}
	return string(out), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
