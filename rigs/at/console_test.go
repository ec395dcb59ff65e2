package at_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial/enumerator"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/rigs/at"
)

var uid = stm32wl5.UniqueIDFrom([3]byte{0x00, 0x80, 0xE1}, 0x15, 0x00000042)

// twin starts the firmware twin with its console on a real pty and opens
// the driver on the pty's stable path, through go.bug.st/serial.
func twin(t *testing.T, so stm32wl5.SerialOptions, mod func(*stm32wl5.Config)) (*at.Serial, *stm32wl5.SerialPort, *stm32wl5.MCU) {
	t.Helper()
	clock := timing.NewClock(timing.Instant)
	tag := st25dv.New(st25dv.Config{Clock: clock})
	tag.SetVCC(true)
	wires := &bus.Bus{}
	wires.Attach(tag.I2C())
	cfg := stm32wl5.Config{UniqueID: uid, I2C: wires, GPO: tag.GPO(), Air: radio.NewAir(clock), Clock: clock,
		RXWindowCap: 20 * time.Millisecond, Logf: t.Logf}
	if mod != nil {
		mod(&cfg)
	}
	b, err := stm32wl5.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	so.Dir = t.TempDir()
	sp, err := b.StartSerial(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	con, err := at.Open(octx, at.Config{Port: sp.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := con.Close(); err != nil {
			t.Errorf("close console: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		sp.Close()
	})
	// The first boot may be over before the driver opened: wait until the
	// firmware answers.
	ready(t, con)
	return con, sp, b
}

func ready(t *testing.T, con *at.Serial) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := con.Command(ctx, "AT")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("board not ready: %v", err)
		}
	}
}

func TestCommandsStatusesAndTranscript(t *testing.T) {
	con, _, _ := twin(t, stm32wl5.SerialOptions{}, nil)
	ctx := context.Background()
	lines, err := con.Command(ctx, "AT+VER=?")
	if err != nil || len(lines) != 5 || lines[0] != "APPLICATION_VERSION: V1.3.1" {
		t.Fatalf("AT+VER=? → %q %v", lines, err)
	}
	lines, err = con.Command(ctx, "AT+DEUI=?")
	if err != nil || len(lines) != 1 || lines[0] != at.FormatEUI(uid) {
		t.Fatalf("AT+DEUI=? → %q %v", lines, err)
	}
	for _, c := range []struct {
		cmd  string
		want error
	}{
		{"AT+NOPE", at.ErrAT},
		{"AT+DR=99", at.ErrParam},
		{"AT+SEND=2:0:01", at.ErrNotJoined},
		{"AT+CLASS=B", at.ErrNoClassB},
		{"AT+APPKEY=?", at.ErrAT}, // key read-back is off in the provisioning firmware
	} {
		_, err := con.Command(ctx, c.cmd)
		var ae *at.ATError
		if !errors.Is(err, c.want) || !errors.As(err, &ae) || ae.Command != c.cmd {
			t.Errorf("%s → %v, want %v", c.cmd, err, c.want)
		}
	}
	_, err = con.Command(ctx, "AT+SEND=x")
	var ae *at.ATError
	if !errors.As(err, &ae) || ae.Status != at.StatusParamError || len(ae.Lines) != 1 {
		t.Errorf("AT+SEND=x → %#v", err)
	}
	tr := at.FormatTranscript(con.Transcript())
	for _, want := range []string{"> AT+VER=?", "< APPLICATION_VERSION: V1.3.1", "< OK", "< AT_PARAM_ERROR", "# port "} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
}

func TestKeysAreRedactedAndEventsArrive(t *testing.T) {
	con, _, _ := twin(t, stm32wl5.SerialOptions{}, func(c *stm32wl5.Config) { c.KeyReadBack = true })
	ctx := context.Background()
	const key = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
	if _, err := con.Command(ctx, "AT+NWKKEY="+key); err != nil {
		t.Fatal(err)
	}
	lines, err := con.Command(ctx, "AT+NWKKEY=?")
	if err != nil || len(lines) != 1 || lines[0] != key {
		t.Fatalf("read-back firmware: %q %v", lines, err)
	}
	// The raw lines are the caller's; the transcript and errors show KCVs.
	tr := at.FormatTranscript(con.Transcript())
	if strings.Contains(strings.ReplaceAll(tr, ":", ""), "00112233445566778899AABBCCDDEEFF") {
		t.Fatalf("key in transcript:\n%s", tr)
	}
	if !strings.Contains(tr, "<16 bytes KCV ") {
		t.Fatalf("no KCV in transcript:\n%s", tr)
	}
	_, err = con.Command(ctx, "AT+APPKEY="+key+":00")
	if err == nil || strings.Contains(err.Error(), "00:11:22") {
		t.Fatalf("error %v", err)
	}
	// An OTAA attempt with nobody answering ends in +EVT:JOIN FAILED.
	if _, err := con.Command(ctx, "AT+JOIN=1"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-con.Events():
		if ev.Name != "JOIN FAILED" || ev.Line != "+EVT:JOIN FAILED" {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no +EVT:JOIN FAILED")
	}
}

func TestResetKeepsTheSTLinkPort(t *testing.T) {
	con, sp, _ := twin(t, stm32wl5.SerialOptions{}, nil)
	ctx := context.Background()
	tty := sp.TTY()
	if _, err := con.Command(ctx, "ATZ"); err != nil {
		t.Fatal(err)
	}
	if _, err := con.Command(ctx, "AT"); err != nil {
		t.Fatal(err)
	}
	if con.Reopens() != 0 || sp.TTY() != tty {
		t.Fatalf("port changed: reopens %d tty %s→%s", con.Reopens(), tty, sp.TTY())
	}
	if !strings.Contains(at.FormatTranscript(con.Transcript()), "< "+at.BannerEnd) {
		t.Fatal("banner not in transcript")
	}
}

func TestResetWithReenumerationReopensThePort(t *testing.T) {
	con, sp, _ := twin(t, stm32wl5.SerialOptions{ReenumerateOnReset: true, ReenumerateDelay: 150 * time.Millisecond}, nil)
	ctx := context.Background()
	tty := sp.TTY()
	start := time.Now()
	if _, err := con.Command(ctx, "ATZ"); err != nil {
		t.Fatalf("%v\n%s", err, at.FormatTranscript(con.Transcript()))
	}
	if con.Reopens() != 1 || sp.Enumerations() != 2 {
		t.Fatalf("reopens %d, enumerations %d", con.Reopens(), sp.Enumerations())
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("ATZ returned before the port came back")
	}
	lines, err := con.Command(ctx, "AT+DEUI=?")
	if err != nil || lines[0] != at.FormatEUI(uid) {
		t.Fatalf("after re-enumeration: %q %v (tty %s→%s)", lines, err, tty, sp.TTY())
	}
	tr := at.FormatTranscript(con.Transcript())
	if !strings.Contains(tr, "# port lost") {
		t.Fatalf("transcript:\n%s", tr)
	}
	// AT+RFS too: the context is erased and the port re-enumerates again.
	if _, err := con.Command(ctx, "AT+RFS"); err != nil {
		t.Fatal(err)
	}
	if con.Reopens() != 2 {
		t.Fatalf("reopens %d", con.Reopens())
	}
}

func TestCommandTimeoutWhenNobodyAnswers(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	con, err := at.Open(context.Background(), at.Config{Port: slave.Name(), CommandTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	if _, err := con.Command(context.Background(), "AT"); !errors.Is(err, at.ErrTimeout) {
		t.Fatalf("err %v", err)
	}
	// A status that arrives afterwards does not confuse the next command.
	if _, err := master.Write([]byte("\r\nOK\r\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := con.Command(context.Background(), "AT+DR=?")
		done <- err
	}()
	buf := make([]byte, 64)
	n, _ := master.Read(buf) // what the driver sent
	for !strings.Contains(string(buf[:n]), "AT+DR=?\r\n") {
		m, err := master.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	_, _ = master.Write([]byte("+EVT:JOINED\r\n###### trace\r\n3\r\n\r\nOK\r\n"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ev := <-con.Events(); ev.Name != "JOINED" {
		t.Fatalf("event %+v", ev)
	}
}

func TestFindUSBBySerialNumber(t *testing.T) {
	list := func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyS0"},
			{Name: "/dev/ttyACM3", IsUSB: true, VID: "0483", PID: "374E", SerialNumber: "0026003A3331510737363931"},
		}, nil
	}
	p, err := at.FindUSB(list, "0026003a3331510737363931")
	if err != nil || p != "/dev/ttyACM3" {
		t.Fatalf("%q %v", p, err)
	}
	if _, err := at.FindUSB(list, "nope"); err == nil {
		t.Fatal("found a missing board")
	}
}

func TestParseEventAndRedact(t *testing.T) {
	for line, want := range map[string][2]string{
		"+EVT:JOINED":      {"JOINED", ""},
		"+EVT:JOIN FAILED": {"JOIN FAILED", ""},
		"+EVT:RX_1, PORT 2, DR 0, RSSI -60, SNR 9": {"RX_1", "PORT 2, DR 0, RSSI -60, SNR 9"},
		"+EVT:2:04:CAFE0102":                       {"DATA", "2:04:CAFE0102"},
		"+EVT:NFC_PROVISIONED KCV=1A2B3C":          {"NFC_PROVISIONED", "KCV=1A2B3C"},
	} {
		ev, ok := at.ParseEvent(line, time.Time{})
		if !ok || ev.Name != want[0] || ev.Args != want[1] {
			t.Errorf("%s → %+v", line, ev)
		}
	}
	got := at.Redact("AT+APPKEY=2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F:3C and 2b7e151628aed2a6abf7158809cf4f3c")
	if strings.Contains(strings.ToLower(got), "2b7e") || strings.Count(got, "KCV") != 2 {
		t.Fatalf("redacted %q", got)
	}
	if at.Redact("AT+DEUI=00:80:E1:15:00:00:00:42") != "AT+DEUI=00:80:E1:15:00:00:00:42" {
		t.Fatal("an EUI was redacted")
	}
}
