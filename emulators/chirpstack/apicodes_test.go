package chirpstack_test

import (
	"strings"
	"testing"

	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
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
