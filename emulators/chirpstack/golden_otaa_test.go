package chirpstack_test

import (
	"testing"
	"time"

	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
)

// chirpstack/src/test/otaa_test.rs (v4.19.0): 12 scenarios, each one
// JoinRequest (MHDR 00, JoinEUI 0102030405060708, DevEUI 0202030405060708,
// DevNonce 258, MIC with NwkKey 01..10) through gateway 0102030405060708 on
// 868.1 MHz DR0.

// jrHex is the JoinRequest upstream builds (jr_pl).
const jrHex = "000807060504030201080706050403020202018d6a68cd"

// The JoinAccepts upstream builds (ja_pl, ja_cflist_pl): JoinNonce 0, NetID
// 000000, DevAddr 01020304, RX1 delay 1.
const (
	ja10       = "20983be4bfa5b2bc0660d35189de8db892"                                 // 1.0.2, DLSettings 00, no CFList
	ja10CFList = "203ec472f09e47b6ff9a841cb737113a1e89e13078cf14b51bd6ff33cfe36e6086" // + CFList 867.1–867.9 MHz
	ja11       = "2038e0155504cbae90aef2e7f897a30e3d"                                 // 1.1, OptNeg, MIC with JSIntKey
)

// The session keys the tests assert (DS_10, DS_11).
const (
	nwkSKey10 = "802fa8293ed7d44f1353b7c92ba97dc8"
	appSKey10 = "05d3def03334170fda9bede4c625c875"
	fNwk11    = "62dec69e629bcdeb8fabcb13dd0901e7"
	sNwk11    = "0810acdc5c79a8d2e0a285b4bfa72149"
	nwkEnc11  = "97787365437ac29971d1869e95bdc0af"
	appS11    = "1b1ed73c90eafb82ba43c594fa316a4d"
)

// joinAnswer: the JoinAccept in RX1 (uplink channel, 16 dBm, 5 s) and RX2
// (869.525 MHz DR0, 29 dBm, 6 s): join_accept_delay1/2, not rx1_delay.
func joinAnswer(phy string) check { return downlink(gwA, phy, rx1rx2(5*time.Second)) }

// usedNonce replays upstream's device keys as created: DevNonce 258 used
// for JoinEUI 0102030405060708. The public API cannot write the DevNonce
// list, so an accepted join with DevNonce 258 makes it used (JoinNonce
// becomes 1; the scenario asserts only the log event).
func usedNonce(nwk, app string) func(w *world) {
	return func(w *world) {
		w.keys(nwk, app)
		w.uplink(gwA, jrHex, 868100000, 12)
		w.reset()
	}
}

func resetNonces(nwk, app string) func(w *world) {
	return func(w *world) { w.keys(nwk, app) }
}

// otaa_test.rs test_gateway_filtering: two tenants with private uplink
// gateways; the device's tenant owns gateway 0102030405060708.
func TestGoldenOTAAGatewayFiltering(t *testing.T) {
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
		{name: "private gateway of same tenant", before: resetNonces(nwkKey, ""), phy: jrHex,
			want: []check{fCntUp(0), sessionKeys(testAddr, nwkSKey10, nwkSKey10, nwkSKey10, appSKey10)}},
		{name: "private gateway other tenant", before: func(w *world) {
			w.keys(nwkKey, "")
			_, err := w.devs.Deactivate(w.ctx, &api.DeactivateDeviceRequest{DevEui: devEUI}) // upstream: device_session NULL
			w.must(err)
		}, gw: "0202030405060708", phy: jrHex, want: []check{noSession()}},
	})
}

// otaa_test.rs test_lorawan_10: LoRaWAN 1.0.2, RP revision A.
func TestGoldenOTAALoRaWAN10(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_2, common.RegParamsRevision_A, nil)
	setProfile := func(f func(dp *api.DeviceProfile)) func(w *world) {
		return func(w *world) {
			r, err := w.dps.Get(w.ctx, &api.GetDeviceProfileRequest{Id: w.dpID})
			w.must(err)
			f(r.DeviceProfile)
			_, err = w.dps.Update(w.ctx, &api.UpdateDeviceProfileRequest{DeviceProfile: r.DeviceProfile})
			w.must(err)
		}
	}
	setDevice := func(f func(d *api.Device)) func(w *world) {
		return func(w *world) {
			r, err := w.devs.Get(w.ctx, &api.GetDeviceRequest{DevEui: devEUI})
			w.must(err)
			f(r.Device)
			_, err = w.devs.Update(w.ctx, &api.UpdateDeviceRequest{Device: r.Device})
			w.must(err)
		}
	}
	w.run([]scenario{
		{name: "dev-nonce already used", before: usedNonce(nwkKey, ""), phy: jrHex,
			want: []check{logs("DevNonce has already been used"), noDownlink()}},
		{name: "join-request accepted", before: resetNonces(nwkKey, ""), phy: jrHex, want: []check{
			deviceJoinEUI(joinEUI),
			sessionKeys(testAddr, nwkSKey10, nwkSKey10, nwkSKey10, appSKey10), fCntUp(0), nFCntDown(0), aFCntDown(0),
			joinAnswer(ja10),
			enabledClass(common.DeviceClass_CLASS_A),
			queueItems(),
		}},
		{name: "join-request accepted + skip fcnt check", before: func(w *world) {
			w.keys(nwkKey, "")
			setDevice(func(d *api.Device) { d.SkipFcntCheck = true })(w)
		}, phy: jrHex, want: []check{
			sessionKeys(testAddr, nwkSKey10, nwkSKey10, nwkSKey10, appSKey10),
		}, after: setDevice(func(d *api.Device) { d.SkipFcntCheck = false })},
		// Upstream adds the five channels to the region for this scenario
		// (run_test extra_uplink_channels); here they come from a second
		// server configured with them, the region's configuration being
		// fixed at start. Checked in TestGoldenOTAALoRaWAN10CFList.
		{name: "join-request accepted + class-b supported", before: func(w *world) {
			w.keys(nwkKey, "")
			setProfile(func(dp *api.DeviceProfile) { dp.SupportsClassB = true })(w)
		}, phy: jrHex, want: []check{enabledClass(common.DeviceClass_CLASS_A)},
			after: setProfile(func(dp *api.DeviceProfile) { dp.SupportsClassB = false })},
		{name: "join-request accepted + class-c supported", before: func(w *world) {
			w.keys(nwkKey, "")
			setProfile(func(dp *api.DeviceProfile) { dp.SupportsClassC = true })(w)
		}, phy: jrHex, want: []check{enabledClass(common.DeviceClass_CLASS_C)},
			after: setProfile(func(dp *api.DeviceProfile) { dp.SupportsClassC = false })},
		{name: "device disabled", before: func(w *world) {
			w.keys(nwkKey, "")
			setDevice(func(d *api.Device) { d.IsDisabled = true })(w)
		}, phy: jrHex, want: []check{noDownlink()},
			after: setDevice(func(d *api.Device) { d.IsDisabled = false })},
	})
}

// otaa_test.rs test_lorawan_10, scenario "join-request accepted + cflist":
// the region has the five extra channels 867.1–867.9 MHz (DR0–5), so the
// JoinAccept carries them as a CFList.
func TestGoldenOTAALoRaWAN10CFList(t *testing.T) {
	w := newWorldWith(t, []uint32{867100000, 867300000, 867500000, 867700000, 867900000})
	w.setup(common.MacVersion_LORAWAN_1_0_2, common.RegParamsRevision_A, nil)
	w.run([]scenario{
		{name: "join-request accepted + cflist", before: resetNonces(nwkKey, ""), phy: jrHex, want: []check{
			sessionKeys(testAddr, nwkSKey10, nwkSKey10, nwkSKey10, appSKey10),
			joinAnswer(ja10CFList),
		}},
	})
}

// otaa_test.rs test_lorawan_11: LoRaWAN 1.1.0, RP002-1.0.3, AppKey 10..01.
func TestGoldenOTAALoRaWAN11(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_1_0, common.RegParamsRevision_RP002_1_0_3, nil)
	setProfile := func(classC bool) func(w *world) {
		return func(w *world) {
			r, err := w.dps.Get(w.ctx, &api.GetDeviceProfileRequest{Id: w.dpID})
			w.must(err)
			r.DeviceProfile.SupportsClassC = classC
			_, err = w.dps.Update(w.ctx, &api.UpdateDeviceProfileRequest{DeviceProfile: r.DeviceProfile})
			w.must(err)
		}
	}
	w.run([]scenario{
		{name: "dev-nonce already used", before: usedNonce(nwkKey, appKey11), phy: jrHex,
			want: []check{logs("DevNonce has already been used"), noDownlink()}},
		{name: "join-request accepted", before: resetNonces(nwkKey, appKey11), phy: jrHex, want: []check{
			sessionKeys(testAddr, fNwk11, sNwk11, nwkEnc11, appS11),
			joinAnswer(ja11),
			enabledClass(common.DeviceClass_CLASS_A),
			queueItems(),
		}},
		{name: "join-request accepted + class-c supported", before: func(w *world) {
			w.keys(nwkKey, appKey11)
			setProfile(true)(w)
		}, phy: jrHex, want: []check{enabledClass(common.DeviceClass_CLASS_A)}, after: setProfile(false)},
	})
}
