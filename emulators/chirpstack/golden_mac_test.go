package chirpstack_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tap2join/tap2join/emulators/chirpstack"
)

// MAC commands ChirpStack v4.19 answers that its class_a_test.rs does not
// cover (maccommand/device_time.rs, maccommand/rekey.rs): frames built with
// brocaar/lorawan (the codec, pinned by its own test vectors), answers read
// back the same way.

// dataUpFOpts is an unconfirmed uplink, FCnt 10, no FPort, carrying fopts
// (1.1: encrypted with NwkSEncKey), signed with the class-A sessions' keys.
func dataUpFOpts(t *testing.T, mac lorawan.MACVersion, fopts []byte) string {
	t.Helper()
	return dataUpFOptsFCnt(t, mac, 10, fopts)
}

// dataUpFOptsFCnt is dataUpFOpts with frame counter fCnt.
func dataUpFOptsFCnt(t *testing.T, mac lorawan.MACVersion, fCnt uint32, fopts []byte) string {
	t.Helper()
	var k lorawan.AES128Key
	_ = k.UnmarshalText([]byte(keys116))
	p := lorawan.PHYPayload{MHDR: lorawan.MHDR{MType: lorawan.UnconfirmedDataUp, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.MACPayload{FHDR: lorawan.FHDR{DevAddr: lorawan.DevAddr{1, 2, 3, 4}, FCnt: fCnt,
			FOpts: []lorawan.Payload{&lorawan.DataPayload{Bytes: fopts}}}}}
	if mac == lorawan.LoRaWAN1_1 {
		if err := p.EncryptFOpts(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SetUplinkDataMIC(mac, 0, 0, 0, k, k); err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// answerFOpts decodes the only downlink's RX1 frame and returns its FOpts
// (1.1: decrypted).
func answerFOpts(w *world, mac lorawan.MACVersion) []byte {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.downs) != 1 {
		w.t.Fatalf("%d downlink frames, want 1", len(w.downs))
	}
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(w.downs[0].Items[0].PhyPayload); err != nil {
		w.t.Fatal(err)
	}
	var k lorawan.AES128Key
	_ = k.UnmarshalText([]byte(keys116))
	if mac == lorawan.LoRaWAN1_1 {
		if err := p.DecryptFOpts(k); err != nil {
			w.t.Fatal(err)
		}
	}
	var out []byte
	for _, pl := range p.MACPayload.(*lorawan.MACPayload).FHDR.FOpts {
		b, err := pl.MarshalBinary()
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// DeviceTimeReq (0D) → DeviceTimeAns: GPS seconds (4 bytes LE) and 1/256 s,
// of the reception the gateway reports (time_since_gps_epoch first).
func TestGoldenDeviceTime(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	fresh(0)(w)
	w.uplinkRx(gwA, dataUpFOpts(t, lorawan.LoRaWAN1_0, []byte{0x0D}), 868100000, 12, func(rx *gw.UplinkRxInfo) {
		rx.TimeSinceGpsEpoch = durationpb.New(1_000_000_000*time.Second + 500*time.Millisecond)
	})
	// 1,000,000,000 s = 3B9ACA00; 0.5 s = 128/256.
	if got, want := hex.EncodeToString(answerFOpts(w, lorawan.LoRaWAN1_0)), "0d00ca9a3b80"; got != want {
		t.Errorf("DeviceTimeAns FOpts %s, want %s", got, want)
	}
}

// RekeyInd (0B, LoRaWAN 1.1 minor 1) → RekeyConf minor 1, in 1.1's
// encrypted FOpts.
func TestGoldenRekey(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_1_0, common.RegParamsRevision_RP002_1_0_3, nil)
	fresh(0)(w)
	w.uplink(gwA, dataUpFOpts(t, lorawan.LoRaWAN1_1, []byte{0x0B, 0x01}), 868100000, 12)
	if got, want := hex.EncodeToString(answerFOpts(w, lorawan.LoRaWAN1_1)), "0b01"; got != want {
		t.Errorf("RekeyConf FOpts %s, want %s", got, want)
	}
}

// RXParamSetupReq (maccommand/rx_param_setup.rs, downlink/data.rs
// _request_rx_param_setup): the network's RX2 is 868.525 MHz DR3, the
// session has the region's defaults (869.525 MHz DR0) — the first answer
// carries 05 03 C28684 (DLSettings RX2DR 3, frequency 8685250 = 0x8486C2 × 100 Hz, little-endian),
// its RX2 item still on the session's old RX2; the device's ACK (05 07) is
// applied and answered at once by a downlink whose RX2 item uses the new
// parameters.
func TestGoldenRXParamSetup(t *testing.T) {
	w := newWorldCfg(t, func(c *chirpstack.Config) { c.RX2Frequency, c.RX2DR = 868525000, 3 })
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	fresh(0)(w)
	w.uplink(gwA, u10n, 868100000, 12)
	if got, want := hex.EncodeToString(answerFOpts(w, lorawan.LoRaWAN1_0)), "0503c28684"; got != want {
		t.Fatalf("first answer FOpts %s, want %s", got, want)
	}
	rx2 := func() (uint32, uint32) {
		w.mu.Lock()
		defer w.mu.Unlock()
		it := w.downs[len(w.downs)-1].Items[1].TxInfo
		return it.Frequency, it.GetModulation().GetLora().GetSpreadingFactor()
	}
	if f, sf := rx2(); f != 869525000 || sf != 12 {
		t.Errorf("RX2 item of the request on %d Hz SF%d, want the session's 869525000 SF12", f, sf)
	}
	w.reset()
	w.uplink(gwA, dataUpFOptsFCnt(t, lorawan.LoRaWAN1_0, 11, []byte{0x05, 0x07}), 868100000, 12)
	if got := answerFOpts(w, lorawan.LoRaWAN1_0); len(got) != 0 {
		t.Errorf("answer to RXParamSetupAns carries FOpts %x, want an empty downlink", got)
	}
	if f, sf := rx2(); f != 868525000 || sf != 9 {
		t.Errorf("RX2 item after the ACK on %d Hz SF%d, want 868525000 SF9 (DR3)", f, sf)
	}
}

// answerMAC returns the MAC commands of the only downlink's RX1 frame,
// from FOpts or, when more than 15 bytes, from its FPort 0 payload
// (encrypted with NwkSEncKey).
func answerMAC(w *world) []byte {
	w.t.Helper()
	if fopts := answerFOpts(w, lorawan.LoRaWAN1_0); len(fopts) > 0 {
		return fopts
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(w.downs[0].Items[0].PhyPayload); err != nil {
		w.t.Fatal(err)
	}
	var k lorawan.AES128Key
	_ = k.UnmarshalText([]byte(keys116))
	if err := p.DecryptFRMPayload(k); err != nil {
		w.t.Fatal(err)
	}
	var out []byte
	for _, pl := range p.MACPayload.(*lorawan.MACPayload).FRMPayload {
		b, err := pl.MarshalBinary()
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// NewChannelReq (downlink/data.rs _request_custom_channel_reconfiguration,
// maccommand/new_channel.rs): an ABP session knows none of the region's five
// extra channels; the network asks for them three at a time — 07 <index>
// <frequency / 100, 3 bytes LE> <MaxDR 5 << 4 | MinDR 0> — 18 bytes, so in
// an FPort 0 payload; the acknowledged ones are not asked again, the rest
// are.
func TestGoldenNewChannel(t *testing.T) {
	w := newWorldWith(t, []uint32{867100000, 867300000, 867500000, 867700000, 867900000})
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	fresh(0)(w)
	w.uplink(gwA, u10n, 868100000, 12)
	if got, want := hex.EncodeToString(answerMAC(w)), "0703184f8450"+"0704e8568450"+"0705b85e8450"; got != want {
		t.Fatalf("first answer MAC %s, want %s", got, want)
	}
	w.reset()
	// All three acknowledged (07 03 each).
	w.uplink(gwA, dataUpFOptsFCnt(t, lorawan.LoRaWAN1_0, 11, []byte{0x07, 0x03, 0x07, 0x03, 0x07, 0x03}), 868100000, 12)
	if got, want := hex.EncodeToString(answerMAC(w)), "0706886684500707586e8450"; got != want {
		t.Fatalf("second answer MAC %s, want %s (channels 6 and 7)", got, want)
	}
}
