package power

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/fixtures/require"
)

// The exact command lines (uhubctl 2.5 README, libgpiod 1.6 gpioset --help,
// OpenOCD User's Guide "reset" command).
func TestCommandLines(t *testing.T) {
	cases := []struct{ got, want string }{
		{strings.Join(UHubCtl{Location: "1-1.4", Port: 2}.Command("off"), " "), "uhubctl -l 1-1.4 -p 2 -a off"},
		{strings.Join((&GPIO{Chip: "gpiochip0", Line: 17}).Command(1), " "), "gpioset --mode=signal gpiochip0 17=1"},
		{strings.Join((&GPIO{Chip: "gpiochip1", Line: 5, ActiveLow: true}).Command(0), " "), "gpioset --mode=signal --active-low gpiochip1 5=0"},
		{strings.Join((&GPIO{Chip: "gpiochip0", Line: 27, ActiveLow: true, OpenDrain: true}).Command(1), " "), "gpioset --mode=signal --active-low --drive=open-drain gpiochip0 27=1"},
		{strings.Join(OpenOCDReset{Serial: "0026003A"}.Command("run"), "|"), "openocd|-f|interface/stlink.cfg|-c|adapter serial 0026003A|-f|target/stm32wlx.cfg|-c|init|-c|reset run|-c|shutdown"},
		{strings.Join(OpenOCDReset{}.Command("halt"), "|"), "openocd|-f|interface/stlink.cfg|-f|target/stm32wlx.cfg|-c|init|-c|reset halt|-c|shutdown"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

func need(t *testing.T, bin, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		require.Missing(t, require.BenchTools, errors.New(bin+" not installed: apt-get install "+pkg))
	}
}

// The real tools on a machine without the hardware: each says the part is
// absent (ErrPartAbsent), naming it.
func TestRealToolsWithoutHardware(t *testing.T) {
	ctx := context.Background()
	need(t, "uhubctl", "uhubctl")
	err := UHubCtl{Location: "9-9", Port: 2}.Off(ctx)
	if !errors.Is(err, ErrPartAbsent) || !strings.Contains(err.Error(), "location 9-9") {
		t.Errorf("uhubctl: %v", err)
	}
	need(t, "gpioinfo", "gpiod")
	g := &GPIO{Chip: "gpiochip97", Line: 17}
	defer g.Close()
	if err := g.On(ctx); !errors.Is(err, ErrPartAbsent) || !strings.Contains(err.Error(), "gpiochip97") {
		t.Errorf("gpio: %v", err)
	}
	need(t, "openocd", "openocd")
	if err := (OpenOCDReset{Serial: "T2J-NO-SUCH-PROBE"}).Reset(ctx); !errors.Is(err, ErrPartAbsent) {
		t.Errorf("openocd reset: %v", err)
	}
	if err := (UHubCtl{Bin: "/nonexistent/uhubctl"}).On(ctx); !errors.Is(err, ErrToolMissing) {
		t.Errorf("missing tool: %v", err)
	}
}
