package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
)

// Semtech UDP packet-forwarder protocol, version 2
// (Lora-net/sx1302_hal packet_forwarder/PROTOCOL.md §3–§6,
// chirpstack-gateway-bridge internal/backend/semtechudp), the alternative to
// gateway MQTT when Config.UDP names a bridge (host:port, usually :1700):
//
//	PUSH_DATA 0x00 gw→srv  ver | token | 00 | EUI(8) | {"rxpk":[…]} or {"stat":{…}}
//	PUSH_ACK  0x01 srv→gw  ver | token | 01
//	PULL_DATA 0x02 gw→srv  ver | token | 02 | EUI(8)     (keep-alive; registers our address)
//	PULL_RESP 0x03 srv→gw  ver | token | 03 | {"txpk":{…}}
//	PULL_ACK  0x04 srv→gw  ver | token | 04
//	TX_ACK    0x05 gw→srv  ver | token of the PULL_RESP | 05 | EUI(8) | [{"txpk_ack":{"error":"…"}}]
//
// The EUI goes MSB first (lora_pkt_fwd writes htonl'd halves). The token is
// echoed byte for byte. As lora_pkt_fwd does, a TX_ACK carries no JSON when
// the transmission was accepted ("put no JSON string if there is nothing to
// report"), else {"txpk_ack":{"error":"TOO_LATE"|…}}. A txpk this air cannot
// send (not LoRa, frequency 0, unparsable datr) is refused with TX_FREQ, the
// same choice as the MQTT path.

// Packet identifiers and protocol version.
const (
	udpProtocolVersion = 2

	udpPushData = 0x00
	udpPushAck  = 0x01
	udpPullData = 0x02
	udpPullResp = 0x03
	udpPullAck  = 0x04
	udpTxAck    = 0x05
)

// RXPK is one received packet in PUSH_DATA (PROTOCOL.md §4).
type RXPK struct {
	Time string  `json:"time"` // UTC, RFC 3339 with µs
	Tmst uint32  `json:"tmst"` // concentrator µs counter at the end of RX
	Chan uint32  `json:"chan"`
	RFCh uint32  `json:"rfch"`
	Freq float64 `json:"freq"` // MHz
	Stat int     `json:"stat"` // CRC: 1 OK
	Modu string  `json:"modu"` // "LORA"
	DatR string  `json:"datr"` // "SF12BW125"
	CodR string  `json:"codr"` // "4/5"
	RSSI int     `json:"rssi"`
	LSNR float64 `json:"lsnr"`
	Size int     `json:"size"`
	Data string  `json:"data"` // base64 PHYPayload
}

// Stat is the gateway status object in PUSH_DATA (PROTOCOL.md §4).
type Stat struct {
	Time string  `json:"time"` // "2014-01-12 08:59:28 GMT"
	RxNb uint32  `json:"rxnb"`
	RxOK uint32  `json:"rxok"`
	RxFw uint32  `json:"rxfw"`
	ACKR float64 `json:"ackr"`
	DwNb uint32  `json:"dwnb"`
	TxNb uint32  `json:"txnb"`
}

// TXPK is the downlink of a PULL_RESP (PROTOCOL.md §6).
type TXPK struct {
	Imme bool            `json:"imme"`
	Tmst *uint32         `json:"tmst,omitempty"`
	Tmms *uint64         `json:"tmms,omitempty"`
	Freq float64         `json:"freq"`
	RFCh uint32          `json:"rfch"`
	Powe int             `json:"powe"`
	Modu string          `json:"modu"`
	DatR json.RawMessage `json:"datr"` // string for LoRa, number for FSK
	CodR string          `json:"codr"`
	IPol bool            `json:"ipol"`
	Prea int             `json:"prea,omitempty"`
	Size int             `json:"size"`
	Data string          `json:"data"`
	NCRC bool            `json:"ncrc,omitempty"`
}

type udpForwarder struct {
	g    *Gateway
	conn *net.UDPConn
	keep time.Duration

	mu                           sync.Mutex
	pushSent, pushAcked          uint32
	pending                      map[[2]byte]bool // PUSH_DATA tokens awaiting PUSH_ACK
	lastPull                     [2]byte
	pullAcks                     int
	downs                        chan udpDown
	rxOK, rxFw, dwnb, txnb, errs uint32
	// at the last stat: the counters a stat reports are since the previous
	// one (lora_pkt_fwd.c copies the meas_* counters and zeroes them).
	lastSent, lastAcked uint32
}

type udpDown struct {
	token [2]byte
	txpk  TXPK
}

func (g *Gateway) startUDP(ctx context.Context) error {
	raddr, err := net.ResolveUDPAddr("udp", g.cfg.UDP)
	if err != nil {
		return fmt.Errorf("gateway %s: udp %s: %w", g.id, g.cfg.UDP, err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return fmt.Errorf("gateway %s: udp %s: %w", g.id, g.cfg.UDP, err)
	}
	keep := g.cfg.KeepAlive
	if keep <= 0 {
		keep = 5 * time.Second // lora_pkt_fwd keepalive_interval default (UNCONFIRMED: seen in a lora_pkt_fwd.c copy of unknown origin)
	}
	u := &udpForwarder{g: g, conn: conn, keep: keep, pending: map[[2]byte]bool{}, downs: make(chan udpDown, 16)}
	g.udp = u
	rctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	ups, stop := g.cfg.Air.Listen(true)
	g.wg.Add(4)
	go func() { defer g.wg.Done(); u.readLoop() }()
	go func() { defer g.wg.Done(); u.keepAlive(rctx) }()
	go func() { defer g.wg.Done(); u.downLoop(rctx) }()
	go func() { defer g.wg.Done(); defer stop(); g.uplinkLoop(rctx, ups, u.pushUplink) }()
	// Register with the bridge right away: without a PULL_DATA it cannot
	// send downlinks (chirpstack-gateway-bridge semtechudp/registry.go,
	// "get gateway error").
	return u.pullData()
}

func (u *udpForwarder) close() error {
	return u.conn.Close()
}

func newToken() [2]byte {
	var t [2]byte
	_, _ = rand.Read(t[:])
	return t
}

func (u *udpForwarder) header(id byte, token [2]byte, withEUI bool) []byte {
	b := []byte{udpProtocolVersion, token[0], token[1], id}
	if withEUI {
		b = append(b, u.g.cfg.ID[:]...)
	}
	return b
}

func (u *udpForwarder) pullData() error {
	tok := newToken()
	u.mu.Lock()
	u.lastPull = tok
	u.mu.Unlock()
	if _, err := u.conn.Write(u.header(udpPullData, tok, true)); err != nil {
		return fmt.Errorf("gateway %s: PULL_DATA: %w", u.g.id, err)
	}
	return nil
}

func (u *udpForwarder) push(body any) error {
	js, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("gateway %s: PUSH_DATA: %w", u.g.id, err)
	}
	tok := newToken()
	u.mu.Lock()
	u.pending[tok] = true
	u.pushSent++
	u.mu.Unlock()
	if _, err := u.conn.Write(append(u.header(udpPushData, tok, true), js...)); err != nil {
		return fmt.Errorf("gateway %s: PUSH_DATA: %w", u.g.id, err)
	}
	return nil
}

// RXPKFor builds the rxpk the gateway pushes for f.
func (g *Gateway) RXPKFor(f radio.Frame) RXPK {
	end := f.Time.Add(f.Airtime)
	return RXPK{
		Time: end.UTC().Format("2006-01-02T15:04:05.000000Z"),
		Tmst: g.counter(end),
		Chan: eu868Channel(f.Frequency),
		Freq: float64(f.Frequency) / 1e6,
		Stat: 1,
		Modu: "LORA",
		DatR: fmt.Sprintf("SF%dBW%d", f.SF, f.Bandwidth),
		CodR: codeRateString(codeRateEnum(f.CodeRate)),
		RSSI: int(math.Round(f.RSSI)),
		LSNR: f.SNR,
		Size: len(f.PHYPayload),
		Data: base64.StdEncoding.EncodeToString(f.PHYPayload),
	}
}

func (u *udpForwarder) pushUplink(f radio.Frame) error {
	u.g.mu.Lock()
	u.g.rxReceived++
	u.g.mu.Unlock()
	u.mu.Lock()
	u.rxOK++
	u.rxFw++
	u.mu.Unlock()
	return u.push(map[string][]RXPK{"rxpk": {u.g.RXPKFor(f)}})
}

// stat is the next "stat" report: every count since the previous report,
// which then starts again from 0, as Semtech's packet forwarder does
// (lora_pkt_fwd.c thread_up/thread_down measurements, reset in main's
// statistics loop). ackr is the share of this interval's PUSH_DATA
// acknowledged.
func (u *udpForwarder) stat() Stat {
	u.mu.Lock()
	defer u.mu.Unlock()
	ackr := 0.0
	if sent := u.pushSent - u.lastSent; sent > 0 {
		ackr = 100 * float64(u.pushAcked-u.lastAcked) / float64(sent)
	}
	st := Stat{Time: time.Now().UTC().Format("2006-01-02 15:04:05") + " GMT", RxNb: u.rxOK, RxOK: u.rxOK, RxFw: u.rxFw,
		ACKR: math.Round(ackr*10) / 10, DwNb: u.dwnb, TxNb: u.txnb}
	u.rxOK, u.rxFw, u.dwnb, u.txnb = 0, 0, 0, 0
	u.lastSent, u.lastAcked = u.pushSent, u.pushAcked
	return st
}

func (u *udpForwarder) keepAlive(ctx context.Context) {
	pull := time.NewTicker(u.keep)
	defer pull.Stop()
	var stats <-chan time.Time
	if u.g.cfg.StatsInterval > 0 {
		t := time.NewTicker(u.g.cfg.StatsInterval)
		defer t.Stop()
		stats = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-pull.C:
			if err := u.pullData(); err != nil {
				u.g.cfg.Logf("%v", err)
			}
		case <-stats:
			if err := u.push(map[string]Stat{"stat": u.stat()}); err != nil {
				u.g.cfg.Logf("%v", err)
			}
		}
	}
}

func (u *udpForwarder) readLoop() {
	buf := make([]byte, 65535)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP port unreachable (no bridge yet) surfaces as a read
			// error on a connected UDP socket: keep going.
			continue
		}
		d, err := parseDownstream(buf[:n])
		if err != nil {
			u.g.cfg.Logf("gateway %s: %v", u.g.id, err)
			continue
		}
		switch d.kind {
		case udpPushAck:
			u.mu.Lock()
			if u.pending[d.token] {
				delete(u.pending, d.token)
				u.pushAcked++
			}
			u.mu.Unlock()
		case udpPullAck:
			u.mu.Lock()
			if d.token == u.lastPull {
				u.pullAcks++
			}
			u.mu.Unlock()
		case udpPullResp:
			select {
			case u.downs <- udpDown{token: d.token, txpk: d.txpk}:
			default:
				u.g.cfg.Logf("gateway %s: downlink queue full", u.g.id)
			}
		}
	}
}

// downstream is one server→gateway packet: PUSH_ACK, PULL_ACK or PULL_RESP.
type downstream struct {
	kind  byte
	token [2]byte
	txpk  TXPK // PULL_RESP only
}

// parseDownstream reads a server→gateway packet (PROTOCOL.md §3, §5, §6).
// Versions 1 and 2 are taken (the header is the same); an identifier the
// gateway never receives, a short packet or a PULL_RESP whose JSON has no
// txpk object is an error, and the caller drops the packet as lora_pkt_fwd
// does.
func parseDownstream(b []byte) (downstream, error) {
	if len(b) < 4 {
		return downstream{}, fmt.Errorf("udp: %d-byte packet, want ≥ 4", len(b))
	}
	if b[0] != 1 && b[0] != 2 {
		return downstream{}, fmt.Errorf("udp: protocol version %d, want 1 or 2", b[0])
	}
	d := downstream{kind: b[3], token: [2]byte{b[1], b[2]}}
	switch d.kind {
	case udpPushAck, udpPullAck:
		return d, nil
	case udpPullResp:
		var body struct {
			TXPK *TXPK `json:"txpk"`
		}
		if err := json.Unmarshal(b[4:], &body); err != nil {
			return downstream{}, fmt.Errorf("udp: PULL_RESP: %w", err)
		}
		if body.TXPK == nil {
			return downstream{}, errors.New("udp: PULL_RESP without a txpk object")
		}
		d.txpk = *body.TXPK
		return d, nil
	default:
		return downstream{}, fmt.Errorf("udp: packet identifier 0x%02x is not server→gateway", d.kind)
	}
}

func (u *udpForwarder) downLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-u.downs:
			u.mu.Lock()
			u.dwnb++
			u.mu.Unlock()
			u.g.mu.Lock()
			u.g.txReceived++
			u.g.mu.Unlock()
			errStr := u.send(ctx, d.txpk)
			ack := u.header(udpTxAck, d.token, true)
			if errStr != "" {
				ack = append(ack, fmt.Sprintf(`{"txpk_ack":{"error":%q}}`, errStr)...)
			} else {
				u.mu.Lock()
				u.txnb++
				u.mu.Unlock()
			}
			if _, err := u.conn.Write(ack); err != nil {
				u.g.cfg.Logf("gateway %s: TX_ACK: %v", u.g.id, err)
			}
		}
	}
}

var loraDatR = regexp.MustCompile(`^SF(\d{1,2})BW(\d{3})$`)

// txpkFrame turns a txpk into the frame the concentrator would send, or the
// TX_ACK error naming why not: a txpk this air cannot send (not LoRa, no
// frequency, a datr outside SF5–12 / BW125–500, data that is not base64) is
// refused with TX_FREQ, the same choice as the MQTT path (UNCONFIRMED:
// lora_pkt_fwd logs a format error and sends no TX_ACK for some of these).
func txpkFrame(tx TXPK) (radio.Frame, string) {
	var datr string
	if tx.Modu != "LORA" || json.Unmarshal(tx.DatR, &datr) != nil || !(tx.Freq > 0 && tx.Freq < 10000) {
		return radio.Frame{}, "TX_FREQ"
	}
	m := loraDatR.FindStringSubmatch(datr)
	if m == nil {
		return radio.Frame{}, "TX_FREQ"
	}
	sf, _ := strconv.Atoi(m[1])
	bw, _ := strconv.Atoi(m[2])
	if sf < 5 || sf > 12 || (bw != 125 && bw != 250 && bw != 500) {
		return radio.Frame{}, "TX_FREQ"
	}
	payload, err := base64.StdEncoding.DecodeString(tx.Data)
	if err != nil {
		return radio.Frame{}, "TX_FREQ"
	}
	f := radio.Frame{
		Frequency:  uint32(math.Round(tx.Freq * 1e6)),
		SF:         sf,
		Bandwidth:  bw,
		CodeRate:   tx.CodR,
		PHYPayload: payload,
	}
	if _, err := radio.Airtime(f); err != nil {
		return radio.Frame{}, "TX_FREQ" // a code rate the air does not know (found by FuzzUDPDownstream)
	}
	return f, ""
}

// send transmits a txpk and returns the TX_ACK error ("" = sent).
func (u *udpForwarder) send(ctx context.Context, tx TXPK) string {
	f, errStr := txpkFrame(tx)
	if errStr != "" {
		return errStr
	}
	var at time.Time // zero: now (instant timing, or "imme")
	if !tx.Imme && tx.Tmst != nil && u.g.cfg.Clock.Mode() == timing.Realistic {
		var wait time.Duration
		var ok bool
		if at, wait, ok = u.g.scheduled(*tx.Tmst); !ok {
			return "TOO_LATE"
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "TOO_LATE"
		}
	}
	f.Time = at // the tmst instant, as the concentrator sends
	f.Sender = "gateway " + u.g.id
	if err := u.g.cfg.Air.Transmit(ctx, f); err != nil {
		u.g.cfg.Logf("gateway %s: transmit: %v", u.g.id, err)
		return "TX_FREQ"
	}
	u.g.mu.Lock()
	u.g.txEmitted++
	u.g.mu.Unlock()
	return ""
}

// UDPStats reports the forwarder's counters: PUSH_DATA sent and acknowledged,
// PULL_ACKs received for the latest PULL_DATA.
func (g *Gateway) UDPStats() (pushSent, pushAcked uint32, pullAcks int) {
	if g.udp == nil {
		return 0, 0, 0
	}
	g.udp.mu.Lock()
	defer g.udp.mu.Unlock()
	return g.udp.pushSent, g.udp.pushAcked, g.udp.pullAcks
}
