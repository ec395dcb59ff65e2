package chirpstack

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// ChirpStack's integration JSON keeps zero scalars (pbjson emit_fields) and
// uses lowerCamelCase; nested gw messages omit defaults.
func TestMarshalEventLikeChirpStack(t *testing.T) {
	ev := &integration.UplinkEvent{
		DeduplicationId: "d", Time: timestamppb.Now(),
		DeviceInfo: &integration.DeviceInfo{DevEui: "0102030405060708", ApplicationId: "a"},
		DevAddr:    "01020304", FCnt: 0, FPort: 1, Data: []byte("hi"),
		RxInfo: []*gw.UplinkRxInfo{{GatewayId: "0016c001ff10a235", Rssi: -50}},
		TxInfo: &gw.UplinkTxInfo{Frequency: 868100000},
	}
	b, err := marshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deduplicationId", "deviceInfo", "devAddr", "fCnt", "adr", "confirmed", "dr", "fPort", "data", "rxInfo", "txInfo", "regionConfigId"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing in %s", k, b)
		}
	}
	for _, k := range []string{"relayRxInfo", "object", "joinServerContext", "f_cnt", "dev_addr"} {
		if _, ok := m[k]; ok {
			t.Errorf("unexpected key %q in %s", k, b)
		}
	}
	rx := m["rxInfo"].([]any)[0].(map[string]any)
	if _, ok := rx["snr"]; ok {
		t.Errorf("nested rxInfo should omit defaults: %v", rx)
	}
	if m["deviceInfo"].(map[string]any)["deviceClassEnabled"] != "CLASS_A" {
		t.Errorf("enum not rendered by name: %s", b)
	}
	// And a protojson reader (what lns uses) gets it back.
	var back integration.UplinkEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &back); err != nil || string(back.Data) != "hi" {
		t.Errorf("round trip: %v %v", err, back.Data)
	}
}

// ChirpStack's own vectors (storage/device.rs test_get_full_f_cnt_up,
// v4.19.0: server, device, expected), then a forward gap beyond 32,768.
func TestFullFCnt(t *testing.T) {
	for _, c := range []struct{ next, f16, want uint32 }{
		{1, 1, 1},                       // frame-counter is as expected
		{1 << 16, 0, 1 << 16},           // frame-counter is as expected
		{1<<16 + 1, 1, 1<<16 + 1},       // frame-counter is as expected
		{0, 1, 1},                       // one frame packet-loss
		{1<<16 + 1, 2, 1<<16 + 2},       // one frame packet-loss
		{2, 1, 1},                       // re-transmission of previous frame
		{1<<16 + 1, 0, 1 << 16},         // re-transmission of previous frame
		{1 << 16, 1<<16 - 1, 1<<16 - 1}, // re-transmission of previous frame
		{0xffffffff, 0, 0},              //
		{10, 40000, 40000},              // forward gap of 39,990 frames (not a frame from the past)
		{0x10005, 0x0004, 0x10004},      // re-transmission keeps the upper bits
	} {
		if got := fullFCnt(c.next, c.f16); got != c.want {
			t.Errorf("fullFCnt(%#x, %#x) = %#x, want %#x", c.next, c.f16, got, c.want)
		}
	}
}

func TestJWT(t *testing.T) {
	secret := []byte("s3cret")
	tok, err := signJWT(secret, jwtClaims{Aud: "chirpstack", Iss: "chirpstack", Sub: "id", Typ: "key"})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := verifyJWT(secret, tok); !ok || c.Sub != "id" || c.Typ != "key" {
		t.Errorf("verify own token: %v %+v", ok, c)
	}
	if _, ok := verifyJWT([]byte("other"), tok); ok {
		t.Error("token verified with the wrong secret")
	}
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + b64.EncodeToString([]byte(`{"aud":"chirpstack","iss":"chirpstack","sub":"admin","typ":"key"}`)) + "." + parts[2]
	if _, ok := verifyJWT(secret, forged); ok {
		t.Error("forged claims verified")
	}
}

func TestStartRejectsUnsupportedRegion(t *testing.T) {
	if _, err := Start(context.Background(), Config{Region: "us915_0"}); err == nil {
		t.Fatal("Start with us915_0 succeeded")
	}
}

// TestUplinkVectorV9 feeds the brocaar LoRaWAN 1.0 data-frame vector
// (brocaar/lorawan phypayload_test.go TestPHYPayloadMACPayloadLoRaWAN10:
// DevAddr 01020304, FCnt 1, FPort 1, "hello", AppSKey 16×01,
// NwkSKey 16×02) through the MQTT gateway backend and expects the decrypted up
// event on the integration topic. It also runs a second server against the
// first one's broker (external-broker mode).
func TestUplinkVectorV9(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	host, err := Start(ctx, Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	// The server under test uses host's broker as an external broker; it must
	// not run a broker of its own.
	s, err := Start(ctx, Config{MQTTAddr: host.MQTTURL(), Logf: t.Logf, RequireGateway: new(bool), DeduplicationDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.broker != nil || s.MQTTURL() != host.MQTTURL() {
		t.Fatalf("external broker mode: broker=%v url=%s", s.broker != nil, s.MQTTURL())
	}
	// Stop host's own NS from also handling the frame: it knows no device, so
	// it only logs; both servers share the topic like two ChirpStacks would.

	var tid string
	for id := range s.tenants {
		tid = id
	}
	app, err := (&applicationService{s: s}).Create(ctx, &api.CreateApplicationRequest{Application: &api.Application{TenantId: tid, Name: "v9"}})
	if err != nil {
		t.Fatal(err)
	}
	dp, err := (&deviceProfileService{s: s}).Create(ctx, &api.CreateDeviceProfileRequest{DeviceProfile: &api.DeviceProfile{
		TenantId: tid, Name: "v9", Region: common.Region_EU868, MacVersion: common.MacVersion_LORAWAN_1_0_4, SupportsOtaa: true}})
	if err != nil {
		t.Fatal(err)
	}
	devEUI := lorawan.EUI64{8, 7, 6, 5, 4, 3, 2, 1}
	if _, err := (&deviceService{s: s}).Create(ctx, &api.CreateDeviceRequest{Device: &api.Device{
		DevEui: devEUI.String(), Name: "v9", ApplicationId: app.Id, DeviceProfileId: dp.Id}}); err != nil {
		t.Fatal(err)
	}
	var nwk, appS lorawan.AES128Key
	for i := range nwk {
		nwk[i], appS[i] = 0x02, 0x01
	}
	s.mu.Lock()
	s.putSessionLocked(&session{devEUI: devEUI, devAddr: lorawan.DevAddr{1, 2, 3, 4}, macVersion: lorawan.LoRaWAN1_0, rx1Delay: 1,
		keys: lwkeys.SessionKeys{FNwkSIntKey: nwk, SNwkSIntKey: nwk, NwkSEncKey: nwk, AppSKey: appS}})
	s.mu.Unlock()

	c := paho.NewClient(paho.NewClientOptions().AddBroker(s.MQTTURL()).SetClientID("v9-test"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	events := make(chan paho.Message, 4)
	if tok := c.Subscribe("application/"+app.Id+"/device/+/event/+", 0, func(_ paho.Client, m paho.Message) { events <- m }); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	frame, _ := hex.DecodeString("40040302018001000" + "1a694642615d6c3b582")
	uf := &gw.UplinkFrame{PhyPayload: frame,
		TxInfo: &gw.UplinkTxInfo{Frequency: 868300000, Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{Bandwidth: 125000, SpreadingFactor: 12}}}},
		RxInfo: &gw.UplinkRxInfo{GatewayId: "0102030405060708", Rssi: -100, Snr: -5, CrcStatus: gw.CRCStatus_CRC_OK}, // unknown gateway, allowed here
	}
	b, _ := proto.Marshal(uf)
	if tok := c.Publish("eu868/gateway/0102030405060708/event/up", 0, false, b); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-events:
		if !strings.HasSuffix(m.Topic(), "/device/"+devEUI.String()+"/event/up") {
			t.Fatalf("event topic %s", m.Topic())
		}
		var up integration.UplinkEvent
		if err := protojson.Unmarshal(m.Payload(), &up); err != nil {
			t.Fatal(err)
		}
		if string(up.Data) != "hello" || up.FCnt != 1 || up.FPort != 1 || !up.Adr || up.Dr != 0 || up.DevAddr != "01020304" {
			t.Errorf("up event = %v", &up)
		}
	case <-ctx.Done():
		t.Fatal("no up event for vector V9")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// select_downlink_gateway (downlink/helpers.rs) for a class-A answer: by
// link margin (SNR − the SF's required SNR; SF12: −20 dB), ties by RSSI;
// among those with ≥ 10 dB margin one at random weighted by downlink
// priority, else the best. Seeded: the same seed gives the same choices.
func TestChooseDownlinkGateway(t *testing.T) {
	mk := func(seed uint64) *Server {
		s := &Server{gateways: map[lorawan.EUI64]*gatewayRow{}}
		s.rng = mrand.New(mrand.NewPCG(seed, seed))
		return s
	}
	up := func(snrs ...float32) *uplinkCtx {
		u := &uplinkCtx{txInfo: &gw.UplinkTxInfo{Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{SpreadingFactor: 12}}}}}
		for i, snr := range snrs {
			u.rxInfos = append(u.rxInfos, &gw.UplinkRxInfo{GatewayId: fmt.Sprintf("000000000000000%d", i), Snr: snr, Rssi: int32(-100 - i)})
		}
		return u
	}
	// Below the margin everywhere (−15 dB SNR = 5 dB margin): the best.
	if got := mk(1).chooseDownlinkGatewayLocked(up(-15, -12, -18)); got != 1 {
		t.Errorf("no gateway above the margin: chose %d, want the best margin (1)", got)
	}
	// One above (−5 dB: 15 dB margin): that one, always.
	for seed := range uint64(20) {
		if got := mk(seed + 1).chooseDownlinkGatewayLocked(up(-15, -5, -18)); got != 1 {
			t.Fatalf("seed %d: chose %d, want the only one above the margin", seed, got)
		}
	}
	// Two above: both get chosen over seeds, the one below never; a seed
	// repeats its choice.
	seen := map[int]int{}
	for seed := range uint64(200) {
		a, b := mk(seed+1).chooseDownlinkGatewayLocked(up(0, -25, 5)), mk(seed+1).chooseDownlinkGatewayLocked(up(0, -25, 5))
		if a != b {
			t.Fatalf("seed %d: %d then %d", seed, a, b)
		}
		seen[a]++
	}
	if seen[1] != 0 || seen[0] < 60 || seen[2] < 60 {
		t.Errorf("choices over 200 seeds %v: want gateways 0 and 2 about evenly, never 1", seen)
	}
}
