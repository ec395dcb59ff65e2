package chirpstack_test

// Golden scenarios: ChirpStack v4.19.0's own tests (chirpstack/src/test/
// otaa_test.rs, class_a_test.rs; tag v4.19.0, commit eacda534) re-expressed
// as tables that run against the embedded server through its public seams
// only — the gRPC API (tenants, gateways, applications, device profiles,
// devices, keys, Activate for the device session ChirpStack's tests inject,
// Enqueue, GetActivation, GetQueue) and the MQTT gateway backend and
// integration. Inputs and expected bytes are upstream's facts (the literal
// arrays of the test files, or frames upstream builds in code, recomputed
// and cross-checked); the tests are written here. Each scenario carries its
// upstream function and name.
//
// What upstream asserts on internal storage (the whole device-session blob,
// Redis streams, the saved downlink frame) is checked where the API shows it
// (GetActivation: DevAddr, session keys, frame counters; Get: class, JoinEUI;
// GetQueue) and otherwise through behaviour; the README lists the scenarios
// that do not pass and why.

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tap2join/tap2join/emulators/chirpstack"
)

// Upstream's common identifiers (test/mod.rs, the test files' setup).
const (
	gwA      = "0102030405060708" // the gateway of every test function
	devEUI   = "0202030405060708"
	joinEUI  = "0102030405060708"
	testAddr = "01020304" // devaddr.rs pins it in test builds
	nwkKey   = "0102030405060708090a0b0c0d0e0f10"
	appKey11 = "100f0e0d0c0b0a090807060504030201" // test_lorawan_11's AppKey, and the AppSKey of class_a_test
	// keys116 is the network session key of every class_a_test session
	// (f_nwk_s_int_key = s_nwk_s_int_key = nwk_s_enc_key = [1..16]).
	keys116 = "0102030405060708090a0b0c0d0e0f10"
)

// world is one test function's server (upstream resets the database once
// per function) with a gRPC client and an MQTT client that sees the
// gateway commands and the integration events.
type world struct {
	t      testing.TB // *testing.T, or the *testing.F of a fuzz target
	srv    *chirpstack.Server
	ctx    context.Context
	tenant api.TenantServiceClient
	gws    api.GatewayServiceClient
	apps   api.ApplicationServiceClient
	dps    api.DeviceProfileServiceClient
	devs   api.DeviceServiceClient
	mqtt   paho.Client

	mu       sync.Mutex
	downs    []*gw.DownlinkFrame
	events   []event
	answered map[string]int // Unanswered calls per gateway

	tenantID, appID, dpID string
}

type event struct {
	typ     string
	payload []byte
}

// newWorld starts the server as ChirpStack's tests configure theirs
// (test/mod.rs prepare): NetID 000000, no extra channels, the pinned
// DevAddr; a short deduplication window (upstream calls handle_uplink
// directly, without one).
func newWorld(t testing.TB) *world { return newWorldCfg(t, nil) }

// newWorldWith is newWorld with the region's extra channels.
func newWorldWith(t *testing.T, extraChannels []uint32) *world {
	t.Helper()
	return newWorldCfg(t, func(c *chirpstack.Config) { c.ExtraChannels = extraChannels })
}

// newWorldCfg is newWorld with the region configuration changed as a test
// function changes it (rx1_delay, rx_window, …).
func newWorldCfg(t testing.TB, configure func(*chirpstack.Config)) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	addr := lorawan.DevAddr{1, 2, 3, 4}
	w := &world{t: t, ctx: ctx, answered: map[string]int{}}
	cfg := chirpstack.Config{
		DevAddr: &addr, ExtraChannels: []uint32{}, DeduplicationDelay: time.Millisecond,
		Unanswered: func(gatewayID string, _ []byte) {
			w.mu.Lock()
			w.answered[strings.ToLower(gatewayID)]++
			w.mu.Unlock()
		},
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := chirpstack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w.srv = srv
	conn, err := grpc.NewClient(srv.APIAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(token(srv.APIToken())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	w.tenant, w.gws, w.apps = api.NewTenantServiceClient(conn), api.NewGatewayServiceClient(conn), api.NewApplicationServiceClient(conn)
	w.dps, w.devs = api.NewDeviceProfileServiceClient(conn), api.NewDeviceServiceClient(conn)

	mq := paho.NewClient(paho.NewClientOptions().AddBroker(srv.MQTTURL()).SetClientID("golden-" + t.Name()))
	if tok := mq.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { mq.Disconnect(10) })
	sub := func(topic string, h paho.MessageHandler) {
		if tok := mq.Subscribe(topic, 0, h); tok.Wait() && tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	sub("eu868/gateway/+/command/down", func(_ paho.Client, m paho.Message) {
		var df gw.DownlinkFrame
		if err := proto.Unmarshal(m.Payload(), &df); err != nil {
			t.Errorf("downlink frame on %s: %v", m.Topic(), err)
			return
		}
		w.mu.Lock()
		w.downs = append(w.downs, &df)
		w.mu.Unlock()
	})
	sub("application/+/device/+/event/+", func(_ paho.Client, m paho.Message) {
		typ := m.Topic()[strings.LastIndex(m.Topic(), "/")+1:]
		w.mu.Lock()
		w.events = append(w.events, event{typ: typ, payload: m.Payload()})
		w.mu.Unlock()
	})
	w.mqtt = mq
	return w
}

type token string

func (tk token) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(tk)}, nil
}
func (token) RequireTransportSecurity() bool { return false }

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// setup creates upstream's common objects: tenant "tenant" (or the given
// one), gateway 0102030405060708, application "app", device profile "dp"
// with the given MAC version, device 0202030405060708.
func (w *world) setup(mac common.MacVersion, rp common.RegParamsRevision, dev *api.Device) {
	w.t.Helper()
	tr, err := w.tenant.Create(w.ctx, &api.CreateTenantRequest{Tenant: &api.Tenant{Name: "tenant", CanHaveGateways: true}})
	w.must(err)
	w.tenantID = tr.Id
	w.addGateway(gwA, w.tenantID)
	ar, err := w.apps.Create(w.ctx, &api.CreateApplicationRequest{Application: &api.Application{Name: "app", TenantId: w.tenantID}})
	w.must(err)
	w.appID = ar.Id
	dr, err := w.dps.Create(w.ctx, &api.CreateDeviceProfileRequest{DeviceProfile: &api.DeviceProfile{
		Name: "dp", TenantId: w.tenantID, Region: common.Region_EU868, MacVersion: mac, RegParamsRevision: rp, SupportsOtaa: true}})
	w.must(err)
	w.dpID = dr.Id
	if dev == nil {
		dev = &api.Device{}
	}
	dev.DevEui, dev.Name, dev.ApplicationId, dev.DeviceProfileId = devEUI, "device", w.appID, w.dpID
	_, err = w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: dev})
	w.must(err)
}

func (w *world) addGateway(id, tenantID string) {
	w.t.Helper()
	_, err := w.gws.Create(w.ctx, &api.CreateGatewayRequest{Gateway: &api.Gateway{GatewayId: id, Name: "gateway-" + id, TenantId: tenantID, StatsInterval: 30}})
	w.must(err)
}

// keys (re)creates the device keys: DevNonces empty, JoinNonce 0 — upstream's
// device_keys::reset_nonces.
func (w *world) keys(nwk, app string) {
	w.t.Helper()
	_, _ = w.devs.DeleteKeys(w.ctx, &api.DeleteDeviceKeysRequest{DevEui: devEUI})
	_, err := w.devs.CreateKeys(w.ctx, &api.CreateDeviceKeysRequest{DeviceKeys: &api.DeviceKeys{DevEui: devEUI, NwkKey: nwk, AppKey: app}})
	w.must(err)
}

// session injects the device session as ChirpStack's tests do
// (device::partial_update) through the public Activate: DevAddr 01020304,
// the keys, f_cnt_up as the device's next expected FCnt, n_f_cnt_down and
// a_f_cnt_down.
func (w *world) session(nwkKeys, appSKey string, fCntUp, nFCntDown, aFCntDown uint32) {
	w.t.Helper()
	if appSKey == "" {
		appSKey = "00000000000000000000000000000000" // upstream: app_s_key None
	}
	_, err := w.devs.Activate(w.ctx, &api.ActivateDeviceRequest{DeviceActivation: &api.DeviceActivation{
		DevEui: devEUI, DevAddr: testAddr, AppSKey: appSKey, NwkSEncKey: nwkKeys, SNwkSIntKey: nwkKeys, FNwkSIntKey: nwkKeys,
		FCntUp: fCntUp, NFCntDown: nFCntDown, AFCntDown: aFCntDown,
	}})
	w.must(err)
}

// reset forgets what the previous scenario sent and received.
func (w *world) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.downs, w.events, w.answered = nil, nil, map[string]int{}
}

// uplink publishes one UplinkFrame as gateway gwID would (protobuf on
// eu868/gateway/<id>/event/up; DR from the LoRa modulation as
// set_uplink_modulation builds it) and waits until the server is done with
// it: a downlink command came, or it said it sends none (Unanswered).
func (w *world) uplink(gwID, phyHex string, freq uint32, sf uint32) {
	w.t.Helper()
	w.uplinkRx(gwID, phyHex, freq, sf, nil)
}

// uplinkRx is uplink with the reception changed by rx (gateway time …).
func (w *world) uplinkRx(gwID, phyHex string, freq uint32, sf uint32, rx func(*gw.UplinkRxInfo)) {
	w.t.Helper()
	phy, err := hex.DecodeString(phyHex)
	w.must(err)
	uf := &gw.UplinkFrame{
		PhyPayload: phy,
		TxInfo: &gw.UplinkTxInfo{Frequency: freq, Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
			Bandwidth: 125000, SpreadingFactor: sf, CodeRate: gw.CodeRate_CR_4_5, PolarizationInversion: true}}}},
		RxInfo: &gw.UplinkRxInfo{GatewayId: gwID, Location: &common.Location{}, CrcStatus: gw.CRCStatus_CRC_OK},
	}
	if rx != nil {
		rx(uf.RxInfo)
	}
	b, err := proto.Marshal(uf)
	w.must(err)
	if tok := w.mqtt.Publish("eu868/gateway/"+gwID+"/event/up", 0, false, b); tok.Wait() && tok.Error() != nil {
		w.t.Fatal(tok.Error())
	}
	w.await("the server's answer to the uplink (a downlink or none)", func() bool {
		return len(w.downs) > 0 || w.answered[gwID] > 0
	})
}

// await polls cond (under w.mu) until it holds.
func (w *world) await(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet is upstream's "sleep 100 ms, then look" for what must not come:
// events from one publisher arrive in order, and a downlink closes the
// flow, so this is a margin for events published after the answer.
func (w *world) quiet() { time.Sleep(100 * time.Millisecond) }

// eventsOf returns the decoded integration events of one type so far.
func eventsOf[T proto.Message](w *world, typ string, mk func() T) []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []T
	for _, e := range w.events {
		if e.typ != typ {
			continue
		}
		m := mk()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(e.payload, m); err != nil {
			w.t.Errorf("%s event: %v", typ, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// check is one upstream assertion.
type check func(w *world)

// --- assertions (chirpstack/src/test/assert.rs) ---

// fCntUp: the device's next expected uplink FCnt (assert::f_cnt_up).
func fCntUp(n uint32) check {
	return func(w *world) {
		w.t.Helper()
		if got := w.activation().GetFCntUp(); got != n {
			w.t.Errorf("f_cnt_up = %d, want %d", got, n)
		}
	}
}

// nFCntDown: assert::n_f_cnt_down.
func nFCntDown(n uint32) check {
	return func(w *world) {
		w.t.Helper()
		if got := w.activation().GetNFCntDown(); got != n {
			w.t.Errorf("n_f_cnt_down = %d, want %d", got, n)
		}
	}
}

// aFCntDown: the session's a_f_cnt_down (part of assert::device_session).
func aFCntDown(n uint32) check {
	return func(w *world) {
		w.t.Helper()
		if got := w.activation().GetAFCntDown(); got != n {
			w.t.Errorf("a_f_cnt_down = %d, want %d", got, n)
		}
	}
}

func (w *world) activation() *api.DeviceActivation {
	w.t.Helper()
	r, err := w.devs.GetActivation(w.ctx, &api.GetDeviceActivationRequest{DevEui: devEUI})
	w.must(err)
	if r.DeviceActivation == nil {
		w.t.Fatal("the device has no session")
	}
	return r.DeviceActivation
}

// sessionKeys checks the session's DevAddr and keys (the part of
// assert::device_session the API shows).
func sessionKeys(addr, fNwk, sNwk, nwkEnc, appS string) check {
	return func(w *world) {
		w.t.Helper()
		a := w.activation()
		got := []string{a.DevAddr, a.FNwkSIntKey, a.SNwkSIntKey, a.NwkSEncKey, a.AppSKey}
		want := []string{addr, fNwk, sNwk, nwkEnc, appS}
		for i, n := range []string{"dev_addr", "f_nwk_s_int_key", "s_nwk_s_int_key", "nwk_s_enc_key", "app_s_key"} {
			if got[i] != want[i] {
				w.t.Errorf("session %s = %s, want %s", n, got[i], want[i])
			}
		}
	}
}

// noSession: assert::no_device_session.
func noSession() check {
	return func(w *world) {
		w.t.Helper()
		r, err := w.devs.GetActivation(w.ctx, &api.GetDeviceActivationRequest{DevEui: devEUI})
		w.must(err)
		if r.DeviceActivation != nil {
			w.t.Errorf("device has a session: %v", r.DeviceActivation)
		}
	}
}

// enabledClass: assert::enabled_class.
func enabledClass(c common.DeviceClass) check {
	return func(w *world) {
		w.t.Helper()
		r, err := w.devs.Get(w.ctx, &api.GetDeviceRequest{DevEui: devEUI})
		w.must(err)
		if r.ClassEnabled != c {
			w.t.Errorf("enabled class %v, want %v", r.ClassEnabled, c)
		}
	}
}

// deviceJoinEUI: assert::device_join_eui.
func deviceJoinEUI(eui string) check {
	return func(w *world) {
		w.t.Helper()
		r, err := w.devs.Get(w.ctx, &api.GetDeviceRequest{DevEui: devEUI})
		w.must(err)
		if r.Device.JoinEui != eui {
			w.t.Errorf("join_eui %q, want %q", r.Device.JoinEui, eui)
		}
	}
}

// queueItems: assert::device_queue_items, by FPort, payload and
// confirmed/pending state (ids and counters upstream fills in are left out).
type qi struct {
	fPort     uint32
	data      string // hex
	confirmed bool
	pending   bool
	fCntDown  uint32
}

func queueItems(want ...qi) check {
	return func(w *world) {
		w.t.Helper()
		r, err := w.devs.GetQueue(w.ctx, &api.GetDeviceQueueItemsRequest{DevEui: devEUI})
		w.must(err)
		var got []qi
		for _, it := range r.Result {
			got = append(got, qi{fPort: it.FPort, data: hex.EncodeToString(it.Data), confirmed: it.Confirmed, pending: it.IsPending, fCntDown: it.FCntDown})
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			w.t.Errorf("queue %+v, want %+v", got, want)
		}
	}
}

// logs: assert::integration_log — exactly these descriptions, in order.
func logs(descs ...string) check {
	return func(w *world) {
		w.t.Helper()
		w.quiet()
		var got []string
		for _, e := range eventsOf(w, "log", func() *integration.LogEvent { return &integration.LogEvent{} }) {
			got = append(got, e.Description)
		}
		if fmt.Sprint(got) != fmt.Sprint(descs) {
			w.t.Errorf("log events %q, want %q", got, descs)
		}
	}
}

// noUplinkEvent: assert::no_uplink_event.
func noUplinkEvent() check {
	return func(w *world) {
		w.t.Helper()
		w.quiet()
		if ups := eventsOf(w, "up", func() *integration.UplinkEvent { return &integration.UplinkEvent{} }); len(ups) != 0 {
			w.t.Errorf("%d up events, want none: %v", len(ups), ups[0])
		}
	}
}

// upEvent: assert::uplink_event, on the fields upstream sets (DevAddr,
// FCnt, FPort, DR, data, confirmed, ADR).
func upEvent(fCnt, fPort, dr uint32, dataHex string, confirmed, adr bool) check {
	return func(w *world) {
		w.t.Helper()
		w.await("an up event", func() bool {
			for _, e := range w.events {
				if e.typ == "up" {
					return true
				}
			}
			return false
		})
		ups := eventsOf(w, "up", func() *integration.UplinkEvent { return &integration.UplinkEvent{} })
		if len(ups) != 1 {
			w.t.Fatalf("%d up events, want 1", len(ups))
		}
		u := ups[0]
		if u.DevAddr != testAddr || u.FCnt != fCnt || u.FPort != fPort || u.Dr != dr || hex.EncodeToString(u.Data) != dataHex ||
			u.Confirmed != confirmed || u.Adr != adr || u.DeviceInfo.GetDevEui() != devEUI {
			w.t.Errorf("up event dev_addr %s f_cnt %d f_port %d dr %d data %x confirmed %v adr %v; want %s %d %d %d %s %v %v",
				u.DevAddr, u.FCnt, u.FPort, u.Dr, u.Data, u.Confirmed, u.Adr, testAddr, fCnt, fPort, dr, dataHex, confirmed, adr)
		}
	}
}

// noDownlink: assert::no_downlink_frame.
func noDownlink() check {
	return func(w *world) {
		w.t.Helper()
		w.quiet()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.downs) != 0 {
			w.t.Errorf("%d downlink frames, want none: %x", len(w.downs), w.downs[0].Items[0].PhyPayload)
		}
	}
}

// txItem is one expected DownlinkFrameItem: frequency, power, spreading
// factor (BW 125 kHz, CR 4/5, polarization inverted) and delay.
type txItem struct {
	freq  uint32
	power int32
	sf    uint32
	delay time.Duration
}

// rx1rx2 are the items of a class-A answer to an uplink on 868.1 MHz DR0
// with RX1 delay d (s): RX1 on the uplink channel, RX2 869.525 MHz DR0,
// EU868 EIRP 16 / 29 dBm (downlink_tx_power -1).
func rx1rx2(d time.Duration) []txItem {
	return []txItem{{868100000, 16, 12, d}, {869525000, 29, 12, d + time.Second}}
}

// downlink: assert::downlink_frame — exactly one frame through gateway
// gwID, these PHYPayload bytes in every item, these items.
func downlink(gwID, phyHex string, items []txItem) check {
	var its []dlItem
	for _, tx := range items {
		its = append(its, dlItem{phyHex, tx})
	}
	return downlinkFrame(gwID, its...)
}

// dlItem is one expected item: its frame and transmission.
type dlItem struct {
	phy string
	tx  txItem
}

// downlinkFrame: assert::downlink_frame with a frame per item.
func downlinkFrame(gwID string, items ...dlItem) check {
	return func(w *world) {
		w.t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.downs) != 1 {
			w.t.Fatalf("%d downlink frames, want 1", len(w.downs))
		}
		df := w.downs[0]
		if df.DownlinkId == 0 || df.GatewayId != gwID || len(df.Items) != len(items) {
			w.t.Fatalf("downlink id %d gateway %s, %d items; want id ≠ 0, %s, %d items", df.DownlinkId, df.GatewayId, len(df.Items), gwID, len(items))
		}
		for i, it := range df.Items {
			tx := it.TxInfo
			lora := tx.GetModulation().GetLora()
			got := txItem{tx.Frequency, tx.Power, lora.GetSpreadingFactor(), tx.GetTiming().GetDelay().GetDelay().AsDuration()}
			if got != items[i].tx || lora.GetBandwidth() != 125000 || lora.GetCodeRate() != gw.CodeRate_CR_4_5 || !lora.GetPolarizationInversion() {
				w.t.Errorf("item %d tx %+v (bw %d cr %v pol %v), want %+v", i, got, lora.GetBandwidth(), lora.GetCodeRate(), lora.GetPolarizationInversion(), items[i].tx)
			}
			if h := hex.EncodeToString(it.PhyPayload); h != items[i].phy {
				w.t.Errorf("item %d phy_payload %s, want %s", i, h, items[i].phy)
			}
		}
	}
}

// scenario is one upstream Test entry.
type scenario struct {
	name   string // upstream name, verbatim
	before func(w *world)
	gw     string // receiving gateway (default gwA)
	phy    string // the uplink PHYPayload, hex
	freq   uint32 // default 868100000
	sf     uint32 // default 12 (DR0)
	want   []check
	after  func(w *world)
}

// run runs the scenarios of one upstream function in order, each as a
// subtest named as upstream names it.
func (w *world) run(scenarios []scenario) {
	for _, sc := range scenarios {
		w.t.(*testing.T).Run(sc.name, func(t *testing.T) {
			parent := w.t
			w.t = t
			defer func() { w.t = parent }()
			w.reset()
			if sc.before != nil {
				sc.before(w)
			}
			gwID, freq, sf := sc.gw, sc.freq, sc.sf
			if gwID == "" {
				gwID = gwA
			}
			if freq == 0 {
				freq = 868100000
			}
			if sf == 0 {
				sf = 12
			}
			w.uplink(gwID, sc.phy, freq, sf)
			for _, c := range sc.want {
				c(w)
			}
			if sc.after != nil {
				sc.after(w)
			}
		})
	}
}

// enqueue adds a plaintext queue item (DeviceService.Enqueue).
func (w *world) enqueue(fPort uint32, dataHex string, confirmed bool) {
	w.t.Helper()
	data, err := hex.DecodeString(dataHex)
	w.must(err)
	_, err = w.devs.Enqueue(w.ctx, &api.EnqueueDeviceQueueItemRequest{QueueItem: &api.DeviceQueueItem{
		DevEui: devEUI, FPort: fPort, Data: data, Confirmed: confirmed}})
	w.must(err)
}

// txAck acknowledges the last downlink frame as its gateway would
// (eu868/gateway/<id>/event/ack): the RX1 item sent, the RX2 item ignored.
func (w *world) txAck() {
	w.t.Helper()
	w.mu.Lock()
	if len(w.downs) == 0 {
		w.mu.Unlock()
		w.t.Fatal("no downlink to acknowledge")
	}
	df := w.downs[len(w.downs)-1]
	w.mu.Unlock()
	ack := &gw.DownlinkTxAck{GatewayId: df.GatewayId, DownlinkId: df.DownlinkId,
		Items: []*gw.DownlinkTxAckItem{{Status: gw.TxAckStatus_OK}, {Status: gw.TxAckStatus_IGNORED}}}
	b, err := proto.Marshal(ack)
	w.must(err)
	if tok := w.mqtt.Publish("eu868/gateway/"+df.GatewayId+"/event/ack", 0, false, b); tok.Wait() && tok.Error() != nil {
		w.t.Fatal(tok.Error())
	}
}

// ackEvent: assert::ack_event — exactly one, acknowledged, for the queue
// item sent with FCnt fCntDown.
func ackEvent(fCntDown uint32) check {
	return func(w *world) {
		w.t.Helper()
		w.await("an ack event", func() bool {
			for _, e := range w.events {
				if e.typ == "ack" {
					return true
				}
			}
			return false
		})
		acks := eventsOf(w, "ack", func() *integration.AckEvent { return &integration.AckEvent{} })
		if len(acks) != 1 || !acks[0].Acknowledged || acks[0].FCntDown != fCntDown || acks[0].QueueItemId == "" {
			w.t.Errorf("ack events %v, want one acknowledged with f_cnt_down %d", acks, fCntDown)
		}
	}
}

// logContext checks the code and one context entry of the only log event
// (ChirpStack's source; upstream's test compares descriptions only).
func logContext(code integration.LogCode, key, value string) check {
	return func(w *world) {
		w.t.Helper()
		ls := eventsOf(w, "log", func() *integration.LogEvent { return &integration.LogEvent{} })
		if len(ls) != 1 || ls[0].Code != code || ls[0].Context[key] != value {
			w.t.Errorf("log events %v, want one %v with %s=%s", ls, code, key, value)
		}
	}
}

// downlinkPHYs: assert::downlink_phy_payloads — exactly one frame, one
// item per expected frame, in order (transmission parameters not compared).
func downlinkPHYs(phys ...string) check {
	return func(w *world) {
		w.t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.downs) != 1 {
			w.t.Fatalf("%d downlink frames, want 1", len(w.downs))
		}
		var got []string
		for _, it := range w.downs[0].Items {
			got = append(got, hex.EncodeToString(it.PhyPayload))
		}
		if fmt.Sprint(got) != fmt.Sprint(phys) {
			w.t.Errorf("downlink items %v, want %v", got, phys)
		}
	}
}

// statusEvent: assert::status_event — exactly one.
func statusEvent(margin int32, battery float32, external, unavailable bool) check {
	return func(w *world) {
		w.t.Helper()
		w.await("a status event", func() bool {
			for _, e := range w.events {
				if e.typ == "status" {
					return true
				}
			}
			return false
		})
		st := eventsOf(w, "status", func() *integration.StatusEvent { return &integration.StatusEvent{} })
		if len(st) != 1 || st[0].Margin != margin || st[0].BatteryLevel != battery || st[0].ExternalPowerSource != external || st[0].BatteryLevelUnavailable != unavailable {
			w.t.Errorf("status events %v, want one with margin %d battery %v external %v unavailable %v", st, margin, battery, external, unavailable)
		}
	}
}

// flushQueue empties the device queue (run_test flushes it before each
// scenario).
func (w *world) flushQueue() {
	w.t.Helper()
	_, err := w.devs.FlushQueue(w.ctx, &api.FlushDeviceQueueRequest{DevEui: devEUI})
	w.must(err)
}

// profile changes the device profile (device_profile::update).
func (w *world) profile(f func(dp *api.DeviceProfile)) {
	w.t.Helper()
	r, err := w.dps.Get(w.ctx, &api.GetDeviceProfileRequest{Id: w.dpID})
	w.must(err)
	f(r.DeviceProfile)
	_, err = w.dps.Update(w.ctx, &api.UpdateDeviceProfileRequest{DeviceProfile: r.DeviceProfile})
	w.must(err)
}
