package rigs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/fixtures/require"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/flash"
)

// testImage writes a 1 KiB .bin carrying a descriptor for target/version.
func testImage(t *testing.T, target string, version [3]byte) string {
	t.Helper()
	d, err := flash.Descriptor{Target: target, Version: version}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 1024)
	copy(img[0x200:], d)
	p := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// "Flashing" an emulated board makes the twin run the image's version; the
// rig checks the board reports it on its console (flash → version check).
func TestEmulatedBoardRunsTheFlashedVersion(t *testing.T) {
	f := loadRigFile(t, "rigs/emulated.yaml")
	f.Boards[0].Flash = &rigs.FlashSpec{Image: testImage(t, "STM32WL55", [3]byte{1, 4, 0})}
	rig := upRig(t, f)
	b := rig.Boards[0]
	if b.Flash == nil || b.Flash.Version != "1.4.0" || b.Flash.Tool != "emulated" {
		t.Fatalf("flash report %+v", b.Flash)
	}
	v, err := b.FirmwareVersion(t.Context())
	if err != nil || v != "1.4.0" {
		t.Fatalf("the board reports %q (%v), want 1.4.0", v, err)
	}
}

// An image for another MCU, or one without a descriptor, does not come up.
func TestEmulatedFlashRefusesWrongImages(t *testing.T) {
	f := loadRigFile(t, "rigs/emulated.yaml")
	f.Boards[0].Flash = &rigs.FlashSpec{Image: testImage(t, "STM32F401", [3]byte{1, 3, 1})}
	_, err := rigs.Up(t.Context(), f, rigs.Options{})
	if !errors.Is(err, flash.ErrImage) || !strings.Contains(err.Error(), "built for STM32F401") {
		t.Errorf("another target: %v", err)
	}
	bare := filepath.Join(t.TempDir(), "bare.bin")
	_ = os.WriteFile(bare, make([]byte, 256), 0o644)
	f.Boards[0].Flash = &rigs.FlashSpec{Image: bare}
	if _, err := rigs.Up(t.Context(), f, rigs.Options{}); err == nil || !strings.Contains(err.Error(), "descriptor") {
		t.Errorf("no descriptor: %v", err)
	}
}

func TestFlashPartIsValidated(t *testing.T) {
	base := "network: {kind: external, api: a, token: t, mqtt: m}\nboards: [{emulated: false, nfc: {transport: pcsc, reader: R}, hardware: {mcu: M, tag: T, i2c: {bus: I2C2, scl: PA12, sda: PA11, hz: 1000000}, gpo: {pin: PA6}}, "
	cases := []struct{ yaml, want string }{
		{"boards: [{emulated: true, unique_id: 0080E11500000001, flash: {tool: openocd, image: a.bin}}]", "flashed by the rig itself"},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, flash: {}}]", "flash.image"},
		{base + "flash: {image: a.bin}}]", "flash.tool is required"},
		{base + "flash: {tool: jlink, image: a.bin}}]", `flash.tool "jlink"`},
	}
	for _, c := range cases {
		_, err := rigs.Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want %q", c.yaml, err, c.want)
		}
	}
}

// A real board's flash part runs the real OpenOCD; with no ST-LINK of that
// serial on the bus Up's flashing step fails at once, naming the probe
// problem, before any console or reader is touched.
func TestRealBoardFlashWithoutProbe(t *testing.T) {
	if _, err := exec.LookPath("openocd"); err != nil {
		require.Missing(t, require.FlashTools, errors.New("openocd not installed: apt-get install openocd"))
	}
	bs := rigs.BoardSpec{Name: "bench-1", Flash: &rigs.FlashSpec{Tool: "openocd", Image: testImage(t, "STM32WL55", [3]byte{1, 3, 1})},
		Hardware: &rigs.Hardware{Probe: rigs.Probe{USBSerial: "T2J-NO-SUCH-PROBE"}}}
	var out strings.Builder
	rep, err := rigs.FlashRealBoard(context.Background(), bs, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, flash.ErrProbeAbsent) || !strings.Contains(err.Error(), "bench-1") {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(rep.Output, "open failed") || out.String() != rep.Output {
		t.Errorf("tool output not kept and shown: %q / %q", rep.Output, out.String())
	}
}
