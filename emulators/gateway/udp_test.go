package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
)

// bridge is an in-test Semtech UDP server (the gateway bridge's side).
type bridge struct {
	t    *testing.T
	conn *net.UDPConn
	gw   *net.UDPAddr
}

func newBridge(t *testing.T) *bridge {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &bridge{t: t, conn: conn}
}

// next returns the next packet with identifier id (others are answered as
// a bridge would — PUSH_DATA/PULL_DATA acked — and skipped).
func (b *bridge) next(id byte) []byte {
	b.t.Helper()
	buf := make([]byte, 65535)
	_ = b.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, addr, err := b.conn.ReadFromUDP(buf)
		if err != nil {
			b.t.Fatalf("waiting for packet %#x: %v", id, err)
		}
		b.gw = addr
		p := append([]byte(nil), buf[:n]...)
		if p[0] != 2 {
			b.t.Fatalf("protocol version %d", p[0])
		}
		switch p[3] {
		case udpPushData:
			b.send([]byte{2, p[1], p[2], udpPushAck})
		case udpPullData:
			b.send([]byte{2, p[1], p[2], udpPullAck})
		}
		if p[3] == id {
			return p
		}
	}
}

func (b *bridge) send(p []byte) {
	b.t.Helper()
	if _, err := b.conn.WriteToUDP(p, b.gw); err != nil {
		b.t.Fatal(err)
	}
}

var udpGW = [8]byte{0x00, 0x16, 0xC0, 0x01, 0xFF, 0x10, 0xD3, 0xF6}

func startUDPGateway(t *testing.T, b *bridge, clock *timing.Clock, air *radio.Air) *Gateway {
	g, err := Start(context.Background(), Config{ID: udpGW, UDP: b.conn.LocalAddr().String(), Air: air, Clock: clock,
		KeepAlive: 50 * time.Millisecond, StatsInterval: 80 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestUDPForwarderUplinkDownlinkAndAcks(t *testing.T) {
	b := newBridge(t)
	clock := timing.NewClock(timing.Instant)
	air := radio.NewAir(clock)
	g := startUDPGateway(t, b, clock, air)

	// PULL_DATA registers the gateway: header + EUI, MSB first.
	pull := b.next(udpPullData)
	if len(pull) != 12 || !bytes.Equal(pull[4:12], udpGW[:]) {
		t.Fatalf("PULL_DATA % X", pull)
	}

	// An uplink on the air becomes a PUSH_DATA rxpk.
	phy := []byte{0x40, 0x04, 0x03, 0x02, 0x01, 0x80, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0xCC, 0xDD}
	if err := air.Transmit(context.Background(), radio.Frame{Uplink: true, Frequency: 868300000, SF: 9, Bandwidth: 125,
		PHYPayload: phy, RSSI: -73, SNR: 6.5, Sender: "dev"}); err != nil {
		t.Fatal(err)
	}
	var push struct {
		RXPK []RXPK `json:"rxpk"`
	}
	for push.RXPK == nil { // skip stat-only PUSH_DATA
		p := b.next(udpPushData)
		if !bytes.Equal(p[4:12], udpGW[:]) {
			t.Fatalf("PUSH_DATA EUI % X", p[4:12])
		}
		if err := json.Unmarshal(p[12:], &push); err != nil {
			t.Fatalf("PUSH_DATA JSON %q: %v", p[12:], err)
		}
	}
	rx := push.RXPK[0]
	if rx.Freq != 868.3 || rx.DatR != "SF9BW125" || rx.CodR != "4/5" || rx.Modu != "LORA" || rx.Stat != 1 ||
		rx.RSSI != -73 || rx.LSNR != 6.5 || rx.Size != len(phy) || rx.Chan != 1 || rx.Data != base64.StdEncoding.EncodeToString(phy) {
		t.Fatalf("rxpk %+v", rx)
	}
	if _, err := time.Parse(time.RFC3339Nano, rx.Time); err != nil {
		t.Fatalf("rxpk time %q", rx.Time)
	}

	// A PULL_RESP is transmitted on the air and acknowledged with TX_ACK
	// (same token, no JSON: success).
	down, stop := air.Listen(false)
	defer stop()
	tmst := rx.Tmst + 1000000
	js, _ := json.Marshal(map[string]TXPK{"txpk": {Tmst: &tmst, Freq: 868.3, Powe: 14, Modu: "LORA",
		DatR: json.RawMessage(`"SF9BW125"`), CodR: "4/5", IPol: true, Size: 3, Data: base64.StdEncoding.EncodeToString([]byte{0x60, 1, 2})}})
	b.send(append([]byte{2, 0xAB, 0xCD, udpPullResp}, js...))
	ack := b.next(udpTxAck)
	if ack[1] != 0xAB || ack[2] != 0xCD || !bytes.Equal(ack[4:12], udpGW[:]) || len(ack) != 12 {
		t.Fatalf("TX_ACK % X (%q)", ack, ack[12:])
	}
	select {
	case f := <-down:
		if f.Frequency != 868300000 || f.SF != 9 || f.Bandwidth != 125 || !bytes.Equal(f.PHYPayload, []byte{0x60, 1, 2}) {
			t.Fatalf("downlink %s", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no downlink on the air")
	}

	// A txpk the air cannot send is refused with an error in TX_ACK.
	js, _ = json.Marshal(map[string]TXPK{"txpk": {Imme: true, Freq: 868.3, Modu: "FSK", DatR: json.RawMessage(`50000`), Data: "AA=="}})
	b.send(append([]byte{2, 0x01, 0x02, udpPullResp}, js...))
	ack = b.next(udpTxAck)
	if string(ack[12:]) != `{"txpk_ack":{"error":"TX_FREQ"}}` || ack[1] != 0x01 {
		t.Fatalf("TX_ACK %q", ack[12:])
	}

	// Keep-alive PULL_DATA keeps coming; stats are pushed; every push and
	// pull was acknowledged by our bridge.
	b.next(udpPullData)
	var st struct {
		Stat *Stat `json:"stat"`
	}
	for st.Stat == nil {
		_ = json.Unmarshal(b.next(udpPushData)[12:], &st)
	}
	if st.Stat.RxNb != 1 || st.Stat.TxNb != 1 || st.Stat.DwNb != 2 {
		t.Fatalf("stat %+v", st.Stat)
	}
	// The next report counts its own interval only (nothing happened).
	for st.Stat = nil; st.Stat == nil; {
		_ = json.Unmarshal(b.next(udpPushData)[12:], &st)
	}
	if st.Stat.RxNb != 0 || st.Stat.RxOK != 0 || st.Stat.TxNb != 0 || st.Stat.DwNb != 0 {
		t.Fatalf("second stat %+v: counters not reset per report", st.Stat)
	}
	sent, acked, pulls := g.UDPStats()
	if sent < 2 || acked < 1 || pulls < 1 {
		t.Fatalf("stats sent=%d acked=%d pullAcks=%d", sent, acked, pulls)
	}
}

func TestUDPTooLateInRealisticTiming(t *testing.T) {
	b := newBridge(t)
	clock := timing.NewClock(timing.Realistic)
	air := radio.NewAir(clock)
	g := startUDPGateway(t, b, clock, air)
	b.next(udpPullData)
	past := g.counter(time.Now()) - 1000
	js, _ := json.Marshal(map[string]TXPK{"txpk": {Tmst: &past, Freq: 869.525, Modu: "LORA", DatR: json.RawMessage(`"SF12BW125"`),
		CodR: "4/5", Data: "YAE="}})
	b.send(append([]byte{2, 7, 7, udpPullResp}, js...))
	ack := b.next(udpTxAck)
	if string(ack[12:]) != `{"txpk_ack":{"error":"TOO_LATE"}}` {
		t.Fatalf("TX_ACK %q", ack[12:])
	}
}
