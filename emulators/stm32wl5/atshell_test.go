package stm32wl5

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/brocaar/lorawan"
)

// atRig is a board with an in-memory console (the pty path is tested through
// the rigs/at driver).
type atRig struct {
	*rig
	pending []string // output lines not consumed yet
	events  []string
}

func newATRig(t testing.TB, mod func(*Config)) *atRig {
	t.Helper()
	tag := newFakeTag()
	cfg := rigConfig(t, tag, mod)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.con = newConsole()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{tag: tag, air: cfg.Air, clock: cfg.Clock, board: b, phone: fakePhone{tag}, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	ar := &atRig{rig: r}
	ar.waitLine(t, "AT? to list all available functions")
	return ar
}

// read moves console output into pending/events, waiting up to d for more.
func (a *atRig) read(d time.Duration) {
	timeout := time.After(d)
	var text strings.Builder
	for {
		select {
		case b := <-a.board.con.out:
			text.Write(b)
			continue
		case <-timeout:
		}
		break
	}
	for _, l := range strings.FieldsFunc(text.String(), func(r rune) bool { return r == '\r' || r == '\n' }) {
		switch {
		case strings.HasPrefix(l, "+EVT:"):
			a.events = append(a.events, strings.TrimPrefix(l, "+EVT:"))
		case strings.HasPrefix(l, "###### "): // middleware trace: hosts ignore it
		default:
			a.pending = append(a.pending, l)
		}
	}
}

func (a *atRig) waitLine(t testing.TB, want string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, l := range a.pending {
			if l == want {
				got := a.pending[:i+1]
				a.pending = a.pending[i+1:]
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q; have %q", want, a.pending)
		}
		a.read(5 * time.Millisecond)
	}
}

func isStatus(l string) bool {
	for _, tok := range atTokens {
		if l == tok {
			return true
		}
	}
	return l == "error unknown"
}

// at sends one command and returns its value lines and status token.
func (a *atRig) at(t *testing.T, cmd string) ([]string, string) {
	t.Helper()
	a.board.atInput([]byte(cmd + "\r\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		for i, l := range a.pending {
			if isStatus(l) {
				lines := append([]string(nil), a.pending[:i]...)
				a.pending = a.pending[i+1:]
				return lines, l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no status; have %q", cmd, a.pending)
		}
		a.read(5 * time.Millisecond)
	}
}

func (a *atRig) expect(t *testing.T, cmd, status string, lines ...string) []string {
	t.Helper()
	got, st := a.at(t, cmd)
	if st != status {
		t.Fatalf("%s → %s %q, want %s", cmd, st, got, status)
	}
	if lines != nil && strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Fatalf("%s → %q, want %q", cmd, got, lines)
	}
	return got
}

func (a *atRig) waitEvent(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, e := range a.events {
			if e == want {
				a.events = append(a.events[:i:i], a.events[i+1:]...)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no +EVT:%s; have %q", want, a.events)
		}
		a.read(5 * time.Millisecond)
	}
}

func TestATBannerAndParseRules(t *testing.T) {
	a := newATRig(t, nil)
	a.expect(t, "AT", "OK", []string{}...)
	a.expect(t, "at", "AT_ERROR")
	a.expect(t, "AT+VER=?", "OK", "APPLICATION_VERSION: V1.3.1", "MW_LORAWAN_VERSION:  V2.6.1",
		"MW_RADIO_VERSION:    V1.3.1", "L2_SPEC_VERSION:     V1.0.4", "RP_SPEC_VERSION:     V2-1.0.3")
	a.expect(t, "AT+VER", "AT_ERROR")       // no run operation
	a.expect(t, "AT+VER=1", "AT_ERROR")     // no set operation
	a.expect(t, "AT+VERX", "AT_ERROR")      // prefix matched, junk after the name
	a.expect(t, "AT+NOPE=?", "AT_ERROR")    // unknown
	a.expect(t, "AT+JOINEUI=?", "AT_ERROR") // not in ST's set (AT+APPEUI is)
	a.expect(t, "AT+VEX\bR=?", "OK")        // backspace
	a.expect(t, "AT+DEUI=?", "OK", "00:80:E1:15:00:05:12:34")
	a.expect(t, "AT+APPEUI=?", "OK", "00:00:00:00:00:00:00:00")
	a.expect(t, "AT+BAND=?", "OK", "5:EU868")
	a.expect(t, "AT+BAND=8", "AT_PARAM_ERROR")
	a.expect(t, "AT+BAND=5", "OK")
	a.expect(t, "AT+DR=99", "AT_PARAM_ERROR")
	a.expect(t, "AT+DR=7", "AT_ERROR")
	a.expect(t, "AT+DR=3", "OK")
	a.expect(t, "AT+DR=?", "OK", "3")
	a.expect(t, "AT+ADR=?", "OK", "1")
	a.expect(t, "AT+ADR=2", "AT_PARAM_ERROR")
	a.expect(t, "AT+CLASS=B", "AT_NO_CLASS_B_ENABLE")
	a.expect(t, "AT+CLASS=C", "AT_NO_NETWORK_JOINED")
	a.expect(t, "AT+SEND=2:0:0102", "AT_NO_NETWORK_JOINED")
	a.expect(t, "AT+SEND=x", "AT_PARAM_ERROR", "AT+SEND without the application port")
	a.expect(t, "AT+SEND=2:7:01", "AT_PARAM_ERROR", "AT+SEND without the acknowledge flag")
	a.expect(t, "AT+SEND=2:0:012", "AT_PARAM_ERROR")
	a.expect(t, "AT+JOIN=2", "AT_PARAM_ERROR")
	a.expect(t, "AT+NWKID=128", "AT_PARAM_ERROR")
	a.expect(t, "AT+VL=4", "AT_PARAM_ERROR")
	a.expect(t, "AT+JN1DL=?", "OK", "5000")
	a.expect(t, "AT+RX2FQ=?", "OK", "869525000")
	a.expect(t, "AT+DEUI?", "OK")
	// 539 characters overflow the command buffer; the rest of the line is a
	// new (bad) command.
	a.board.atInput([]byte(strings.Repeat("A", 600) + "\r\n"))
	a.waitLine(t, "AT_TEST_PARAM_OVERFLOW")
	a.waitLine(t, "AT_ERROR")
	help, _ := a.at(t, "AT?")
	if len(help) < 20 || !strings.HasPrefix(help[4], "ATZ") {
		t.Fatalf("AT? printed %q", help)
	}
	a.expect(t, "AT+CS", "OK", "NVM DATA STORED") // AT+DR changed the context
	a.expect(t, "AT+CS", "OK", "NVM DATA UP TO DATE")
}

func TestATKeyReadBackIsAFirmwareOption(t *testing.T) {
	const key = "2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F:3C"
	for _, readBack := range []bool{false, true} {
		a := newATRig(t, func(c *Config) { c.KeyReadBack = readBack })
		a.expect(t, "AT+APPKEY=2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F", "AT_PARAM_ERROR") // 15 bytes
		a.expect(t, "AT+APPKEY="+key, "OK")
		a.expect(t, "AT+NWKKEY="+key, "OK")
		for _, cmd := range []string{"AT+APPKEY=?", "AT+NWKKEY=?"} {
			if readBack {
				a.expect(t, cmd, "OK", key)
			} else {
				a.expect(t, cmd, "AT_ERROR", []string{}...)
			}
		}
	}
}

func TestATJoinSendAndEvents(t *testing.T) {
	a := newATRig(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nw := &network{key: testAppKey, netID: lorawan.NetID{0, 0, 0x13}, devAddr: lorawan.DevAddr{0x26, 0x0B, 0x12, 0x34}}
	nw.run(ctx, t, a.air)
	a.expect(t, "AT+NWKKEY="+colonHex(testAppKey[:]), "OK")
	a.expect(t, "AT+APPEUI="+colonHex(testJoinEUI[:]), "OK")
	a.expect(t, "AT+JOIN=1", "OK")
	// One attempt per AT+JOIN; the first JoinAccept (JoinNonce 0) is dropped
	// by the LoRaMac-node 1.0.x JoinNonce check.
	a.waitEvent(t, "JOIN FAILED")
	a.expect(t, "AT+JOIN=1", "OK")
	a.waitEvent(t, "JOINED")
	a.expect(t, "AT+DADDR=?", "OK", "26:0B:12:34")
	a.expect(t, "AT+DEUI=01:02:03:04:05:06:07:08", "AT_ERROR") // joined: identity is fixed
	eventually(t, "MAC idle", func() bool {
		_, st := a.at(t, "AT+SEND=10:0:CAFE01")
		return st == "OK"
	})
	var ups []lorawan.PHYPayload
	eventually(t, "uplink at the network", func() bool { _, _, ups = nw.snapshot(); return len(ups) == 1 })
	mp := ups[0].MACPayload.(*lorawan.MACPayload)
	if *mp.FPort != 10 || ups[0].MHDR.MType != lorawan.UnconfirmedDataUp {
		t.Fatalf("uplink %+v", mp)
	}
	a.expect(t, "AT+CLASS=C", "OK")
	a.waitEvent(t, "SWITCH_TO_CLASS_C")
	a.expect(t, "AT+CLASS=?", "OK", "C")
}

// TestATZAndDevNoncePersistence pins what STM32CubeWL v1.3.1's source shows
// (lora_at.c AT_store_context is the only caller of LmHandlerNvmDataStore;
// ST community "LoRaWAN device join process can succeed only follow counter
// dev nonce"): ST's AT slave stores the DevNonce only on AT+CS, so a reset after a
// join replays used DevNonces; the tap2join firmware stores it before use.
func TestATZAndDevNoncePersistence(t *testing.T) {
	for _, stock := range []bool{true, false} {
		a := newATRig(t, func(c *Config) { c.StockContextPersistence = stock; c.AcceptFirstJoinNonceZero = true })
		ctx, cancel := context.WithCancel(context.Background())
		nw := &network{key: testAppKey, netID: lorawan.NetID{0, 0, 0x13}, devAddr: lorawan.DevAddr{0x26, 0x0B, 0x12, 0x34}}
		nw.run(ctx, t, a.air)
		a.expect(t, "AT+NWKKEY="+colonHex(testAppKey[:]), "OK")
		a.expect(t, "AT+CS", "OK", "NVM DATA STORED")
		for range 2 {
			a.expect(t, "AT+JOIN=1", "OK")
			a.waitEvent(t, "JOINED")
			eventually(t, "MAC idle", func() bool { a.board.mu.Lock(); defer a.board.mu.Unlock(); return !a.board.joining })
		}
		a.board.atInput([]byte("ATZ\r\n"))
		banner := a.waitLine(t, "AT? to list all available functions")
		if !strings.Contains(strings.Join(banner, "\n"), "NVM DATA RESTORED") {
			t.Errorf("banner after ATZ: %q", banner)
		}
		a.expect(t, "AT+JOIN=1", "OK")
		eventually(t, "third JoinRequest", func() bool { _, j, _ := nw.snapshot(); return len(j) == 3 })
		_, joins, _ := nw.snapshot()
		got := []lorawan.DevNonce{joins[0].DevNonce, joins[1].DevNonce, joins[2].DevNonce}
		want := []lorawan.DevNonce{1, 2, 3}
		if stock {
			want = []lorawan.DevNonce{1, 2, 1} // reused after the reset
		}
		if got[2] != want[2] || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("stock=%t: DevNonces %v, want %v", stock, got, want)
		}
		cancel()
	}
}

func TestATRFSFactoryReset(t *testing.T) {
	a := newATRig(t, nil)
	a.expect(t, "AT+DEUI=01:02:03:04:05:06:07:08", "OK")
	a.expect(t, "AT+CS", "OK", "NVM DATA STORED")
	a.board.atInput([]byte("ATZ\r\n"))
	a.waitLine(t, "AT? to list all available functions")
	a.expect(t, "AT+DEUI=?", "OK", "01:02:03:04:05:06:07:08")
	a.board.atInput([]byte("AT+RFS\r\n"))
	banner := a.waitLine(t, "AT? to list all available functions")
	if strings.Contains(strings.Join(banner, "\n"), "NVM DATA RESTORED") {
		t.Errorf("banner after AT+RFS: %q", banner)
	}
	a.expect(t, "AT+DEUI=?", "OK", "00:80:E1:15:00:05:12:34")
}

// Input sent while the MCU reboots is lost, as on a UART that is not set up.
func TestATInputDuringBootIsLost(t *testing.T) {
	a := newATRig(t, nil)
	a.board.requestReset(resetMCU)
	a.board.atInput([]byte("AT\r\n"))
	a.waitLine(t, "AT? to list all available functions")
	a.read(20 * time.Millisecond)
	for _, l := range a.pending {
		if l == "OK" {
			t.Fatalf("a command sent during the reset was answered")
		}
	}
}
