package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tap2join/tap2join/emulators/radio"
)

// FuzzUDPDownstream: any datagram a bridge (or anything else on :1700)
// sends the forwarder is parsed or dropped, and a PULL_RESP's txpk is sent
// or refused with a TX_ACK error — never a panic, never a frame this air
// cannot carry. Seeds are the packets of PROTOCOL.md §5–§6 as
// chirpstack-gateway-bridge sends them.
func FuzzUDPDownstream(f *testing.F) {
	for _, s := range []string{
		"\x02\x12\x34\x01",
		"\x02\x12\x34\x04",
		"\x02\x12\x34\x03" + `{"txpk":{"imme":false,"tmst":5000000,"freq":868.1,"rfch":0,"powe":16,"modu":"LORA","datr":"SF7BW125","codr":"4/5","ipol":true,"size":17,"data":"IAECAwQFBgcICQoLDA0ODxA="}}`,
		"\x02\x00\x01\x03" + `{"txpk":{"imme":true,"freq":869.525,"rfch":0,"powe":27,"modu":"LORA","datr":"SF12BW125","codr":"4/5","ipol":true,"size":3,"data":"YAEC"}}`,
		"\x02\x00\x01\x03" + `{"txpk":{"freq":868.3,"modu":"FSK","datr":50000,"data":""}}`,
		"\x01\x00\x00\x03{}",
		"\x02\x00\x00\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		d, err := parseDownstream(pkt)
		if err != nil {
			return
		}
		if d.kind != udpPushAck && d.kind != udpPullAck && d.kind != udpPullResp {
			t.Fatalf("accepted packet identifier 0x%02x", d.kind)
		}
		if d.token != [2]byte{pkt[1], pkt[2]} {
			t.Fatalf("token %x, packet says %x", d.token, pkt[1:3])
		}
		if d.kind != udpPullResp {
			return
		}
		fr, errStr := txpkFrame(d.txpk)
		if errStr != "" {
			if errStr != "TX_FREQ" {
				t.Fatalf("TX_ACK error %q", errStr)
			}
			return
		}
		if _, err := radio.Airtime(fr); err != nil {
			t.Fatalf("accepted a txpk the air refuses (%v): %+v", err, d.txpk)
		}
	})
}

// FuzzUDPPushData: whatever the air hands the forwarder (any payload, any
// signal figures a receiver reports), the PUSH_DATA it builds parses back
// as PROTOCOL.md §4 says — header, EUI, an rxpk whose data is the payload.
func FuzzUDPPushData(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0x02}, uint32(868100000), 7, -42.0, 9.5)
	f.Add([]byte{}, uint32(869525000), 12, -120.4, -20.0)
	g := &Gateway{cfg: Config{ID: gwID}, id: "0102030405060708", start: time.Unix(0, 0)}
	u := &udpForwarder{g: g}
	f.Fuzz(func(t *testing.T, payload []byte, freq uint32, sf int, rssi, snr float64) {
		if math.IsNaN(rssi) || math.IsInf(rssi, 0) || math.IsNaN(snr) || math.IsInf(snr, 0) || math.Abs(rssi) > 1e6 {
			t.Skip("a receiver reports finite figures")
		}
		fr := radio.Frame{Time: time.Unix(100, 0), Airtime: time.Millisecond, Frequency: freq, SF: sf, Bandwidth: 125,
			CodeRate: "4/5", RSSI: rssi, SNR: snr, PHYPayload: payload}
		js, err := json.Marshal(map[string][]RXPK{"rxpk": {g.RXPKFor(fr)}})
		if err != nil {
			t.Fatalf("PUSH_DATA body: %v", err)
		}
		pkt := append(u.header(udpPushData, [2]byte{0xAB, 0xCD}, true), js...)
		if pkt[0] != 2 || pkt[1] != 0xAB || pkt[2] != 0xCD || pkt[3] != 0x00 || string(pkt[4:12]) != string(gwID[:]) {
			t.Fatalf("header % X", pkt[:12])
		}
		var body struct {
			RXPK []RXPK `json:"rxpk"`
		}
		if err := json.Unmarshal(pkt[12:], &body); err != nil || len(body.RXPK) != 1 {
			t.Fatalf("rxpk: %v (%d)", err, len(body.RXPK))
		}
		got, err := base64.StdEncoding.DecodeString(body.RXPK[0].Data)
		if err != nil || string(got) != string(payload) || body.RXPK[0].Size != len(payload) {
			t.Fatalf("data %q size %d for % X", body.RXPK[0].Data, body.RXPK[0].Size, payload)
		}
		if int(math.Round(rssi)) != body.RXPK[0].RSSI {
			t.Fatalf("rssi %v pushed as %d", rssi, body.RXPK[0].RSSI)
		}
	})
}

// FuzzMQTTDownlink: any command/down payload (protobuf or JSON, as
// ChirpStack or anything else on the broker publishes) is decoded and each
// item sent or refused with a TxAck status, never a panic, on a running
// gateway with a real broker.
func FuzzMQTTDownlink(f *testing.F) {
	item := &gw.DownlinkFrameItem{PhyPayload: []byte{0x20, 1, 2, 3}, TxInfo: &gw.DownlinkTxInfo{
		Frequency: 868100000, Power: 14,
		Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{Bandwidth: 125000, SpreadingFactor: 7, CodeRate: gw.CodeRate_CR_4_5, PolarizationInversion: true}}},
		Timing:     &gw.Timing{Parameters: &gw.Timing_Delay{Delay: &gw.DelayTimingInfo{Delay: durationpb.New(time.Second)}}},
		Context:    []byte{0, 0, 0, 1},
	}}
	df := &gw.DownlinkFrame{DownlinkId: 7, GatewayId: "0102030405060708", Items: []*gw.DownlinkFrameItem{item}}
	pb, _ := proto.Marshal(df)
	js, _ := protojson.Marshal(df)
	f.Add(pb)
	f.Add(js)
	f.Add([]byte(`{"gatewayId":"0102030405060708","items":[{"phyPayload":"","txInfo":{"frequency":1,"modulation":{"lora":{"spreadingFactor":99}}}}]}`))
	g, msgs := startMQTTGateway(f, radio.NewAir(nil), nil)
	// The test broker records every message; nobody reads the acks here.
	// Drained until the process ends, so the broker's own Close (a cleanup
	// that runs after this fuzz target's) never blocks on a full recorder.
	go func() {
		for range msgs {
		}
	}()
	f.Fuzz(func(t *testing.T, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.handleDownlink(ctx, payload)
	})
}
