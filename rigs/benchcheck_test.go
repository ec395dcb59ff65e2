package rigs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const realBoardRig = `
name: bench
network: {kind: external, api: "127.0.0.1:1", token: t, mqtt: "tcp://127.0.0.1:1"}
gateways:
  - id: 0016C001FF10D3F6 # placeholder: the gateway's EUI
    emulated: false
    hardware: {model: m, forwarder: semtech-udp}
boards:
  - name: b
    emulated: false
    nfc: {transport: pcsc, reader: "Bench Reader 00 00"}
    serial:
      port: %PORT%
    hardware:
      mcu: NUCLEO-WL55JC1
      tag: X-NUCLEO-NFC07A1
      i2c: {bus: I2C2, scl: PA12, sda: PA11, hz: 1000000}
      gpo: {pin: PA6, exti: 6}
`

func writeRig(t *testing.T, port string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bench.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(realBoardRig, "%PORT%", port, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rigcheck's bench check names the missing port with the ports that exist,
// and the values the file still marks as placeholders.
func TestCheckBenchNamesMissingPartsAndPlaceholders(t *testing.T) {
	p := writeRig(t, "/dev/tap2join-no-such-port")
	problems, err := CheckBench(p)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		`gateways[0].id: "0016C001FF10D3F6" is still the example's placeholder (line 5)`,
		"boards[0] (b): serial.port /dev/tap2join-no-such-port: no such file or directory; serial ports here:",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not say %q:\n%s", want, all)
		}
	}
	// And the reader: not connected, or no readers to list (pcscd down).
	if !strings.Contains(all, `boards[0] (b): nfc.reader "Bench Reader 00 00"`) || len(problems) != 3 {
		t.Errorf("%d problems, want the placeholder, the port and the reader:\n%s", len(problems), all)
	}

	// The port exists (any file stands in for a device node here): no
	// serial problem.
	dev := filepath.Join(t.TempDir(), "ttyACM9")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	problems, err = CheckBench(writeRig(t, dev))
	if err != nil || len(problems) != 2 || strings.Contains(strings.Join(problems, "\n"), "serial.port") {
		t.Errorf("with the port there: %q %v, want the placeholder and the reader only", problems, err)
	}
}

// Up fails a real board whose port is missing at once, in one line, before
// it dials the network server (here an address nobody listens on).
func TestUpFailsFastOnAMissingPort(t *testing.T) {
	f, err := Load(writeRig(t, "/dev/tap2join-no-such-port"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Up(t.Context(), f, Options{})
	first, _, _ := strings.Cut(fmt.Sprint(err), "\n")
	if !strings.HasPrefix(first, "rigs: board b: serial.port /dev/tap2join-no-such-port: no such file or directory; serial ports here:") {
		t.Fatalf("Up = %v, want a line naming the missing port first", err)
	}
	if !errors.Is(err, ErrPartMissing) {
		t.Errorf("Up = %v, not an ErrPartMissing (suites stop on it)", err)
	}
	t.Logf("failed after %v: %v", time.Since(start), err)
}
