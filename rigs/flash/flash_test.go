package flash

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/fixtures/require"
)

// The descriptor of an STM32WL55 image, version 1.3.1, byte for byte: the
// CRC-32/IEEE of the first 28 bytes is 5DCB0ADE (zlib.crc32), stored
// little-endian.
var wl55v131 = []byte{
	0x54, 0x32, 0x4A, 0x2D, 0x49, 0x4D, 0x47, 0x31, // "T2J-IMG1"
	0x53, 0x54, 0x4D, 0x33, 0x32, 0x57, 0x4C, 0x35, 0x35, 0, 0, 0, 0, 0, 0, 0, // "STM32WL55"
	0x01, 0x03, 0x01, 0x00, // 1.3.1, flags 0
	0xDE, 0x0A, 0xCB, 0x5D,
}

func TestDescriptorBytes(t *testing.T) {
	b, err := Descriptor{Target: "STM32WL55", Version: [3]byte{1, 3, 1}}.Marshal()
	if err != nil || !bytes.Equal(b, wl55v131) {
		t.Fatalf("Marshal = % X, %v\nwant      % X", b, err, wl55v131)
	}
	d, err := ParseDescriptor(wl55v131)
	if err != nil || d.Target != "STM32WL55" || d.VersionString() != "1.3.1" {
		t.Fatalf("Parse = %+v, %v", d, err)
	}
	bad := slices.Clone(wl55v131)
	bad[24] = 2
	if _, err := ParseDescriptor(bad); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("a changed version with the old CRC: %v", err)
	}
	if _, err := (Descriptor{Target: "STM32 WL55"}).Marshal(); err == nil {
		t.Error("a target with a space: no error")
	}
}

func TestFindDescriptor(t *testing.T) {
	img := make([]byte, 4096)
	copy(img[0x200:], wl55v131)
	d, ok, err := FindDescriptor(img)
	if err != nil || !ok || d.VersionString() != "1.3.1" {
		t.Fatalf("aligned: %+v %v %v", d, ok, err)
	}
	mis := make([]byte, 4096)
	copy(mis[0x201:], wl55v131)
	if _, ok, err := FindDescriptor(mis); ok || err != nil {
		t.Errorf("misaligned magic taken as a descriptor: %v %v", ok, err)
	}
	if _, ok, _ := FindDescriptor(make([]byte, 64)); ok {
		t.Error("found in zeros")
	}
	other, _ := Descriptor{Target: "STM32WL55", Version: [3]byte{1, 4, 0}}.Marshal()
	copy(img[0x400:], other)
	if _, _, err := FindDescriptor(img); err == nil || !strings.Contains(err.Error(), "two descriptors") {
		t.Errorf("two different descriptors: %v", err)
	}
}

func writeImage(t *testing.T, name string, data []byte) Image {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestOpenImage(t *testing.T) {
	img := writeImage(t, "fw.bin", append(make([]byte, 64), wl55v131...))
	if img.Format != "bin" || img.Descriptor == nil || img.Descriptor.Target != "STM32WL55" {
		t.Fatalf("%+v", img)
	}
	if err := img.CheckTarget("stm32wl55"); err != nil {
		t.Error(err)
	}
	if err := img.CheckTarget("STM32F401"); !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), "built for STM32WL55") {
		t.Errorf("another target: %v", err)
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"fw.txt": "x", "empty.bin": "", "fw.elf": "not elf", "fw.hex": "no colon"} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(data), 0o644)
		if _, err := OpenImage(p); !errors.Is(err, ErrImage) {
			t.Errorf("%s: %v, want ErrImage", name, err)
		}
	}
	if _, err := OpenImage(filepath.Join(dir, "missing.bin")); !errors.Is(err, ErrImage) {
		t.Errorf("missing file: %v", err)
	}
}

// The exact command lines (OpenOCD User's Guide §16, UM2237 §3.2,
// st-flash --help of stlink-tools 1.7).
func TestCommandLines(t *testing.T) {
	bin := Image{Path: "/fw/app.bin", Format: "bin"}
	elf := Image{Path: "/fw/app.elf", Format: "elf"}
	hex := Image{Path: "/fw/app.hex", Format: "hex"}
	const sn = "0026003A3331510A33353533"
	cases := []struct {
		tool Tool
		img  Image
		want string
	}{
		{OpenOCD{Serial: sn}, bin, `openocd -f interface/stlink.cfg -c "adapter serial 0026003A3331510A33353533" -f target/stm32wlx.cfg -c "program {/fw/app.bin} verify reset exit 0x08000000"`},
		{OpenOCD{}, elf, `openocd -f interface/stlink.cfg -f target/stm32wlx.cfg -c "program {/fw/app.elf} verify reset exit"`},
		{STM32Programmer{Serial: sn}, bin, `STM32_Programmer_CLI -c port=SWD sn=0026003A3331510A33353533 -w /fw/app.bin 0x08000000 -v -rst`},
		{STM32Programmer{}, hex, `STM32_Programmer_CLI -c port=SWD -w /fw/app.hex -v -rst`},
		{STFlash{Serial: sn}, bin, `st-flash --serial 0026003A3331510A33353533 --reset write /fw/app.bin 0x08000000`},
		{STFlash{}, hex, `st-flash --reset --format ihex write /fw/app.hex`},
	}
	for _, c := range cases {
		argv, err := c.tool.Command(c.img)
		if err != nil {
			t.Fatal(err)
		}
		if got := shell(argv); got != c.want {
			t.Errorf("%s %s:\n got %s\nwant %s", c.tool.Name(), c.img.Format, got, c.want)
		}
	}
	if _, err := (STFlash{}).Command(elf); !errors.Is(err, ErrImage) {
		t.Errorf("st-flash with an ELF: %v", err)
	}
	if _, err := NewTool("jlink", ""); err == nil {
		t.Error("unknown tool: no error")
	}
}

func shell(argv []string) string {
	var s []string
	for _, a := range argv {
		if strings.ContainsAny(a, " ") {
			a = `"` + a + `"`
		}
		s = append(s, a)
	}
	return strings.Join(s, " ")
}

func TestProbesFromSysfs(t *testing.T) {
	root := t.TempDir()
	dev := func(name, vid, pid, serial, product string) {
		d := filepath.Join(root, name)
		_ = os.MkdirAll(d, 0o755)
		for f, v := range map[string]string{"idVendor": vid, "idProduct": pid, "serial": serial, "product": product} {
			if v != "" {
				_ = os.WriteFile(filepath.Join(d, f), []byte(v+"\n"), 0o644)
			}
		}
	}
	dev("1-1", "0483", "374e", "0026003A3331510A33353533", "STLINK-V3")
	dev("1-2", "0483", "5740", "X", "STM32 Virtual COM") // ST, but no ST-LINK
	dev("1-3", "072f", "2303", "Y", "ACR1552U")
	dev("1-1:1.0", "", "", "", "")
	ps := Probes(root)
	if len(ps) != 1 || ps[0].Serial != "0026003A3331510A33353533" || ps[0].PID != "374e" {
		t.Fatalf("probes %+v", ps)
	}
	if got := describeProbes(ps); got != "ST-LINKs on the USB bus: 0026003A3331510A33353533 (STLINK-V3, 0483:374e)" {
		t.Errorf("describe: %s", got)
	}
}

func TestToolMissing(t *testing.T) {
	img := writeImage(t, "fw.bin", []byte{1, 2, 3, 4})
	_, err := Run(context.Background(), OpenOCD{Bin: "/nonexistent/openocd"}, img, nil)
	if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "apt-get install openocd") {
		t.Errorf("%v", err)
	}
}

// needTool finds a real flashing program: CI installs them (make deps);
// elsewhere the test skips, saying what to install.
func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		require.Missing(t, require.FlashTools, errors.New(name+" not installed: apt-get install "+pkg))
	}
}

// The real OpenOCD 0.12 loads interface/stlink.cfg and target/stm32wlx.cfg
// (a missing script is ErrToolConfig, a different error) and, with no
// ST-LINK of that serial on the bus, fails "Error: open failed":
// ErrProbeAbsent, its output kept and the probes present named.
func TestOpenOCDWithoutProbe(t *testing.T) {
	needTool(t, "openocd", "openocd")
	img := writeImage(t, "fw.bin", append(make([]byte, 1024), wl55v131...))
	var progress bytes.Buffer
	res, err := Run(context.Background(), OpenOCD{Serial: "T2J-NO-SUCH-PROBE"}, img, &progress)
	if !errors.Is(err, ErrProbeAbsent) {
		t.Fatalf("%v\noutput:\n%s", err, res.Output)
	}
	if !strings.Contains(res.Output, "Error: open failed") || progress.String() != res.Output {
		t.Errorf("output %q, progress %q", res.Output, progress.String())
	}
	if !strings.Contains(err.Error(), "ST-LINK") {
		t.Errorf("the error does not say which probes are there: %v", err)
	}
	_, err = Run(context.Background(), OpenOCD{Interface: "interface/t2j-nope.cfg"}, img, nil)
	if !errors.Is(err, ErrToolConfig) {
		t.Errorf("a missing interface script: %v, want ErrToolConfig", err)
	}
}

// The real st-flash (stlink-tools 1.7) with no ST-LINK: "Couldn't find any
// ST-Link devices", ErrProbeAbsent.
func TestSTFlashWithoutProbe(t *testing.T) {
	needTool(t, "st-flash", "stlink-tools")
	img := writeImage(t, "fw.bin", append(make([]byte, 1024), wl55v131...))
	res, err := Run(context.Background(), STFlash{Serial: "T2J-NO-SUCH-PROBE"}, img, nil)
	if !errors.Is(err, ErrProbeAbsent) {
		t.Fatalf("%v\noutput:\n%s", err, res.Output)
	}
}
