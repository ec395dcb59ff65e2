package chirpstack_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tap2join/tap2join/emulators/chirpstack"
)

// FuzzGatewayEvent: any payload on a gateway event topic (up, stats, ack, an
// unknown event; protobuf or JSON, as ChirpStack's MQTT backend tells them
// apart) is decoded or dropped with a log line, never a panic, by a running
// server with a provisioned device. Seeds are the frames of the golden
// scenarios.
func FuzzGatewayEvent(f *testing.F) {
	up := &gw.UplinkFrame{
		PhyPayload: []byte{0x40, 0x04, 0x03, 0x02, 0x01, 0x00, 0x0A, 0x00, 0x0D, 0x11, 0x22, 0x33, 0x44},
		TxInfo: &gw.UplinkTxInfo{Frequency: 868100000, Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
			Bandwidth: 125000, SpreadingFactor: 7, CodeRate: gw.CodeRate_CR_4_5}}}},
		RxInfo: &gw.UplinkRxInfo{GatewayId: gwA, CrcStatus: gw.CRCStatus_CRC_OK, Context: []byte{0, 0, 0, 1}},
	}
	pb, _ := proto.Marshal(up)
	js, _ := protojson.Marshal(up)
	ack, _ := proto.Marshal(&gw.DownlinkTxAck{GatewayId: gwA, DownlinkId: 1, Items: []*gw.DownlinkTxAckItem{{Status: gw.TxAckStatus_OK}}})
	stats, _ := protojson.Marshal(&gw.GatewayStats{GatewayId: gwA, RxPacketsReceived: 1})
	for _, s := range []struct {
		event   uint8
		payload []byte
	}{{0, pb}, {0, js}, {1, stats}, {2, ack}, {3, []byte("{}")}} {
		f.Add(s.event, s.payload)
	}
	w := newWorld(f)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	w.session(keys116, appKey11, 8, 5, 0)
	events := []string{"up", "stats", "ack", "mesh", "exec"}
	f.Fuzz(func(t *testing.T, event uint8, payload []byte) {
		w.srv.GatewayMessage("eu868/gateway/"+gwA+"/event/"+events[int(event)%len(events)], payload)
	})
}

// FuzzDataUplink: any FOpts, FPort and FRMPayload in a data uplink signed
// with the session's keys — so the MIC passes and the MAC-command parser,
// the answers and the integration see the fuzzed bytes — is answered or
// dropped, and the server says which (a downlink command or no answer)
// within 10 s every time: no panic, no hang, no lost uplink.
func FuzzDataUplink(f *testing.F) {
	f.Add([]byte{0x0D}, false, uint8(0), []byte{}, false, false)              // DeviceTimeReq
	f.Add([]byte{0x02}, false, uint8(0), []byte{}, true, false)               // LinkCheckReq, confirmed
	f.Add([]byte{0x03, 0x07}, false, uint8(10), []byte{1, 2, 3}, false, true) // LinkADRAns, ACK
	f.Add([]byte{}, true, uint8(0), []byte{0x05, 0x07, 0x0A, 0x07}, false, false)
	f.Add([]byte{0x06, 0xFF, 0x2A}, false, uint8(224), []byte{0xAA}, false, false) // DevStatusAns
	// The application's reply window (get_downlink_data_delay) is not under
	// test here: 1 µs instead of 100 ms makes each input cost MQTT round
	// trips only.
	w := newWorldCfg(f, func(c *chirpstack.Config) { c.DownlinkDataDelay = time.Microsecond })
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	w.session(keys116, keys116, 0, 0, 0)
	var k lorawan.AES128Key
	_ = k.UnmarshalText([]byte(keys116))
	fCnt := uint32(0)
	f.Fuzz(func(t *testing.T, fopts []byte, withPort bool, port uint8, frm []byte, confirmed, ack bool) {
		if len(fopts) > 15 {
			fopts = fopts[:15]
		}
		if len(frm) > 222 {
			frm = frm[:222]
		}
		mt := lorawan.UnconfirmedDataUp
		if confirmed {
			mt = lorawan.ConfirmedDataUp
		}
		mp := &lorawan.MACPayload{FHDR: lorawan.FHDR{DevAddr: lorawan.DevAddr{1, 2, 3, 4}, FCnt: fCnt, FCtrl: lorawan.FCtrl{ACK: ack}}}
		if len(fopts) > 0 {
			mp.FHDR.FOpts = []lorawan.Payload{&lorawan.DataPayload{Bytes: fopts}}
		}
		if withPort {
			mp.FPort = &port
			mp.FRMPayload = []lorawan.Payload{&lorawan.DataPayload{Bytes: frm}}
		}
		p := lorawan.PHYPayload{MHDR: lorawan.MHDR{MType: mt, Major: lorawan.LoRaWANR1}, MACPayload: mp}
		if withPort {
			if err := p.EncryptFRMPayload(k); err != nil {
				t.Skip(err)
			}
		}
		if err := p.SetUplinkDataMIC(lorawan.LoRaWAN1_0, 0, 0, 0, k, k); err != nil {
			t.Skip(err)
		}
		b, err := p.MarshalBinary()
		if err != nil {
			t.Skip(err)
		}
		fCnt++
		w.t = t
		w.reset()
		w.uplink(gwA, hex.EncodeToString(b), 868100000, 7)
	})
}
