package chirpstack_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gRPC answers as ChirpStack v4.19 gives them (chirpstack/src/api/error.rs,
// storage/error.rs, storage/device.rs): a duplicate DevEUI is the
// database's unique violation, unmapped → Internal; a tenant's device quota
// is Error::NotAllowed → InvalidArgument; malformed EUI hex is an lrwn
// error → Internal; a device may be created without a name (create does not
// validate; update does).
func TestAPICodesAsChirpStack419(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	check := func(what string, err error, code codes.Code, msg string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
			t.Errorf("%s: %v, want %v %q", what, err, code, msg)
		}
	}
	_, err := w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: &api.Device{DevEui: devEUI, Name: "again", ApplicationId: w.appID, DeviceProfileId: w.dpID}})
	check("duplicate device", err, codes.Internal, `duplicate key value violates unique constraint "device_pkey"`)
	_, err = w.gws.Create(w.ctx, &api.CreateGatewayRequest{Gateway: &api.Gateway{GatewayId: gwA, Name: "again", TenantId: w.tenantID, StatsInterval: 30}})
	check("duplicate gateway", err, codes.Internal, `duplicate key value violates unique constraint "gateway_pkey"`)
	_, err = w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: &api.Device{DevEui: "02020304050607zz", Name: "x", ApplicationId: w.appID, DeviceProfileId: w.dpID}})
	check("malformed DevEUI", err, codes.Internal, "")
	_, err = w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: &api.Device{DevEui: "0303030405060708", ApplicationId: w.appID, DeviceProfileId: w.dpID}})
	check("device without a name", err, codes.OK, "")
	_, err = w.devs.Update(w.ctx, &api.UpdateDeviceRequest{Device: &api.Device{DevEui: "0303030405060708", ApplicationId: w.appID, DeviceProfileId: w.dpID}})
	check("update without a name", err, codes.InvalidArgument, "name is not set")

	tr, err := w.tenant.Create(w.ctx, &api.CreateTenantRequest{Tenant: &api.Tenant{Name: "small", CanHaveGateways: true, MaxDeviceCount: 1}})
	w.must(err)
	ar, err := w.apps.Create(w.ctx, &api.CreateApplicationRequest{Application: &api.Application{Name: "a", TenantId: tr.Id}})
	w.must(err)
	dr, err := w.dps.Create(w.ctx, &api.CreateDeviceProfileRequest{DeviceProfile: &api.DeviceProfile{Name: "dp", TenantId: tr.Id, Region: common.Region_EU868, MacVersion: common.MacVersion_LORAWAN_1_0_4, RegParamsRevision: common.RegParamsRevision_RP002_1_0_3}})
	w.must(err)
	for i, eui := range []string{"0404030405060708", "0505030405060708"} {
		_, err = w.devs.Create(w.ctx, &api.CreateDeviceRequest{Device: &api.Device{DevEui: eui, Name: "d", ApplicationId: ar.Id, DeviceProfileId: dr.Id}})
		if i == 0 {
			w.must(err)
		}
	}
	check("over the tenant's quota", err, codes.InvalidArgument, "Max number of devices exceeded for tenant")
}

// The API's device_status.battery_level is −1 when the device reported no
// level (external power: battery 0) and the stored percentage, rounded to
// two decimals, otherwise (api/device.rs get).
func TestDeviceStatusBatteryLevel(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, nil)
	level := func() float32 {
		t.Helper()
		r, err := w.devs.Get(w.ctx, &api.GetDeviceRequest{DevEui: devEUI})
		w.must(err)
		return r.DeviceStatus.GetBatteryLevel()
	}
	w.run([]scenario{
		{name: "battery 128", before: fresh(0), phy: uDSAns, want: []check{func(w *world) {
			w.await("the status", func() bool { return len(w.events) > 0 })
			if got := level(); got != 50.39 {
				t.Errorf("battery_level %v, want 50.39", got)
			}
		}}},
		// DevStatusAns battery 0 (external power), margin 10, FCnt 10; 1.0 MIC with keys 01..10, computed as upstream's 4004030201030a0006800a1d8d369b is.
		{name: "external power", before: fresh(0), phy: "4004030201030a0006000a65aa14d0", want: []check{func(w *world) {
			w.await("the status", func() bool { return len(w.events) > 0 })
			if got := level(); got != -1 {
				t.Errorf("battery_level %v, want −1", got)
			}
		}}},
	})
}

// Events carry what ChirpStack adds (uplink/mod.rs update_gateway_metadata,
// uplink/data.rs set_device_info): a reception without a location gets the
// gateway's; the device's tags are the application's, overlaid by the
// profile's, overlaid by the device's.
func TestEventMetadata(t *testing.T) {
	w := newWorld(t)
	w.setup(common.MacVersion_LORAWAN_1_0_4, common.RegParamsRevision_RP002_1_0_3, &api.Device{Tags: map[string]string{"site": "device", "d": "1"}})
	g, err := w.gws.Get(w.ctx, &api.GetGatewayRequest{GatewayId: gwA})
	w.must(err)
	g.Gateway.Location = &common.Location{Latitude: 48.1, Longitude: 11.5, Altitude: 520}
	_, err = w.gws.Update(w.ctx, &api.UpdateGatewayRequest{Gateway: g.Gateway})
	w.must(err)
	a, err := w.apps.Get(w.ctx, &api.GetApplicationRequest{Id: w.appID})
	w.must(err)
	a.Application.Tags = map[string]string{"site": "app", "a": "1"}
	_, err = w.apps.Update(w.ctx, &api.UpdateApplicationRequest{Application: a.Application})
	w.must(err)
	w.profile(func(dp *api.DeviceProfile) { dp.Tags = map[string]string{"site": "profile", "p": "1"} })
	fresh(0)(w)
	w.uplinkRx(gwA, u10p, 868100000, 12, func(rx *gw.UplinkRxInfo) { rx.Location = nil })
	w.await("an up event", func() bool { return len(w.events) > 0 })
	ups := eventsOf(w, "up", func() *integration.UplinkEvent { return &integration.UplinkEvent{} })
	if len(ups) != 1 {
		t.Fatalf("%d up events", len(ups))
	}
	loc := ups[0].RxInfo[0].GetLocation()
	if loc.GetLatitude() != 48.1 || loc.GetLongitude() != 11.5 || loc.GetAltitude() != 520 {
		t.Errorf("rx_info location %v, want the gateway's", loc)
	}
	want := map[string]string{"site": "device", "a": "1", "p": "1", "d": "1"}
	if got := ups[0].DeviceInfo.GetTags(); !maps.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
}
