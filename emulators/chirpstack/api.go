package chirpstack

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// The gRPC services. Each embeds ChirpStack's Unimplemented server by value so
// every RPC not written here answers codes.Unimplemented. Validation mirrors
// chirpstack/src/api/*.rs and storage/*.rs: empty names are InvalidArgument
// "Validation error: name is not set", unknown ids NotFound, and — as
// ChirpStack v4.19 answers them (api/error.rs, storage/error.rs) — a
// duplicate DevEUI or gateway id Internal (the database's unique
// violation is not mapped), a tenant's device quota InvalidArgument,
// malformed EUI or key hex Internal (lrwn errors).

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func matches(search, name string) bool {
	return search == "" || strings.Contains(strings.ToLower(name), strings.ToLower(search))
}

// page applies ChirpStack's limit/offset to n sorted items and returns the
// [lo, hi) index range. limit 0 returns nothing but the total count, as upstream.
func page(n int, limit, offset uint32) (int, int) {
	lo := min(int(offset), n)
	hi := min(lo+int(limit), n)
	return lo, hi
}

// pager is what every List request carries.
type pager interface {
	GetLimit() uint32
	GetOffset() uint32
}

// listPage keeps the rows of table that keep accepts, sorts them by name and
// applies the request's limit/offset: the total count and the page.
func listPage[K comparable, R any](table map[K]R, req pager, name func(R) string, keep func(R) bool) (uint32, []R) {
	var rows []R
	for _, r := range table {
		if keep(r) {
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return name(rows[i]) < name(rows[j]) })
	lo, hi := page(len(rows), req.GetLimit(), req.GetOffset())
	return uint32(len(rows)), rows[lo:hi]
}

// lookup finds key in table, or answers ChirpStack's NotFound for kind.
func lookup[K comparable, R any](table map[K]R, kind string, key K) (R, error) {
	r, ok := table[key]
	if !ok {
		return r, notFound(kind, fmt.Sprint(key))
	}
	return r, nil
}

// find parses a request's id field (parseUUID or parseEUI) and looks it up in
// table; s.mu must be held.
func find[K comparable, R any](table map[K]R, kind string, parse func(field, s string) (K, error), field, s string) (K, R, error) {
	key, err := parse(field, s)
	if err != nil {
		var r R
		return key, r, err
	}
	r, err := lookup(table, kind, key)
	return key, r, err
}

var errNameNotSet = status.Error(codes.InvalidArgument, "Validation error: name is not set")

// ---- TenantService ----

type tenantService struct {
	api.UnimplementedTenantServiceServer
	s *Server
}

func (t *tenantService) Create(_ context.Context, req *api.CreateTenantRequest) (*api.CreateTenantResponse, error) {
	in := req.GetTenant()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "tenant is missing")
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row := clone(in)
	row.Id = newUUID()
	now := time.Now()
	s.tenants[row.Id] = &tenantRow{pb: row, created: now, updated: now}
	return &api.CreateTenantResponse{Id: row.Id}, nil
}

func (t *tenantService) Get(_ context.Context, req *api.GetTenantRequest) (*api.GetTenantResponse, error) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, row, err := find(s.tenants, "tenant", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	return &api.GetTenantResponse{Tenant: clone(row.pb), CreatedAt: ts(row.created), UpdatedAt: ts(row.updated)}, nil
}

func (t *tenantService) Update(_ context.Context, req *api.UpdateTenantRequest) (*emptypb.Empty, error) {
	in := req.GetTenant()
	id, err := parseUUID("tenant.id", in.GetId())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row, err := lookup(s.tenants, "tenant", id)
	if err != nil {
		return nil, err
	}
	row.pb = clone(in)
	row.pb.Id = id
	row.updated = time.Now()
	return &emptypb.Empty{}, nil
}

func (t *tenantService) Delete(_ context.Context, req *api.DeleteTenantRequest) (*emptypb.Empty, error) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _, err := find(s.tenants, "tenant", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	// ON DELETE CASCADE in ChirpStack's schema: applications (and their
	// devices), device profiles and gateways go with the tenant.
	for aid, a := range s.apps {
		if a.pb.TenantId == id {
			s.deleteApplicationLocked(aid)
		}
	}
	for pid, p := range s.profiles {
		if p.pb.TenantId == id {
			delete(s.profiles, pid)
		}
	}
	for gid, g := range s.gateways {
		if g.pb.TenantId == id {
			delete(s.gateways, gid)
		}
	}
	delete(s.tenants, id)
	return &emptypb.Empty{}, nil
}

func (t *tenantService) List(_ context.Context, req *api.ListTenantsRequest) (*api.ListTenantsResponse, error) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := func(r *tenantRow) string { return r.pb.Name }
	total, rows := listPage(s.tenants, req, name, func(r *tenantRow) bool {
		return matches(req.GetSearch(), r.pb.Name)
	})
	resp := &api.ListTenantsResponse{TotalCount: total}
	for _, r := range rows {
		resp.Result = append(resp.Result, &api.TenantListItem{
			Id: r.pb.Id, Name: r.pb.Name, CreatedAt: ts(r.created), UpdatedAt: ts(r.updated),
			CanHaveGateways: r.pb.CanHaveGateways, PrivateGatewaysUp: r.pb.PrivateGatewaysUp,
			PrivateGatewaysDown: r.pb.PrivateGatewaysDown, MaxGatewayCount: r.pb.MaxGatewayCount,
			MaxDeviceCount: r.pb.MaxDeviceCount,
		})
	}
	return resp, nil
}

// ---- ApplicationService ----

type applicationService struct {
	api.UnimplementedApplicationServiceServer
	s *Server
}

func (a *applicationService) Create(_ context.Context, req *api.CreateApplicationRequest) (*api.CreateApplicationResponse, error) {
	in := req.GetApplication()
	tid, err := parseUUID("application.tenant_id", in.GetTenantId())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := lookup(s.tenants, "tenant", tid); err != nil {
		return nil, err
	}
	row := clone(in)
	row.Id = newUUID()
	row.TenantId = tid
	now := time.Now()
	s.apps[row.Id] = &applicationRow{pb: row, created: now, updated: now}
	return &api.CreateApplicationResponse{Id: row.Id}, nil
}

func (a *applicationService) Get(_ context.Context, req *api.GetApplicationRequest) (*api.GetApplicationResponse, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, row, err := find(s.apps, "application", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	return &api.GetApplicationResponse{Application: clone(row.pb), CreatedAt: ts(row.created), UpdatedAt: ts(row.updated)}, nil
}

func (a *applicationService) Update(_ context.Context, req *api.UpdateApplicationRequest) (*emptypb.Empty, error) {
	in := req.GetApplication()
	id, err := parseUUID("application.id", in.GetId())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row, err := lookup(s.apps, "application", id)
	if err != nil {
		return nil, err
	}
	tid := row.pb.TenantId // the tenant of an application cannot change
	row.pb = clone(in)
	row.pb.Id, row.pb.TenantId = id, tid
	row.updated = time.Now()
	return &emptypb.Empty{}, nil
}

func (a *applicationService) Delete(_ context.Context, req *api.DeleteApplicationRequest) (*emptypb.Empty, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _, err := find(s.apps, "application", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	s.deleteApplicationLocked(id)
	return &emptypb.Empty{}, nil
}

func (s *Server) deleteApplicationLocked(id string) {
	for eui, d := range s.devices {
		if d.pb.ApplicationId == id {
			s.deleteDeviceLocked(eui)
		}
	}
	delete(s.apps, id)
}

func (a *applicationService) List(_ context.Context, req *api.ListApplicationsRequest) (*api.ListApplicationsResponse, error) {
	tid, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := func(r *applicationRow) string { return r.pb.Name }
	total, rows := listPage(s.apps, req, name, func(r *applicationRow) bool {
		return r.pb.TenantId == tid && matches(req.GetSearch(), r.pb.Name)
	})
	resp := &api.ListApplicationsResponse{TotalCount: total}
	for _, r := range rows {
		resp.Result = append(resp.Result, &api.ApplicationListItem{
			Id: r.pb.Id, Name: r.pb.Name, Description: r.pb.Description,
			CreatedAt: ts(r.created), UpdatedAt: ts(r.updated),
		})
	}
	return resp, nil
}

// ---- DeviceProfileService ----

type deviceProfileService struct {
	api.UnimplementedDeviceProfileServiceServer
	s *Server
}

func validateProfile(in *api.DeviceProfile) error {
	if in.GetName() == "" {
		return errNameNotSet
	}
	if _, ok := common.MacVersion_name[int32(in.GetMacVersion())]; !ok {
		return status.Errorf(codes.InvalidArgument, "invalid mac_version %d", in.GetMacVersion())
	}
	if in.GetRx1Delay() > 15 {
		return status.Error(codes.InvalidArgument, "rx1_delay must be 0..15")
	}
	return nil
}

func (d *deviceProfileService) Create(_ context.Context, req *api.CreateDeviceProfileRequest) (*api.CreateDeviceProfileResponse, error) {
	in := req.GetDeviceProfile()
	tid, err := parseUUID("device_profile.tenant_id", in.GetTenantId())
	if err != nil {
		return nil, err
	}
	if err := validateProfile(in); err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := lookup(s.tenants, "tenant", tid); err != nil {
		return nil, err
	}
	row := clone(in)
	row.Id = newUUID()
	row.TenantId = tid
	now := time.Now()
	s.profiles[row.Id] = &deviceProfileRow{pb: row, created: now, updated: now}
	return &api.CreateDeviceProfileResponse{Id: row.Id}, nil
}

func (d *deviceProfileService) Get(_ context.Context, req *api.GetDeviceProfileRequest) (*api.GetDeviceProfileResponse, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, row, err := find(s.profiles, "device profile", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	return &api.GetDeviceProfileResponse{DeviceProfile: clone(row.pb), CreatedAt: ts(row.created), UpdatedAt: ts(row.updated)}, nil
}

func (d *deviceProfileService) Update(_ context.Context, req *api.UpdateDeviceProfileRequest) (*emptypb.Empty, error) {
	in := req.GetDeviceProfile()
	id, err := parseUUID("device_profile.id", in.GetId())
	if err != nil {
		return nil, err
	}
	if err := validateProfile(in); err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row, err := lookup(s.profiles, "device profile", id)
	if err != nil {
		return nil, err
	}
	tid := row.pb.TenantId
	row.pb = clone(in)
	row.pb.Id, row.pb.TenantId = id, tid
	row.updated = time.Now()
	return &emptypb.Empty{}, nil
}

func (d *deviceProfileService) Delete(_ context.Context, req *api.DeleteDeviceProfileRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _, err := find(s.profiles, "device profile", parseUUID, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	for _, dev := range s.devices {
		if dev.pb.DeviceProfileId == id {
			// device.device_profile_id is a foreign key without cascade upstream.
			return nil, status.Error(codes.FailedPrecondition, "device profile is used by devices")
		}
	}
	delete(s.profiles, id)
	return &emptypb.Empty{}, nil
}

func (d *deviceProfileService) List(_ context.Context, req *api.ListDeviceProfilesRequest) (*api.ListDeviceProfilesResponse, error) {
	tid, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := func(r *deviceProfileRow) string { return r.pb.Name }
	total, rows := listPage(s.profiles, req, name, func(r *deviceProfileRow) bool {
		return r.pb.TenantId == tid && matches(req.GetSearch(), r.pb.Name)
	})
	resp := &api.ListDeviceProfilesResponse{TotalCount: total}
	for _, r := range rows {
		resp.Result = append(resp.Result, &api.DeviceProfileListItem{
			Id: r.pb.Id, Name: r.pb.Name, CreatedAt: ts(r.created), UpdatedAt: ts(r.updated),
			Region: r.pb.Region, MacVersion: r.pb.MacVersion, RegParamsRevision: r.pb.RegParamsRevision,
			SupportsOtaa: r.pb.SupportsOtaa, SupportsClassB: r.pb.SupportsClassB, SupportsClassC: r.pb.SupportsClassC,
		})
	}
	return resp, nil
}

// ---- GatewayService ----

type gatewayService struct {
	api.UnimplementedGatewayServiceServer
	s *Server
}

func (g *gatewayService) Create(_ context.Context, req *api.CreateGatewayRequest) (*emptypb.Empty, error) {
	in := req.GetGateway()
	eui, err := parseEUI("gateway.gateway_id", in.GetGatewayId())
	if err != nil {
		return nil, err
	}
	tid, err := parseUUID("gateway.tenant_id", in.GetTenantId())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := lookup(s.tenants, "tenant", tid)
	if err != nil {
		return nil, err
	}
	if !t.pb.CanHaveGateways {
		return nil, status.Error(codes.FailedPrecondition, "tenant can not have gateways")
	}
	if t.pb.MaxGatewayCount > 0 {
		n := 0
		for _, gw := range s.gateways {
			if gw.pb.TenantId == tid {
				n++
			}
		}
		if uint32(n) >= t.pb.MaxGatewayCount {
			return nil, status.Error(codes.FailedPrecondition, "max number of gateways exceeded for tenant")
		}
	}
	if _, dup := s.gateways[eui]; dup {
		return nil, duplicateKey("gateway")
	}
	row := clone(in)
	row.GatewayId = eui.String()
	row.TenantId = tid
	if row.DownlinkPriority == 0 {
		row.DownlinkPriority = 10 // ChirpStack 4.19 stores 0 as 10
	}
	now := time.Now()
	s.gateways[eui] = &gatewayRow{pb: row, created: now, updated: now}
	return &emptypb.Empty{}, nil
}

func (g *gatewayService) Get(_ context.Context, req *api.GetGatewayRequest) (*api.GetGatewayResponse, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, row, err := find(s.gateways, "gateway", parseEUI, "gateway_id", req.GetGatewayId())
	if err != nil {
		return nil, err
	}
	return &api.GetGatewayResponse{Gateway: clone(row.pb), CreatedAt: ts(row.created), UpdatedAt: ts(row.updated), LastSeenAt: ts(row.lastSeen)}, nil
}

func (g *gatewayService) Update(_ context.Context, req *api.UpdateGatewayRequest) (*emptypb.Empty, error) {
	in := req.GetGateway()
	eui, err := parseEUI("gateway.gateway_id", in.GetGatewayId())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row, err := lookup(s.gateways, "gateway", eui)
	if err != nil {
		return nil, err
	}
	tid := row.pb.TenantId
	row.pb = clone(in)
	row.pb.GatewayId, row.pb.TenantId = eui.String(), tid
	row.updated = time.Now()
	return &emptypb.Empty{}, nil
}

func (g *gatewayService) Delete(_ context.Context, req *api.DeleteGatewayRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, _, err := find(s.gateways, "gateway", parseEUI, "gateway_id", req.GetGatewayId())
	if err != nil {
		return nil, err
	}
	delete(s.gateways, eui)
	return &emptypb.Empty{}, nil
}

func (g *gatewayService) List(_ context.Context, req *api.ListGatewaysRequest) (*api.ListGatewaysResponse, error) {
	var tid string
	if req.GetTenantId() != "" {
		var err error
		if tid, err = parseUUID("tenant_id", req.GetTenantId()); err != nil {
			return nil, err
		}
	}
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := func(r *gatewayRow) string { return r.pb.Name }
	total, rows := listPage(s.gateways, req, name, func(r *gatewayRow) bool {
		return (tid == "" || r.pb.TenantId == tid) && (matches(req.GetSearch(), r.pb.Name) || matches(req.GetSearch(), r.pb.GatewayId))
	})
	resp := &api.ListGatewaysResponse{TotalCount: total}
	for _, r := range rows {
		resp.Result = append(resp.Result, &api.GatewayListItem{
			TenantId: r.pb.TenantId, GatewayId: r.pb.GatewayId, Name: r.pb.Name, Description: r.pb.Description,
			Location: r.pb.Location, CreatedAt: ts(r.created), UpdatedAt: ts(r.updated), LastSeenAt: ts(r.lastSeen),
			DownlinkPriority: r.pb.DownlinkPriority,
		})
	}
	return resp, nil
}

// ---- DeviceService ----

type deviceService struct {
	api.UnimplementedDeviceServiceServer
	s *Server
}

func (d *deviceService) Create(_ context.Context, req *api.CreateDeviceRequest) (*emptypb.Empty, error) {
	in := req.GetDevice()
	eui, err := parseEUI("device.dev_eui", in.GetDevEui())
	if err != nil {
		return nil, err
	}
	// storage/device.rs create does not validate (only update does): an
	// empty name is accepted.
	appID, err := parseUUID("device.application_id", in.GetApplicationId())
	if err != nil {
		return nil, err
	}
	dpID, err := parseUUID("device.device_profile_id", in.GetDeviceProfileId())
	if err != nil {
		return nil, err
	}
	var joinEUI lorawan.EUI64
	if in.GetJoinEui() != "" {
		if joinEUI, err = parseEUI("device.join_eui", in.GetJoinEui()); err != nil {
			return nil, err
		}
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	app, err := lookup(s.apps, "application", appID)
	if err != nil {
		return nil, err
	}
	dp, err := lookup(s.profiles, "device profile", dpID)
	if err != nil {
		return nil, err
	}
	if dp.pb.TenantId != app.pb.TenantId {
		return nil, status.Error(codes.InvalidArgument, "application and device-profile must be under the same tenant")
	}
	if t := s.tenants[app.pb.TenantId]; t != nil && t.pb.MaxDeviceCount > 0 {
		n := 0
		for _, dev := range s.devices {
			if a := s.apps[dev.pb.ApplicationId]; a != nil && a.pb.TenantId == t.pb.Id {
				n++
			}
		}
		if uint32(n) >= t.pb.MaxDeviceCount {
			// Error::NotAllowed → InvalidArgument (api/error.rs).
			return nil, status.Error(codes.InvalidArgument, "Not allowed (Max number of devices exceeded for tenant)")
		}
	}
	if _, dup := s.devices[eui]; dup {
		return nil, duplicateKey("device")
	}
	row := clone(in)
	row.DevEui = eui.String()
	row.ApplicationId, row.DeviceProfileId = appID, dpID
	if in.GetJoinEui() != "" {
		row.JoinEui = joinEUI.String()
	}
	now := time.Now()
	s.devices[eui] = &deviceRow{pb: row, created: now, updated: now, class: common.DeviceClass_CLASS_A}
	return &emptypb.Empty{}, nil
}

func (d *deviceService) Get(_ context.Context, req *api.GetDeviceRequest) (*api.GetDeviceResponse, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, row, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	return &api.GetDeviceResponse{
		Device: clone(row.pb), CreatedAt: ts(row.created), UpdatedAt: ts(row.updated),
		LastSeenAt: ts(row.lastSeen), ClassEnabled: row.class, DeviceStatus: clone(row.status),
	}, nil
}

func (d *deviceService) Update(_ context.Context, req *api.UpdateDeviceRequest) (*emptypb.Empty, error) {
	in := req.GetDevice()
	eui, err := parseEUI("device.dev_eui", in.GetDevEui())
	if err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, errNameNotSet
	}
	dpID, err := parseUUID("device.device_profile_id", in.GetDeviceProfileId())
	if err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	row, err := lookup(s.devices, "device", eui)
	if err != nil {
		return nil, err
	}
	if _, err := lookup(s.profiles, "device profile", dpID); err != nil {
		return nil, err
	}
	appID := row.pb.ApplicationId
	row.pb = clone(in)
	row.pb.DevEui, row.pb.ApplicationId, row.pb.DeviceProfileId = eui.String(), appID, dpID
	row.updated = time.Now()
	return &emptypb.Empty{}, nil
}

func (d *deviceService) Delete(_ context.Context, req *api.DeleteDeviceRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, _, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	s.deleteDeviceLocked(eui)
	return &emptypb.Empty{}, nil
}

func (s *Server) deleteDeviceLocked(eui lorawan.EUI64) {
	delete(s.devices, eui)
	delete(s.keys, eui)
	s.dropSessionLocked(eui)
}

func (d *deviceService) List(_ context.Context, req *api.ListDevicesRequest) (*api.ListDevicesResponse, error) {
	appID, err := parseUUID("application_id", req.GetApplicationId())
	if err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := func(r *deviceRow) string { return r.pb.Name }
	total, rows := listPage(s.devices, req, name, func(r *deviceRow) bool {
		return r.pb.ApplicationId == appID && (matches(req.GetSearch(), r.pb.Name) || matches(req.GetSearch(), r.pb.DevEui))
	})
	resp := &api.ListDevicesResponse{TotalCount: total}
	for _, r := range rows {
		item := &api.DeviceListItem{
			DevEui: r.pb.DevEui, Name: r.pb.Name, Description: r.pb.Description,
			DeviceProfileId: r.pb.DeviceProfileId, Tags: r.pb.Tags,
			CreatedAt: ts(r.created), UpdatedAt: ts(r.updated), LastSeenAt: ts(r.lastSeen),
		}
		if dp := s.profiles[r.pb.DeviceProfileId]; dp != nil {
			item.DeviceProfileName = dp.pb.Name
		}
		resp.Result = append(resp.Result, item)
	}
	return resp, nil
}

func parseDeviceKeys(in *api.DeviceKeys) (eui lorawan.EUI64, nwk, app, gen lorawan.AES128Key, err error) {
	if eui, err = parseEUI("device_keys.dev_eui", in.GetDevEui()); err != nil {
		return
	}
	if nwk, err = parseKey("device_keys.nwk_key", in.GetNwkKey()); err != nil {
		return
	}
	if app, err = parseKey("device_keys.app_key", in.GetAppKey()); err != nil {
		return
	}
	gen, err = parseKey("device_keys.gen_app_key", in.GetGenAppKey())
	return
}

// CreateKeys inserts a device_keys row: join_nonce 0, no used DevNonces. For
// LoRaWAN 1.0.x devices the root key (the spec's AppKey) belongs in nwk_key.
func (d *deviceService) CreateKeys(_ context.Context, req *api.CreateDeviceKeysRequest) (*emptypb.Empty, error) {
	eui, nwk, app, gen, err := parseDeviceKeys(req.GetDeviceKeys())
	if err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := lookup(s.devices, "device", eui); err != nil {
		return nil, err
	}
	if _, dup := s.keys[eui]; dup {
		return nil, duplicateKey("device_keys")
	}
	now := time.Now()
	s.keys[eui] = &deviceKeysRow{nwkKey: nwk, appKey: app, genAppKey: gen,
		devNonces: map[lorawan.EUI64]map[lorawan.DevNonce]struct{}{}, created: now, updated: now}
	return &emptypb.Empty{}, nil
}

func (d *deviceService) GetKeys(_ context.Context, req *api.GetDeviceKeysRequest) (*api.GetDeviceKeysResponse, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, k, err := find(s.keys, "device keys", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	return &api.GetDeviceKeysResponse{
		DeviceKeys: &api.DeviceKeys{DevEui: eui.String(), NwkKey: keyHex(k.nwkKey), AppKey: keyHex(k.appKey), GenAppKey: keyHex(k.genAppKey)},
		CreatedAt:  ts(k.created), UpdatedAt: ts(k.updated),
	}, nil
}

// UpdateKeys replaces the keys but keeps join_nonce and the used DevNonces,
// like ChirpStack's device_keys::update.
func (d *deviceService) UpdateKeys(_ context.Context, req *api.UpdateDeviceKeysRequest) (*emptypb.Empty, error) {
	eui, nwk, app, gen, err := parseDeviceKeys(req.GetDeviceKeys())
	if err != nil {
		return nil, err
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := lookup(s.keys, "device keys", eui)
	if err != nil {
		return nil, err
	}
	k.nwkKey, k.appKey, k.genAppKey, k.updated = nwk, app, gen, time.Now()
	return &emptypb.Empty{}, nil
}

func (d *deviceService) DeleteKeys(_ context.Context, req *api.DeleteDeviceKeysRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, _, err := find(s.keys, "device keys", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	delete(s.keys, eui)
	return &emptypb.Empty{}, nil
}

// FlushDevNonces empties the used-DevNonce set; join_nonce is unchanged
// (ChirpStack api/device.rs flush_dev_nonces → device_keys::reset_nonces).
func (d *deviceService) FlushDevNonces(_ context.Context, req *api.FlushDevNoncesRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k, err := find(s.keys, "device keys", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	k.devNonces = map[lorawan.EUI64]map[lorawan.DevNonce]struct{}{}
	k.updated = time.Now()
	return &emptypb.Empty{}, nil
}

// Activate sets an ABP session (api/device.rs activate): DevAddr, the four
// session keys and the frame counters as given, the MAC version from the
// device profile, the region's boot parameters (RX1 delay 1 s, DR0, the
// default channels, one transmission); class A, or C for a LoRaWAN 1.0 device
// whose profile supports class C. Golden scenarios use it as ChirpStack's own
// tests use device::partial_update with a device session.
func (d *deviceService) Activate(_ context.Context, req *api.ActivateDeviceRequest) (*emptypb.Empty, error) {
	da := req.GetDeviceActivation()
	if da == nil {
		return nil, status.Error(codes.InvalidArgument, "device_activation is missing")
	}
	eui, err := parseEUI("device_activation.dev_eui", da.GetDevEui())
	if err != nil {
		return nil, err
	}
	var addr lorawan.DevAddr
	if err := addr.UnmarshalText([]byte(da.GetDevAddr())); err != nil {
		return nil, status.Errorf(codes.Internal, "dev_addr: %v", err) // ChirpStack: Error::from → Internal
	}
	var keys lwkeys.SessionKeys
	for _, k := range []struct {
		field string
		val   string
		dst   *lorawan.AES128Key
	}{
		{"s_nwk_s_int_key", da.GetSNwkSIntKey(), &keys.SNwkSIntKey},
		{"f_nwk_s_int_key", da.GetFNwkSIntKey(), &keys.FNwkSIntKey},
		{"nwk_s_enc_key", da.GetNwkSEncKey(), &keys.NwkSEncKey},
		{"app_s_key", da.GetAppSKey(), &keys.AppSKey},
	} {
		if *k.dst, err = parseKey(k.field, k.val); err != nil {
			return nil, err
		}
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	dev, err := lookup(s.devices, "device", eui)
	if err != nil {
		return nil, err
	}
	dp := s.profiles[dev.pb.DeviceProfileId]
	if dp == nil {
		return nil, status.Errorf(codes.NotFound, "Object does not exist (id: %s)", dev.pb.DeviceProfileId)
	}
	s.putSessionLocked(&session{
		devEUI: eui, devAddr: addr, macVersion: macVersion(dp.pb.MacVersion), keys: keys,
		fCntUp: da.GetFCntUp(), nFCntDown: da.GetNFCntDown(), aFCntDown: da.GetAFCntDown(),
		skipFCntCheck: dev.pb.SkipFcntCheck, rx1Delay: s.rx1Delay(),
		rx2Freq: s.band.GetDefaults().RX2Frequency, // ABP boot parameters: the region's defaults
		// No channels yet, reset to the region's default ones (not the
		// extra channels an ABP device never learned) at the first uplink
		// (uplink/data.rs reset_channels_on_activation_or_adr_ack_req).
		adr: adrState{nbTrans: 1, channels: s.band.GetStandardUplinkChannelIndices()},
	})
	dev.devAddr, dev.joined = addr, true
	if dp.pb.FlushQueueOnActivate {
		dev.queue = nil
	}
	dev.class = common.DeviceClass_CLASS_A
	if dp.pb.SupportsClassC && strings.HasPrefix(macVersionStrings[dp.pb.MacVersion], "1.0") {
		dev.class = common.DeviceClass_CLASS_C
	}
	dev.updated = time.Now()
	return &emptypb.Empty{}, nil
}

// Deactivate flushes the queue and forgets the session and DevAddr
// (api/device.rs deactivate).
func (d *deviceService) Deactivate(_ context.Context, req *api.DeactivateDeviceRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, dev, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	s.dropSessionLocked(eui)
	dev.queue, dev.devAddr, dev.joined = nil, lorawan.DevAddr{}, false
	dev.updated = time.Now()
	return &emptypb.Empty{}, nil
}

// GetActivation answers OK with device_activation unset when the device has not
// joined (not NotFound), as ChirpStack does.
func (d *deviceService) GetActivation(_ context.Context, req *api.GetDeviceActivationRequest) (*api.GetDeviceActivationResponse, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, _, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	ds, ok := s.sessions[eui]
	if !ok {
		return &api.GetDeviceActivationResponse{}, nil
	}
	return &api.GetDeviceActivationResponse{DeviceActivation: &api.DeviceActivation{
		DevEui: eui.String(), DevAddr: ds.devAddr.String(),
		AppSKey: keyHex(ds.keys.AppSKey), NwkSEncKey: keyHex(ds.keys.NwkSEncKey),
		SNwkSIntKey: keyHex(ds.keys.SNwkSIntKey), FNwkSIntKey: keyHex(ds.keys.FNwkSIntKey),
		FCntUp: ds.fCntUp, NFCntDown: ds.nFCntDown, AFCntDown: ds.aFCntDown,
	}}, nil
}

// Enqueue adds a plaintext downlink to the device queue; it is sent in the RX
// windows of the device's next uplink (class A). Encrypted payloads and codec
// objects are not supported by the emulator.
func (d *deviceService) Enqueue(_ context.Context, req *api.EnqueueDeviceQueueItemRequest) (*api.EnqueueDeviceQueueItemResponse, error) {
	in := req.GetQueueItem()
	eui, err := parseEUI("queue_item.dev_eui", in.GetDevEui())
	if err != nil {
		return nil, err
	}
	if in.GetFPort() == 0 || in.GetFPort() > 255 {
		return nil, status.Error(codes.InvalidArgument, "FPort must be > 0")
	}
	if in.GetIsEncrypted() || in.GetObject() != nil {
		return nil, status.Error(codes.Unimplemented, "emulator: encrypted queue items and codec objects are not supported")
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	dev, err := lookup(s.devices, "device", eui)
	if err != nil {
		return nil, err
	}
	if req.GetFlushQueue() {
		dev.queue = nil
	}
	qi := &queueItem{id: newUUID(), fPort: uint8(in.GetFPort()), confirmed: in.GetConfirmed(), data: append([]byte(nil), in.GetData()...)}
	dev.queue = append(dev.queue, qi)
	return &api.EnqueueDeviceQueueItemResponse{Id: qi.id}, nil
}

func (d *deviceService) FlushQueue(_ context.Context, req *api.FlushDeviceQueueRequest) (*emptypb.Empty, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, dev, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	dev.queue = nil
	return &emptypb.Empty{}, nil
}

func (d *deviceService) GetQueue(_ context.Context, req *api.GetDeviceQueueItemsRequest) (*api.GetDeviceQueueItemsResponse, error) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	eui, dev, err := find(s.devices, "device", parseEUI, "dev_eui", req.GetDevEui())
	if err != nil {
		return nil, err
	}
	resp := &api.GetDeviceQueueItemsResponse{TotalCount: uint32(len(dev.queue))}
	if req.GetCountOnly() {
		return resp, nil
	}
	for _, q := range dev.queue {
		resp.Result = append(resp.Result, &api.DeviceQueueItem{
			Id: q.id, DevEui: eui.String(), Confirmed: q.confirmed, FPort: uint32(q.fPort),
			Data: q.data, IsPending: q.pending, FCntDown: q.fCntDown,
		})
	}
	return resp, nil
}
