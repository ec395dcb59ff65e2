// Package gateway is an emulated LoRa gateway that speaks ChirpStack v4's
// gateway MQTT protocol, i.e. what chirpstack-gateway-bridge (or a
// ChirpStack-MQTT-Forwarder) publishes on behalf of a real concentrator — or,
// with Config.UDP, the Semtech UDP packet-forwarder protocol to a bridge
// (udp.go).
//
// Topics (ChirpStack v4 chirpstack/src/gateway/backend/mqtt.rs with
// topic_prefix = region; chirpstack-docker region_eu868.toml):
//
//	<region>/gateway/<id>/event/up      gw.UplinkFrame      (per uplink heard on the Air)
//	<region>/gateway/<id>/event/stats   gw.GatewayStats     (at connect, then every StatsInterval)
//	<region>/gateway/<id>/event/ack     gw.DownlinkTxAck    (per DownlinkFrame)
//	<region>/gateway/<id>/state/conn    gw.ConnState        (ONLINE retained at connect; OFFLINE as will and on Close)
//	<region>/gateway/<id>/command/down  gw.DownlinkFrame    (subscribed)
//
// Payloads are protobuf binary, or protobuf JSON (protojson, lowerCamelCase,
// which ChirpStack detects by the substring "gatewayId") when Config.JSON is set.
// Incoming commands are accepted in either encoding.
//
// Downlink timing follows the Semtech/bridge model: rx_info.context carries the
// gateway's 32-bit microsecond counter at the end of the uplink (4 bytes,
// big-endian, as chirpstack-gateway-bridge's semtechudp backend does); a
// downlink item with delay timing is sent at context + delay. In Realistic mode
// the gateway waits for that instant (TOO_LATE if already past, then the next
// item is tried); in Instant mode it transmits immediately.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/transport/mqttconn"
)

// Config configures a gateway.
type Config struct {
	ID      [8]byte       // gateway EUI, MSB first (topic and gateway_id are its lowercase hex)
	MQTTURL string        // e.g. "tcp://127.0.0.1:1883"
	Region  string        // topic prefix, e.g. "eu868"; "" = no prefix
	Air     *radio.Air    // the air the gateway's antenna is on
	JSON    bool          // protojson payloads instead of protobuf
	Clock   *timing.Clock // nil = instant: downlinks are sent without waiting for their timing
	// StatsInterval publishes gw.GatewayStats periodically; 0 = only at connect.
	StatsInterval time.Duration
	// Username/Password for the broker, if any.
	Username, Password string
	// UDP, if set (host:port of a gateway bridge, usually :1700), makes the
	// gateway a Semtech UDP packet forwarder (protocol v2) instead of an MQTT
	// client; MQTTURL is then unused.
	UDP string
	// KeepAlive is the PULL_DATA interval on UDP (default 5 s).
	KeepAlive time.Duration
	// ReportsNoReply says the network server calls NoReply for every uplink
	// it forwards and does not answer through it (an embedded ChirpStack
	// with chirpstack.Config.Unanswered wired to this gateway). Only then
	// does the gateway promise the air an EndReply for each uplink it hears
	// (radio.Air.ListenGateway), so devices heard by several gateways wait
	// for all of them; otherwise it never holds a device's windows open.
	ReportsNoReply bool
	Logf           func(string, ...any)
}

// Gateway is a running emulated gateway.
type Gateway struct {
	cfg    Config
	id     string
	client mqtt.Client
	start  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
	downs  chan []byte

	udp *udpForwarder // nil on MQTT

	mu                                sync.Mutex
	rxReceived, txReceived, txEmitted uint32
	// replies maps the context counter of a forwarded uplink to the air's
	// Seq of that uplink, so a downlink command answering it can be tied
	// back to it (radio.Frame.ReplyTo, Air.EndReply). Bounded: order holds
	// the keys oldest first.
	replies map[uint32]uint64
	order   []uint32

	lateLog    sync.RWMutex // logLate
	lateLogOff bool
	watchOnce  sync.Once
	watch      *mqttconn.Watcher // the publishes of publishAsync
}

// maxReplies bounds the uplink → downlink correspondence table and the
// queue of downlink commands: in instant timing a fleet of 10,000 sends its
// JoinRequests within seconds and ChirpStack answers them all; at 4,096
// commands were dropped and JoinAccepts tied to no uplink.
const maxReplies = 1 << 15

// rememberUplink records which air uplink (Seq) a context counter names. It
// returns the counter the uplink's context carries: ctxCounter, moved on
// by a µs while another uplink holds it — instant timing puts uplinks of a
// fleet at the same µs, and a shared counter would tie one device's
// JoinAccept to another's uplink (ReplyTo), so the device would miss it.
func (g *Gateway) rememberUplink(ctxCounter uint32, seq uint64) uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.replies == nil {
		g.replies = make(map[uint32]uint64)
	}
	for {
		if s, taken := g.replies[ctxCounter]; !taken || s == seq {
			break
		}
		ctxCounter++
	}
	if _, ok := g.replies[ctxCounter]; !ok {
		g.order = append(g.order, ctxCounter)
	}
	g.replies[ctxCounter] = seq
	for len(g.order) > maxReplies {
		delete(g.replies, g.order[0])
		g.order = g.order[1:]
	}
	return ctxCounter
}

// NoReply tells the gateway that the network will send nothing for the
// uplink whose rx_info.context it forwarded (chirpstack.Config.Unanswered):
// the devices waiting for that answer learn it at once (radio.Air.EndReply).
func (g *Gateway) NoReply(context []byte) {
	if len(context) < 4 {
		return
	}
	g.mu.Lock()
	seq := g.replies[binary.BigEndian.Uint32(context[:4])]
	g.mu.Unlock()
	g.cfg.Air.EndReply(seq)
}

// uplinkSeq returns the air Seq of the uplink a downlink item's context
// names, or 0.
func (g *Gateway) uplinkSeq(it *gw.DownlinkFrameItem) uint64 {
	c := it.GetTxInfo().GetContext()
	if len(c) < 4 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.replies[binary.BigEndian.Uint32(c[:4])]
}

// Start connects to the broker, announces the gateway (ConnState ONLINE,
// GatewayStats), subscribes to its downlink command topic and forwards every
// uplink heard on the Air until Close or ctx ends.
func Start(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Air == nil {
		return nil, errors.New("gateway: Config.Air is nil")
	}
	// downs is a wall-clock hand-over from paho's callback to the TX loop,
	// not the packet forwarder's JIT queue (no time is modelled here): sized
	// like replies, so a fleet's burst of JoinAccepts (1,000 boards joining
	// in instant timing) is not dropped by the software in between.
	g := &Gateway{cfg: cfg, id: hex.EncodeToString(cfg.ID[:]), start: time.Now(), downs: make(chan []byte, maxReplies)}
	if g.cfg.Logf == nil {
		g.cfg.Logf = func(string, ...any) {}
	}
	if cfg.UDP != "" {
		if err := g.startUDP(ctx); err != nil {
			if g.cancel != nil {
				g.cancel()
			}
			if g.udp != nil {
				g.udp.close()
			}
			g.wg.Wait()
			return nil, err
		}
		return g, nil
	}
	offline, err := g.marshal(&gw.ConnState{GatewayId: g.id, State: gw.ConnState_OFFLINE})
	if err != nil {
		return nil, err
	}
	opts := mqtt.NewClientOptions().
		SetCustomOpenConnectionFn(mqttconn.Open). // buffered reads: a fleet moves ~200,000 messages
		AddBroker(cfg.MQTTURL).
		SetClientID("t2j-gw-"+g.id).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).
		// Handlers run on paho's router goroutine (no goroutine per
		// message: a fleet's 20,000 commands); the command handler only
		// queues, never blocks.
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		// Like the bridge: the broker announces OFFLINE if we vanish.
		SetBinaryWill(g.topic("state/conn"), offline, 0, true).
		SetOnConnectHandler(func(c mqtt.Client) { g.onConnect(c) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			g.cfg.Logf("gateway %s: connection to %s lost: %v (reconnecting)", g.id, redacted(cfg.MQTTURL), err)
		})
	g.client = mqtt.NewClient(opts)
	tok := g.client.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("gateway %s: connect %s: timeout", g.id, redacted(cfg.MQTTURL))
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("gateway %s: connect %s: %w", g.id, redacted(cfg.MQTTURL), err)
	}
	rctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	// One receiver: a second one, never read, would take a copy of every
	// uplink until its queue filled, and keep 32,768 frames for the GC.
	var (
		ups  <-chan radio.Frame
		stop func()
	)
	if cfg.ReportsNoReply { // it ends every reply: EndReply after a downlink, NoReply without
		ups, stop = cfg.Air.ListenGateway()
	} else {
		ups, stop = cfg.Air.Listen(true)
	}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); defer stop(); g.uplinkLoop(rctx, ups, g.forwardUplink) }()
	go func() { defer g.wg.Done(); g.downlinkLoop(rctx) }()
	if cfg.StatsInterval > 0 {
		g.wg.Add(1)
		go func() { defer g.wg.Done(); g.statsLoop(rctx) }()
	}
	return g, nil
}

// ID returns the gateway ID as ChirpStack prints it (lowercase hex).
func (g *Gateway) ID() string { return g.id }

// Close announces OFFLINE (retained), disconnects and stops forwarding.
// logLate logs from a goroutine that may outlive Close (publish watchers):
// silent once Close has returned, so a test's t.Logf is never called late.
func (g *Gateway) logLate(format string, args ...any) {
	g.lateLog.RLock()
	defer g.lateLog.RUnlock()
	if !g.lateLogOff {
		g.cfg.Logf(format, args...)
	}
}

func (g *Gateway) Close() error {
	defer func() {
		g.watchOnce.Do(func() {}) // no watcher from now on
		if g.watch != nil {
			g.watch.Close()
		}
		g.lateLog.Lock()
		g.lateLogOff = true
		g.lateLog.Unlock()
	}()
	if g.udp != nil {
		g.cancel()
		err := g.udp.close()
		g.wg.Wait()
		return err
	}
	g.cancel()
	g.wg.Wait()
	var err error
	if b, merr := g.marshal(&gw.ConnState{GatewayId: g.id, State: gw.ConnState_OFFLINE}); merr == nil {
		err = g.publish("state/conn", b, true)
	}
	g.client.Disconnect(250)
	return err
}

func (g *Gateway) topic(suffix string) string {
	t := "gateway/" + g.id + "/" + suffix
	if g.cfg.Region != "" {
		t = g.cfg.Region + "/" + t
	}
	return t
}

func (g *Gateway) marshal(m proto.Message) ([]byte, error) {
	var b []byte
	var err error
	if g.cfg.JSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		return nil, fmt.Errorf("gateway %s: marshal %T: %w", g.id, m, err)
	}
	return b, nil
}

// publishAsync publishes without holding up the caller's loop: a broker
// restart can leave a QoS 0 publish token pending for good (paho, while it
// reconnects), and a downlink loop waiting on it would miss every command
// that follows — the bridge publishes its events asynchronously too.
// Failures are logged.
func (g *Gateway) publishAsync(suffix string, payload []byte) {
	tok := g.client.Publish(g.topic(suffix), 0, false, payload)
	g.watchOnce.Do(func() {
		g.watch = mqttconn.NewWatcher(5*time.Second, func(topic string, err error) {
			g.logLate("gateway %s: publish %s: %v", g.id, topic, err)
		})
	})
	if g.watch != nil { // nil: closed before the first publish
		g.watch.Add(suffix, tok)
	}
}

func (g *Gateway) publish(suffix string, payload []byte, retained bool) error {
	tok := g.client.Publish(g.topic(suffix), 0, retained, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("gateway %s: publish %s: timeout", g.id, suffix)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("gateway %s: publish %s: %w", g.id, suffix, err)
	}
	return nil
}

// onConnect runs on every (re)connect, like the bridge's MQTT integration:
// subscribe to commands, announce ONLINE, send stats. It runs on paho's
// goroutine, so it must not wait on tokens of its own publishes in a way that
// needs the same goroutine; with OrderMatters(false) paho delivers elsewhere.
func (g *Gateway) onConnect(c mqtt.Client) {
	g.cfg.Logf("gateway %s: connected, subscribing to %s", g.id, g.topic("command/down"))
	c.Subscribe(g.topic("command/down"), 0, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case g.downs <- append([]byte(nil), m.Payload()...):
		default:
			g.cfg.Logf("gateway %s: downlink queue full, dropping command", g.id)
		}
	}).Wait()
	if b, err := g.marshal(&gw.ConnState{GatewayId: g.id, State: gw.ConnState_ONLINE}); err == nil {
		c.Publish(g.topic("state/conn"), 0, true, b).Wait()
	}
	if b, err := g.marshal(g.stats()); err == nil {
		c.Publish(g.topic("event/stats"), 0, false, b).Wait()
	}
}

// stats is the next GatewayStats: counts since the previous report, which
// then start from 0 (the Gateway Bridge turns each packet-forwarder stat —
// an interval's counts — into one GatewayStats).
func (g *Gateway) stats() *gw.GatewayStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &gw.GatewayStats{
		GatewayId:           g.id,
		Time:                timestamppb.Now(),
		RxPacketsReceived:   g.rxReceived,
		RxPacketsReceivedOk: g.rxReceived,
		TxPacketsReceived:   g.txReceived,
		TxPacketsEmitted:    g.txEmitted,
		Metadata:            map[string]string{"emulator": "tap2join"},
	}
	g.rxReceived, g.txReceived, g.txEmitted = 0, 0, 0
	return st
}

func (g *Gateway) statsLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if b, err := g.marshal(g.stats()); err == nil {
				if err := g.publish("event/stats", b, false); err != nil {
					g.cfg.Logf("%v", err)
				}
			}
		}
	}
}

// counter is the concentrator's free-running microsecond counter (SX1302
// "tmst"), wrapping at 2^32 µs ≈ 71.6 min.
func (g *Gateway) counter(at time.Time) uint32 { return uint32(at.Sub(g.start).Microseconds()) }

// scheduled is the instant the concentrator's µs counter reaches target
// (the uplink's counter + a delay, or a Semtech "tmst"), exactly — not
// when the command was read — and how long until then; ok is false when it
// has passed (TOO_LATE).
func (g *Gateway) scheduled(target uint32) (at time.Time, wait time.Duration, ok bool) {
	now := time.Now()
	elapsed := now.Sub(g.start).Truncate(time.Microsecond) // the counter now, unwrapped
	ahead := time.Duration(int32(target-uint32(elapsed.Microseconds()))) * time.Microsecond
	if ahead < 0 {
		return time.Time{}, 0, false
	}
	at = g.start.Add(elapsed + ahead)
	return at, at.Sub(now), true
}

// uplinkLoop hands every uplink heard on the air to forward (MQTT or UDP)
// until ctx ends.
func (g *Gateway) uplinkLoop(ctx context.Context, ups <-chan radio.Frame, forward func(radio.Frame) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case f, ok := <-ups:
			if !ok {
				return
			}
			if err := forward(f); err != nil {
				g.cfg.Logf("%v", err)
			}
		}
	}
}

// UplinkFrame builds the gw.UplinkFrame the gateway publishes for f.
func (g *Gateway) UplinkFrame(f radio.Frame, uplinkID uint32) *gw.UplinkFrame {
	end := f.Time.Add(f.Airtime)
	ctxb := binary.BigEndian.AppendUint32(nil, g.counter(end))
	return &gw.UplinkFrame{
		PhyPayload: f.PHYPayload,
		TxInfo: &gw.UplinkTxInfo{
			Frequency: f.Frequency,
			Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
				Bandwidth:       uint32(f.Bandwidth) * 1000, // gw API: Hz
				SpreadingFactor: uint32(f.SF),
				CodeRate:        codeRateEnum(f.CodeRate),
			}}},
		},
		RxInfo: &gw.UplinkRxInfo{
			GatewayId: g.id,
			UplinkId:  uplinkID,
			GwTime:    timestamppb.New(end),
			NsTime:    timestamppb.New(end),
			Rssi:      int32(f.RSSI),
			Snr:       float32(f.SNR),
			Channel:   eu868Channel(f.Frequency),
			Context:   ctxb,
			CrcStatus: gw.CRCStatus_CRC_OK,
		},
	}
}

func (g *Gateway) forwardUplink(f radio.Frame) error {
	var idb [4]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fmt.Errorf("gateway %s: uplink id: %w", g.id, err)
	}
	uf := g.UplinkFrame(f, binary.LittleEndian.Uint32(idb[:]))
	ctr := g.rememberUplink(binary.BigEndian.Uint32(uf.GetRxInfo().GetContext()), f.Seq)
	uf.RxInfo.Context = binary.BigEndian.AppendUint32(nil, ctr)
	b, err := g.marshal(uf)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.rxReceived++
	g.mu.Unlock()
	g.publishAsync("event/up", b)
	return nil
}

func (g *Gateway) downlinkLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-g.downs:
			if err := g.handleDownlink(ctx, b); err != nil {
				g.cfg.Logf("%v", err)
			}
		}
	}
}

func (g *Gateway) handleDownlink(ctx context.Context, payload []byte) error {
	var df gw.DownlinkFrame
	var err error
	if isJSON(payload) {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(payload, &df)
	} else {
		err = proto.Unmarshal(payload, &df)
	}
	if err != nil {
		return fmt.Errorf("gateway %s: decode downlink: %w", g.id, err)
	}
	g.mu.Lock()
	g.txReceived++
	g.mu.Unlock()
	ack := &gw.DownlinkTxAck{GatewayId: g.id, DownlinkId: df.GetDownlinkId()}
	sent := false
	var seq uint64
	if items := df.GetItems(); len(items) > 0 {
		seq = g.uplinkSeq(items[0])
	}
	for _, it := range df.GetItems() {
		if sent {
			// Like the bridge: items after the one sent are IGNORED.
			ack.Items = append(ack.Items, &gw.DownlinkTxAckItem{Status: gw.TxAckStatus_IGNORED})
			continue
		}
		st := g.sendItem(ctx, it, seq)
		ack.Items = append(ack.Items, &gw.DownlinkTxAckItem{Status: st})
		sent = st == gw.TxAckStatus_OK
	}
	// Every item of the command is dealt with: nothing more will be sent
	// for that uplink (RX2 after a sent RX1 item is IGNORED above).
	g.cfg.Air.EndReply(seq)
	b, err := g.marshal(ack)
	if err != nil {
		return err
	}
	g.publishAsync("event/ack", b)
	return nil
}

func (g *Gateway) sendItem(ctx context.Context, it *gw.DownlinkFrameItem, replyTo uint64) gw.TxAckStatus {
	ti := it.GetTxInfo()
	lora := ti.GetModulation().GetLora()
	if lora == nil || ti.GetFrequency() == 0 {
		return gw.TxAckStatus_TX_FREQ // only LoRa is modelled on this air
	}
	// Realistic timing: the concentrator transmits at the counter value the
	// network asks for (the uplink's context counter + the delay, as a
	// packet forwarder's "tmst" scheduling does), to the microsecond: the
	// frame goes on the air stamped with that instant, not with when this
	// goroutine woke, so a device judges its receive window on the
	// scheduled time. A command that arrives after it is TOO_LATE.
	var at time.Time
	if d := ti.GetTiming().GetDelay(); d != nil && g.cfg.Clock.Mode() == timing.Realistic {
		ctxb := ti.GetContext()
		if len(ctxb) >= 4 {
			target := binary.BigEndian.Uint32(ctxb[:4]) + uint32(d.GetDelay().AsDuration().Microseconds())
			var wait time.Duration
			var ok bool
			if at, wait, ok = g.scheduled(target); !ok {
				return gw.TxAckStatus_TOO_LATE
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return gw.TxAckStatus_INTERNAL_ERROR
			}
		}
	}
	f := radio.Frame{
		Time:       at, // zero: now (instant timing)
		Uplink:     false,
		Frequency:  ti.GetFrequency(),
		SF:         int(lora.GetSpreadingFactor()),
		Bandwidth:  int(lora.GetBandwidth() / 1000),
		CodeRate:   codeRateString(lora.GetCodeRate()),
		PHYPayload: it.GetPhyPayload(),
		Sender:     "gateway " + g.id,
		ReplyTo:    replyTo,
	}
	if err := g.cfg.Air.Transmit(ctx, f); err != nil {
		g.cfg.Logf("gateway %s: transmit: %v", g.id, err)
		return gw.TxAckStatus_INTERNAL_ERROR
	}
	g.mu.Lock()
	g.txEmitted++
	g.mu.Unlock()
	return gw.TxAckStatus_OK
}

func isJSON(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "{")
}

func codeRateEnum(s string) gw.CodeRate {
	switch s {
	case "", "4/5":
		return gw.CodeRate_CR_4_5
	case "4/6":
		return gw.CodeRate_CR_4_6
	case "4/7":
		return gw.CodeRate_CR_4_7
	case "4/8":
		return gw.CodeRate_CR_4_8
	}
	return gw.CodeRate_CR_UNDEFINED
}

func codeRateString(c gw.CodeRate) string {
	switch c {
	case gw.CodeRate_CR_4_6:
		return "4/6"
	case gw.CodeRate_CR_4_7:
		return "4/7"
	case gw.CodeRate_CR_4_8:
		return "4/8"
	}
	return "4/5"
}

// eu868Channel maps the three EU868 default channels and the five
// chirpstack-docker extra channels to the concentrator channel index a typical
// 8-channel EU868 gateway configuration uses (0..7); 0 otherwise.
func eu868Channel(freq uint32) uint32 {
	switch freq {
	case 868100000:
		return 0
	case 868300000:
		return 1
	case 868500000:
		return 2
	case 867100000, 867300000, 867500000, 867700000, 867900000:
		return 3 + (freq-867100000)/200000
	}
	return 0
}

// Connected reports whether the gateway's MQTT connection is up (after a
// broker restart it reconnects by itself). A UDP gateway is always connected.
func (g *Gateway) Connected() bool {
	if g.client == nil {
		return g.udp != nil
	}
	return g.client.IsConnectionOpen()
}

// redacted is a broker URL fit for logs and errors: the password of the
// broker account it may carry (tcp://user:password@host) replaced by xxxxx.
func redacted(broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		return "(an unparsable broker URL)"
	}
	return u.Redacted()
}
