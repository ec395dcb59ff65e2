package rigs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/chirpstack"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/containers"
	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/phone"
)

// The network server (rig file `network:`): the embedded ChirpStack twin,
// ChirpStack in containers, or an external ChirpStack v4. Whatever the kind,
// the rig talks to it through one client (fixtures/lns: its gRPC API and its
// MQTT integration events). The embedded one restarts on demand
// (BrokerRestart, NetworkServerRestart).

// NetworkInfo says where the network server is (printed by the standalone
// emulator, used by external tools).
type NetworkInfo struct {
	API   string `json:"api"`
	Token string `json:"token"`
	MQTT  string `json:"mqtt"`
	// TLS: the gRPC API is served over TLS (a server certificate the
	// system roots vouch for); else plaintext h2c, ChirpStack's default.
	TLS bool `json:"tls,omitempty"`
}

// network is the rig's view of one network server: its client and the
// tenant, application and device profile the rig uses there.
type network struct {
	client               *lns.Client
	tenant, app, profile string
	info                 NetworkInfo
}

// loopbackDeduplication is the deduplication window of servers the rig
// starts with instant timing. ChirpStack waits network.deduplication_delay
// (200 ms) for copies of an uplink from other gateways; emulated gateways
// publish within microseconds of each other, so instant timing keeps the
// behaviour with a window sized for loopback.
const loopbackDeduplication = 5 * time.Millisecond

// startNetwork starts (embedded, containers) or finds (external) the network
// server the rig file names, and connects the rig's client to it.
func (r *Rig) startNetwork(ctx context.Context, lg *slog.Logger) (*network, error) {
	f := r.File
	instant := r.Clock.Mode() == timing.Instant
	var info NetworkInfo
	switch f.Network.Kind {
	case "embedded":
		cfg := chirpstack.Config{Region: f.Network.Region, ProtobufEvents: f.Network.Events == EventsProtobuf}
		if instant {
			cfg.DeduplicationDelay = loopbackDeduplication
		}
		cfg.Logf = func(format string, a ...any) {
			debugf(lg, "part", "chirpstack", format, a...)
		}
		// An uplink the server will not answer ends the device's receive
		// windows at once, through the gateway that forwarded it, instead of
		// after their wall-clock cap (RXWindowCap): the modelled time is the
		// same, the wall time of every unanswered uplink drops from seconds
		// to milliseconds.
		cfg.Unanswered = r.noReply
		cs, err := chirpstack.Start(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("rigs: embedded network server: %w", err)
		}
		r.closers = append(r.closers, cs.Close)
		r.ns = cs
		r.parts = append(r.parts, embeddedServer{cs})
		info = NetworkInfo{API: cs.APIAddr(), Token: cs.APIToken(), MQTT: cs.MQTTURL()}
	case "containers":
		copts := []containers.Option{
			containers.WithRegion(f.Network.Region),
			containers.WithLogf(func(format string, a ...any) {
				debugf(lg, "part", "containers", format, a...)
			}),
		}
		if f.Network.ImageSet == "upstream" {
			copts = append(copts, containers.WithImageSet(containers.ImageSetUpstream))
			for _, g := range f.Gateways {
				if !g.Emulated { // its packet forwarder sends to <runner>:<port>
					copts = append(copts, containers.WithGatewayUDPPort(f.Network.GatewayUDPPort))
					break
				}
			}
		}
		if instant {
			copts = append(copts, containers.WithDeduplicationDelay(loopbackDeduplication))
		}
		if f.Network.Events == EventsProtobuf {
			copts = append(copts, containers.WithProtobufEvents())
		}
		st, err := containers.Run(ctx, copts...)
		if err != nil {
			return nil, fmt.Errorf("rigs: network server in containers: %w", err)
		}
		r.closers = append(r.closers, func() error {
			tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return st.Terminate(tctx)
		})
		info = NetworkInfo{API: st.APIAddr, Token: st.Token, MQTT: st.MQTTURL}
	case "external":
		info = NetworkInfo{API: f.Network.API, Token: expandEnv(f.Network.Token), MQTT: f.Network.MQTT, TLS: f.Network.TLS}
	default:
		return nil, fmt.Errorf("rigs: network kind %q is not available yet", f.Network.Kind)
	}
	net, err := r.dialNetwork(ctx, info, lns.Profile{DeviceStatusReqInterval: f.Network.DeviceStatusReqInterval})
	if err != nil {
		return nil, fmt.Errorf("rigs: %w", err)
	}
	return net, nil
}

// dialNetwork connects a network-server client (closed at Close) and finds
// or creates the rig's tenant, application and device profile
// (p.MACVersion, Region and SupportsOTAA come from the rig file), watching
// the application's integration events.
func (r *Rig) dialNetwork(ctx context.Context, info NetworkInfo, p lns.Profile) (*network, error) {
	f := r.File
	cfg := lns.Config{API: info.API, Token: info.Token, MQTT: info.MQTT, Region: f.Network.Region}
	if info.TLS {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	client, err := lns.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("network server client: %w", err)
	}
	r.closers = append(r.closers, client.Close)
	n := &network{client: client, info: info}
	if n.tenant, err = client.EnsureTenant(ctx, f.Network.Tenant); err != nil {
		return nil, err
	}
	if n.app, err = client.EnsureApplication(ctx, n.tenant, f.Network.Application); err != nil {
		return nil, err
	}
	p.MACVersion, p.Region, p.SupportsOTAA = f.Network.MACVersion, f.Network.Region, true
	if n.profile, err = client.EnsureDeviceProfile(ctx, n.tenant, "tap2join "+f.Network.MACVersion, p); err != nil {
		return nil, err
	}
	if err := client.Watch(ctx, n.app); err != nil {
		return nil, err
	}
	return n, nil
}

// embeddedServer restarts the embedded network server or its broker
// (BrokerRestart, NetworkServerRestart).
type embeddedServer struct{ cs *chirpstack.Server }

func (e embeddedServer) RestartBroker(ctx context.Context) error { return e.cs.RestartBroker(ctx) }

func (e embeddedServer) RestartNetworkServer(ctx context.Context) error { return e.cs.Restart(ctx) }

// NetworkReady reports nil when every MQTT client of the rig is connected:
// the embedded network server's gateway backend, the emulated gateways, the
// network client's integration subscription and the embedded provisioning
// backend's join-event subscription; else what is not.
func (r *Rig) NetworkReady() error {
	var errs []error
	if r.ns != nil && !r.ns.MQTTReady() {
		errs = append(errs, errors.New("network server: gateway backend not subscribed"))
	}
	errs = append(errs, r.gatewaysReady())
	if c, ok := r.Network.(interface{ Connected() bool }); ok && !c.Connected() {
		errs = append(errs, errors.New("network client: integration not connected"))
	}
	if r.be != nil && !r.be.NotificationsReady() {
		errs = append(errs, errors.New("provisioning backend: not subscribed to join events"))
	}
	return errors.Join(errs...)
}

// Joins adapts the network server client to the phone's JoinWaiter.
func (r *Rig) Joins() phone.JoinWaiter { return joinAdapter{r.Network} }

type joinAdapter struct{ ns lns.NetworkServer }

// AwaitJoin waits for the device's join, and ends at once when the network
// server says it refuses the device's join-requests (joinRefused) rather
// than waiting out ctx: a firmware holding a wrong key fails in the time of
// two join attempts, quoting the server's log event.
func (j joinAdapter) AwaitJoin(ctx context.Context, dev provproto.EUI64) (lorawan.DevAddr, error) {
	var ev lns.JoinEvent
	var err error
	if u, ok := j.ns.(interface {
		AwaitJoinUnless(context.Context, lorawan.EUI64, func([]lns.LogEvent) error) (lns.JoinEvent, error)
	}); ok {
		ev, err = u.AwaitJoinUnless(ctx, lorawan.EUI64(dev), joinRefused)
	} else {
		ev, err = j.ns.AwaitJoin(ctx, lorawan.EUI64(dev))
	}
	if err != nil {
		return lorawan.DevAddr{}, err
	}
	return ev.DevAddr, nil
}

// JoinRefusedError says the network server refused a device's
// join-requests: their MIC does not verify with the key it holds
// (ChirpStack's log event code UPLINK_MIC, chirpstack/src/uplink/join.rs).
type JoinRefusedError struct {
	Refusals int
	Last     lns.LogEvent
}

func (e *JoinRefusedError) Error() string {
	return fmt.Sprintf("network server refused %d join-requests: %s (the device's key is not the one the network holds)", e.Refusals, e.Last)
}

// joinRefused is the decisive evidence of a join wait: two join-requests
// refused for their MIC while it waited. One is not enough: a device moved
// to a new key may send a join-request before the network has it (a
// re-provisioning confirmed a moment after the device's acknowledgement);
// it then retries, and the retry is decisive.
func joinRefused(logs []lns.LogEvent) error {
	var mic []lns.LogEvent
	for _, le := range logs {
		if le.Code == "UPLINK_MIC" {
			mic = append(mic, le)
		}
	}
	if len(mic) < 2 {
		return nil
	}
	return &JoinRefusedError{Refusals: len(mic), Last: mic[len(mic)-1]}
}

func (j joinAdapter) AwaitUplink(ctx context.Context, dev provproto.EUI64) (lorawan.DevAddr, error) {
	ev, err := j.ns.AwaitUplink(ctx, lorawan.EUI64(dev))
	if err != nil {
		return lorawan.DevAddr{}, err
	}
	return ev.DevAddr, nil
}
