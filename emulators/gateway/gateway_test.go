package gateway

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
)

type msg struct {
	topic    string
	payload  []byte
	retained bool
}

// broker starts an in-test mochi broker on a free loopback port and records
// every message under "#" through its inline client.
func broker(t testing.TB) (*mochi.Server, string, <-chan msg) {
	t.Helper()
	s := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ch := make(chan msg, 64)
	if err := s.Subscribe("#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		ch <- msg{pk.TopicName, append([]byte(nil), pk.Payload...), pk.FixedHeader.Retain}
	}); err != nil {
		t.Fatal(err)
	}
	return s, "tcp://" + l.Address(), ch
}

func await(t testing.TB, ch <-chan msg, suffix string) msg {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-ch:
			if strings.HasSuffix(m.topic, suffix) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on */%s", suffix)
		}
	}
}

var gwID = [8]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}

// startMQTTGateway starts an EU868 gateway on air (clock nil: instant) against
// a fresh broker and waits for its first stats event. The gateway is closed
// when the test ends.
func startMQTTGateway(t testing.TB, air *radio.Air, clock *timing.Clock) (*Gateway, <-chan msg) {
	t.Helper()
	_, url, msgs := broker(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g, err := Start(ctx, Config{ID: gwID, MQTTURL: url, Region: "eu868", Air: air, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	await(t, msgs, "event/stats")
	return g, msgs
}

// A gateway opens one receiver on the air, whichever way it ends replies,
// and closes it on Close.
func TestGatewayOneReceiver(t *testing.T) {
	for _, noReply := range []bool{false, true} {
		_, url, _ := broker(t)
		air := radio.NewAir(nil)
		g, err := Start(context.Background(), Config{ID: gwID, MQTTURL: url, Region: "eu868", Air: air, ReportsNoReply: noReply})
		if err != nil {
			t.Fatal(err)
		}
		if up, down := air.Receivers(); up != 1 || down != 0 {
			t.Errorf("ReportsNoReply %v: %d uplink and %d downlink receivers open, want 1 and 0", noReply, up, down)
		}
		g.Close()
		if up, down := air.Receivers(); up != 0 || down != 0 {
			t.Errorf("ReportsNoReply %v: after Close, %d uplink and %d downlink receivers open", noReply, up, down)
		}
	}
}

func TestGatewayProtobuf(t *testing.T) {
	testGateway(t, false)
}

func TestGatewayJSON(t *testing.T) {
	testGateway(t, true)
}

func testGateway(t *testing.T, asJSON bool) {
	srv, url, msgs := broker(t)
	air := radio.NewAir(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := Start(ctx, Config{ID: gwID, MQTTURL: url, Region: "eu868", Air: air, JSON: asJSON})
	if err != nil {
		t.Fatal(err)
	}
	unmarshal := func(b []byte, m proto.Message) {
		t.Helper()
		var err error
		if asJSON {
			if !strings.Contains(string(b), `"gatewayId"`) {
				t.Errorf("JSON payload without gatewayId (ChirpStack's JSON detection): %s", b)
			}
			err = protojson.Unmarshal(b, m)
		} else {
			err = proto.Unmarshal(b, m)
		}
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
	}

	// Announce: retained ONLINE conn state and a stats event.
	cs := await(t, msgs, "state/conn")
	var st gw.ConnState
	unmarshal(cs.payload, &st)
	if cs.topic != "eu868/gateway/0102030405060708/state/conn" || st.State != gw.ConnState_ONLINE || st.GatewayId != "0102030405060708" {
		t.Errorf("conn state %s %v", cs.topic, &st)
	}
	var stats gw.GatewayStats
	unmarshal(await(t, msgs, "event/stats").payload, &stats)
	if stats.GatewayId != "0102030405060708" {
		t.Errorf("stats %v", &stats)
	}

	// Uplink heard on the air → event/up.
	phy := []byte{0x00, 1, 2, 3}
	if err := air.Transmit(ctx, radio.Frame{Uplink: true, Frequency: 868300000, SF: 12, Bandwidth: 125, PHYPayload: phy, RSSI: -70, SNR: 7.5}); err != nil {
		t.Fatal(err)
	}
	up := await(t, msgs, "event/up")
	var uf gw.UplinkFrame
	unmarshal(up.payload, &uf)
	lora := uf.GetTxInfo().GetModulation().GetLora()
	if string(uf.PhyPayload) != string(phy) || uf.TxInfo.Frequency != 868300000 || lora.GetSpreadingFactor() != 12 ||
		lora.GetBandwidth() != 125000 || lora.GetCodeRate() != gw.CodeRate_CR_4_5 {
		t.Errorf("uplink frame %v", &uf)
	}
	ri := uf.GetRxInfo()
	if ri.GetGatewayId() != g.ID() || ri.GetRssi() != -70 || ri.GetSnr() != 7.5 || len(ri.GetContext()) != 4 ||
		ri.GetGwTime() == nil || ri.GetCrcStatus() != gw.CRCStatus_CRC_OK || ri.GetChannel() != 1 {
		t.Errorf("rx info %v", ri)
	}

	// Downlink command → transmitted on the air (first item) + ack [OK, IGNORED].
	down, stop := air.Listen(false)
	defer stop()
	mk := func(freq uint32, sf uint32, delay time.Duration) *gw.DownlinkFrameItem {
		return &gw.DownlinkFrameItem{PhyPayload: []byte{0x20, 0xAA}, TxInfo: &gw.DownlinkTxInfo{
			Frequency: freq, Power: 14,
			Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
				Bandwidth: 125000, SpreadingFactor: sf, CodeRate: gw.CodeRate_CR_4_5, PolarizationInversion: true}}},
			Timing:  &gw.Timing{Parameters: &gw.Timing_Delay{Delay: &gw.DelayTimingInfo{Delay: durationpb.New(delay)}}},
			Context: ri.GetContext(),
		}}
	}
	df := &gw.DownlinkFrame{DownlinkId: 4242, GatewayId: g.ID(), Items: []*gw.DownlinkFrameItem{
		mk(868300000, 12, 5*time.Second), mk(869525000, 12, 6*time.Second)}}
	var b []byte
	if asJSON {
		b, err = protojson.Marshal(df)
	} else {
		b, err = proto.Marshal(df)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish("eu868/gateway/0102030405060708/command/down", b, false, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-down:
		if f.Frequency != 868300000 || f.SF != 12 || f.Bandwidth != 125 || string(f.PHYPayload) != "\x20\xaa" || f.Uplink {
			t.Errorf("downlink on air %v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no downlink on the air")
	}
	var ack gw.DownlinkTxAck
	unmarshal(await(t, msgs, "event/ack").payload, &ack)
	if ack.DownlinkId != 4242 || ack.GatewayId != g.ID() || len(ack.Items) != 2 ||
		ack.Items[0].Status != gw.TxAckStatus_OK || ack.Items[1].Status != gw.TxAckStatus_IGNORED {
		t.Errorf("ack %v", &ack)
	}

	// Close → OFFLINE retained.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	cs = await(t, msgs, "state/conn")
	unmarshal(cs.payload, &st)
	if st.State != gw.ConnState_OFFLINE {
		t.Errorf("after close: %v", &st)
	}
}

func TestDownlinkNonLoRaItemFallsThrough(t *testing.T) {
	g, msgs := startMQTTGateway(t, radio.NewAir(nil), nil)
	df := &gw.DownlinkFrame{DownlinkId: 7, Items: []*gw.DownlinkFrameItem{
		{PhyPayload: []byte{1}, TxInfo: &gw.DownlinkTxInfo{Frequency: 868100000}}, // no LoRa modulation
		{PhyPayload: []byte{2}, TxInfo: &gw.DownlinkTxInfo{Frequency: 869525000, Modulation: &gw.Modulation{
			Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{Bandwidth: 125000, SpreadingFactor: 12}}}}},
	}}
	b, _ := proto.Marshal(df)
	g.downs <- b // inject as if received on command/down
	var ack gw.DownlinkTxAck
	if err := proto.Unmarshal(await(t, msgs, "event/ack").payload, &ack); err != nil {
		t.Fatal(err)
	}
	if len(ack.Items) != 2 || ack.Items[0].Status != gw.TxAckStatus_TX_FREQ || ack.Items[1].Status != gw.TxAckStatus_OK {
		t.Errorf("ack %v", &ack)
	}
}

// In Realistic timing a delay-timed item is sent at context + delay; an
// instant already past is TOO_LATE and the next item is tried (like the
// bridge's TX_ACK handling, chirpstack-gateway-bridge
// internal/backend/semtechudp/backend.go).
func TestRealisticTimingTooLateFallsThrough(t *testing.T) {
	clock := timing.NewClock(timing.Realistic)
	g, msgs := startMQTTGateway(t, radio.NewAir(clock), clock)
	now := g.counter(time.Now())
	item := func(ctxTmst uint32, delay time.Duration) *gw.DownlinkFrameItem {
		return &gw.DownlinkFrameItem{PhyPayload: []byte{0x60, 1, 2, 3}, TxInfo: &gw.DownlinkTxInfo{
			Frequency: 868100000,
			Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
				Bandwidth: 125000, SpreadingFactor: 7, CodeRate: gw.CodeRate_CR_4_5}}},
			Timing:  &gw.Timing{Parameters: &gw.Timing_Delay{Delay: &gw.DelayTimingInfo{Delay: durationpb.New(delay)}}},
			Context: binary.BigEndian.AppendUint32(nil, ctxTmst),
		}}
	}
	df := &gw.DownlinkFrame{DownlinkId: 9, Items: []*gw.DownlinkFrameItem{
		item(now-10_000_000, 5*time.Second), // RX1 instant 5 s ago
		item(now, 50*time.Millisecond),      // 50 ms from now
	}}
	b, _ := proto.Marshal(df)
	start := time.Now()
	g.downs <- b
	var ack gw.DownlinkTxAck
	if err := proto.Unmarshal(await(t, msgs, "event/ack").payload, &ack); err != nil {
		t.Fatal(err)
	}
	if len(ack.Items) != 2 || ack.Items[0].Status != gw.TxAckStatus_TOO_LATE || ack.Items[1].Status != gw.TxAckStatus_OK {
		t.Errorf("ack %v", &ack)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Errorf("downlink sent after %s, before its scheduled instant", el)
	}
}

// NoReply ends the receive windows of the device that sent the uplink whose
// context the network names: its bound listener gets the EndOfReply notice.
func TestNoReplyEndsTheSendersWindows(t *testing.T) {
	air := radio.NewAir(nil)
	g, msgs := startMQTTGateway(t, air, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down, stop := air.Listen(false)
	defer stop()
	sent, err := air.Send(ctx, radio.Frame{Uplink: true, Frequency: 868100000, SF: 7, Bandwidth: 125, PHYPayload: []byte{0x40, 1}})
	if err != nil {
		t.Fatal(err)
	}
	air.Bind(down, sent.Seq)
	var uf gw.UplinkFrame
	if err := proto.Unmarshal(await(t, msgs, "event/up").payload, &uf); err != nil {
		t.Fatal(err)
	}
	g.NoReply([]byte{0xff, 0xff, 0xff, 0xff}) // an uplink it never forwarded: nothing
	g.NoReply(uf.GetRxInfo().GetContext())
	select {
	case f := <-down:
		if !f.EndOfReply || f.ReplyTo != sent.Seq {
			t.Fatalf("device heard %+v, want the end of the reply to uplink %d", f, sent.Seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EndOfReply for the device")
	}
	select {
	case f := <-down:
		t.Fatalf("more than one notice: %+v", f)
	default:
	}
}
