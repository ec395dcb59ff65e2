package chirpstack_test

import (
	"testing"
	"time"

	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
)

// chirpstack/src/test/class_a_test.rs (v4.19.0), functions 1–8: data
// uplinks of a device whose session upstream injects (DevAddr 01020304,
// FNwkSIntKey = SNwkSIntKey = NwkSEncKey = 01..10, n_f_cnt_down 5), here
// through Activate. The frames are upstream's literal bytes (MICs as
// written there).
const (
	u7    = "400403020100070001305e1aef"         // unconfirmed, FCnt 7, FPort 1, 1.0 MIC
	u0    = "400403020100000001832453a3"         // FCnt 0
	u8bad = "40040302010008000101020304"         // FCnt 8, MIC 01020304 (wrong)
	u10e  = "4004030201000a0001a0c3a0c3"         // FCnt 10, 1.1 MIC for DR0/ch0 only
	u10p  = "4004030201000a00010102030468932379" // FCnt 10, FPort 1, FRMPayload 01020304
	u10pA = "4004030201200a00010102030484fae40a" // + FCtrl.ACK
	u10n  = "4004030201000a0001a0c34408"         // FCnt 10, FPort 1, no FRMPayload
	c10p  = "8004030201000a000101020304455ac85f" // confirmed, FCnt 10, FRMPayload 01020304
	c10n  = "8004030201000a0001d234345e"         // confirmed, no FRMPayload
	v11p  = "4004030201000a00010102030468936893" // 1.1 MIC (ConfFCnt 0)
	v11pA = "4004030201200a0001010203044c2e84fa" // 1.1 MIC with ACK, ConfFCnt 4
	v7    = "400403020100070001305e305e"         // FCnt 7, 1.1 MIC (keys equal, DR0/ch0: B1 = B0)
	plain = "d7f17034"                           // 01020304 decrypted with AppSKey 10..01, FCnt 10
	ackDL = "6004030201a00500a1b3da68"           // ACK: unconfirmed down, FCtrl ADR|ACK, FCnt 5
)

// act re-injects upstream's session with the device's next expected FCnt.
func act(fCntUp uint32, appS string) func(w *world) {
	return func(w *world) { w.session(keys116, appS, fCntUp, 5, 0) }
}

// pendingItem reaches, through public seams, the state upstream injects
// for the "+ ACK" scenarios (a queue item sent with FCnt 4 and pending):
// a session at FCnt-down 4, a queued confirmed item, an uplink (FCnt 7,
// frame up7) answered with it, the gateway's TX ack; then the session is
// as upstream's (f_cnt_up 8, n_f_cnt_down 5; 1.1: conf_f_cnt 4). Upstream's
// item is unconfirmed: an unconfirmed item is never pending after a TX ack.
func pendingItem(up7 string, mac11 bool) func(w *world) {
	return func(w *world) {
		n, a := uint32(4), uint32(0)
		if mac11 {
			n, a = 5, 4
		}
		w.session(keys116, appKey11, 7, n, a)
		w.enqueue(1, "", true)
		w.uplink(gwA, up7, 868100000, 12)
		w.txAck()
		queue := func() bool {
			r, err := w.devs.GetQueue(w.ctx, &api.GetDeviceQueueItemsRequest{DevEui: devEUI})
			return err == nil && len(r.Result) == 1 && r.Result[0].IsPending
		}
		deadline := time.Now().Add(5 * time.Second)
		for !queue() {
			if time.Now().After(deadline) {
				w.t.Fatal("the confirmed item did not become pending after the TX ack")
			}
			time.Sleep(time.Millisecond)
		}
		w.reset()
	}
}

func setDeviceFlags(f func(d *api.Device)) func(w *world) {
	return func(w *world) {
		r, err := w.devs.Get(w.ctx, &api.GetDeviceRequest{DevEui: devEUI})
		w.must(err)
		f(r.Device)
		_, err = w.devs.Update(w.ctx, &api.UpdateDeviceRequest{Device: r.Device})
		w.must(err)
	}
}

func then(fs ...func(w *world)) func(w *world) {
	return func(w *world) {
		for _, f := range fs {
			f(w)
		}
	}
}

// class_a_test.rs test_gateway_filtering.
func TestGoldenClassAGatewayFiltering(t *testing.T) {
	w := newWorld(t)
	ta, err := w.tenant.Create(w.ctx, &api.CreateTenantRequest{Tenant: &api.Tenant{Name: "tenant-a", CanHaveGateways: true, PrivateGatewaysUp: true}})
	w.must(err)
	tb, err := w.tenant.Create(w.ctx, &api.CreateTenantRequest{Tenant: &api.Tenant{Name: "tenant-b", CanHaveGateways: true, PrivateGatewaysUp: true}})
	w.must(err)
	w.addGateway(gwA, ta.Id)
	w.addGateway("0202030405060708", tb.Id)
	ar, err := w.apps.Create(w.ctx, &api.CreateApplicationRequest{Application: &api.Application{Name: "app", TenantId: ta.Id}})
	w.must(err)
	dr, err := w.dps.Create(w.ctx, &api.CreateDeviceProfileRequest{DeviceProfile: &api.DeviceProfile{
		Name: "dp", TenantId: ta.Id, Region: common.Region_EU868, MacVersion: common.MacVersion_LORAWAN_1_0_2,
		RegParamsRevision: common.RegParamsRevision_A, SupportsOtaa: true}})
	w.must(err)
	_, err = w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: &api.Device{DevEui: devEUI, Name: "device", ApplicationId: ar.Id, DeviceProfileId: dr.Id}})
	w.must(err)
	w.run([]scenario{
		{name: "private gateway of same tenant", before: act(7, ""), phy: u7, want: []check{fCntUp(8)}},
		{name: "private gateway other tenant", before: act(7, ""), gw: "0202030405060708", phy: u7, want: []check{fCntUp(7)}},
	})
}

// class_a_test.rs test_lorawan_10_errors.
func TestGoldenClassALoRaWAN10Errors(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_2, common.RegParamsRevision_A, nil)
	w.run([]scenario{
		{name: "invalid frame-counter (did not increment)", before: act(8, ""), phy: u7, want: []check{
			logs("Uplink was flagged as re-transmission / frame-counter did not increment"), noUplinkEvent(), fCntUp(8),
			logContext(integration.LogCode_UPLINK_F_CNT_RETRANSMISSION, "f_cnt_up", "7")}},
		{name: "invalid frame-counter (reset)", before: act(8, ""), phy: u0, want: []check{
			logs("Frame-counter reset or rollover detected"), noUplinkEvent(), fCntUp(8),
			logContext(integration.LogCode_UPLINK_F_CNT_RESET, "f_cnt_up", "0")}},
		{name: "invalid mic", before: act(8, ""), phy: u8bad, want: []check{noUplinkEvent(), fCntUp(8)}},
	})
}

// class_a_test.rs test_lorawan_11_errors: a 1.1 MIC covers the uplink's
// data rate and channel (LoRaWAN 1.1 §4.4 B1). Upstream's session is 1.0.2
// under a 1.1 profile (it then checks a 1.0 MIC); Activate takes the MAC
// version from the profile, so this checks the 1.1 MIC the scenario
// names: a0c3a0c3 is right for DR0 on 868.1 MHz only.
func TestGoldenClassALoRaWAN11Errors(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_1_0, common.RegParamsRevision_RP002_1_0_3, nil)
	w.run([]scenario{
		{name: "invalid frequency (MIC)", before: act(8, ""), phy: u10e, freq: 868300000, want: []check{noUplinkEvent(), fCntUp(8)}},
		{name: "invalid frequency (MIC) #2 (data rate)", before: act(8, ""), phy: u10e, sf: 9, want: []check{noUplinkEvent(), fCntUp(8)}},
		// The control: the same frame on DR0 / 868.1 MHz is accepted.
		{name: "control: valid 1.1 MIC on DR0 868.1 MHz", before: act(8, ""), phy: u10e, want: []check{upEvent(10, 1, 0, "", false, false), fCntUp(11)}},
	})
}

// class_a_test.rs test_lorawan_10_skip_f_cnt.
func TestGoldenClassALoRaWAN10SkipFCnt(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_2, common.RegParamsRevision_A, &api.Device{SkipFcntCheck: true})
	w.run([]scenario{
		{name: "frame-counter is invalid but not 0", before: act(8, ""), phy: u7, want: []check{
			upEvent(7, 1, 0, "", false, false), fCntUp(8), nFCntDown(5)}},
		{name: "frame-counter is invalid and 0", before: act(8, ""), phy: u0, want: []check{
			upEvent(0, 1, 0, "", false, false), fCntUp(1), nFCntDown(5)}},
	})
}

// class_a_test.rs test_lorawan_10_device_disabled.
func TestGoldenClassALoRaWAN10DeviceDisabled(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_2, common.RegParamsRevision_A, &api.Device{IsDisabled: true})
	w.run([]scenario{
		{name: "uplink ignored", before: act(7, ""), phy: u7, want: []check{noUplinkEvent(), fCntUp(7), nFCntDown(5), logs()}},
	})
}

// class_a_test.rs test_lorawan_10_uplink (LoRaWAN 1.0.4, RP002-1.0.3).
func TestGoldenClassALoRaWAN10Uplink(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	ack := downlink(gwA, ackDL, rx1rx2(time.Second))
	w.run([]scenario{
		{name: "unconfirmed uplink with payload", before: act(8, appKey11), phy: u10p, want: []check{
			fCntUp(11), nFCntDown(5), upEvent(10, 1, 0, plain, false, false)}},
		{name: "unconfirmed uplink with payload + ACK", before: pendingItem(u7, false), phy: u10pA, want: []check{
			fCntUp(11), nFCntDown(5), ackEvent(4), upEvent(10, 1, 0, plain, false, false), queueItems()}},
		{name: "unconfirmed uplink without payload (just FPort)", before: act(8, appKey11), phy: u10n, want: []check{
			fCntUp(11), nFCntDown(5), upEvent(10, 1, 0, "", false, false)}},
		{name: "confirmed uplink with payload", before: act(8, appKey11), phy: c10p, want: []check{
			fCntUp(11), nFCntDown(5), upEvent(10, 1, 0, plain, true, false), ack}},
		{name: "confirmed uplink without payload", before: act(8, appKey11), phy: c10n, want: []check{
			fCntUp(11), nFCntDown(5), upEvent(10, 1, 0, "", true, false), ack}},
		// scheduler_run_after is not in the API; the counters are.
		{name: "uplink of class-c device updates scheduler_run_after", before: act(8, appKey11), phy: u10p, want: []check{
			fCntUp(11), nFCntDown(5)}},
	})
}

// class_a_test.rs test_lorawan_11_uplink (LoRaWAN 1.1.0, RP002-1.0.3).
func TestGoldenClassALoRaWAN11Uplink(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_1_0, common.RegParamsRevision_RP002_1_0_3, nil)
	w.run([]scenario{
		{name: "unconfirmed uplink with payload", before: act(8, appKey11), phy: v11p, want: []check{
			fCntUp(11), nFCntDown(5), upEvent(10, 1, 0, plain, false, false)}},
		{name: "unconfirmed uplink with payload + ACK", before: pendingItem(v7, true), phy: v11pA, want: []check{
			fCntUp(11), nFCntDown(5), ackEvent(4), upEvent(10, 1, 0, plain, false, false)}},
	})
}
