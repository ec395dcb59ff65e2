package rigs

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/chirpstack"
	"github.com/tap2join/tap2join/emulators/gateway"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/provisioning"
	"github.com/tap2join/tap2join/rigs/phone"
)

// OtherNetwork is a second LoRaWAN network covering the rig's emulated air:
// its own embedded ChirpStack (own NetID, so its DevAddrs differ), its own
// gateway on the same air, and its own provisioning backend — what a device
// meets when it is moved to another operator (SPEC.md §5 rule 3; ST solution
// brief SL-SSISE011302V1: "keys can be replaced later to move a device to
// another network").
type OtherNetwork struct {
	NetID         lorawan.NetID
	Network       lns.NetworkServer
	NetworkInfo   NetworkInfo
	ApplicationID string
	JoinEUI       provproto.EUI64
	// Backend is the phone's client for this network's provisioning backend.
	Backend *provisioning.Client
	// Phone returns a phone on board b's tag that registers with this
	// network's backend.
	Phone func(b *Board, opts phone.Options) *phone.Phone
}

// OtherNetworkConfig names the second network.
type OtherNetworkConfig struct {
	NetID     lorawan.NetID   // e.g. 000013 (type 0, NwkID 13h)
	GatewayID [8]byte         // its gateway's EUI (must differ from the rig's)
	JoinEUI   provproto.EUI64 // the JoinEUI its backend gives devices
}

// otherNetworks starts second networks on the rig's emulated air
// (OtherNetworks); the rig offers it when it has emulated gateways.
type otherNetworks struct{ r *Rig }

// StartOtherNetwork brings a second network up beside the rig's, on the same
// emulated air; it stops at Close.
func (o otherNetworks) StartOtherNetwork(ctx context.Context, c OtherNetworkConfig) (*OtherNetwork, error) {
	r := o.r
	gwID := hex.EncodeToString(c.GatewayID[:])
	for _, g := range r.gateways {
		if g.cfg.ID == c.GatewayID {
			return nil, fmt.Errorf("other network: gateway %s is the rig's own", gwID)
		}
	}
	f := r.File
	var gw atomic.Pointer[gateway.Gateway] // set once the server it serves is up
	cfg := chirpstack.Config{Region: f.Network.Region, NetID: c.NetID, ProtobufEvents: f.Network.Events == EventsProtobuf}
	if r.Clock.Mode() == timing.Instant {
		cfg.DeduplicationDelay = loopbackDeduplication // as the rig's own (network.go)
	}
	cfg.Unanswered = func(id string, rxContext []byte) {
		if g := gw.Load(); g != nil && strings.EqualFold(id, gwID) {
			g.NoReply(rxContext)
		}
	}
	cs, err := chirpstack.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("other network: %w", err)
	}
	r.closers = append(r.closers, cs.Close)
	on := &OtherNetwork{NetID: c.NetID, JoinEUI: c.JoinEUI}
	net, err := r.dialNetwork(ctx, NetworkInfo{API: cs.APIAddr(), Token: cs.APIToken(), MQTT: cs.MQTTURL()}, lns.Profile{})
	if err != nil {
		return nil, fmt.Errorf("other network: %w", err)
	}
	on.Network, on.NetworkInfo, on.ApplicationID = net.client, net.info, net.app
	if err := net.client.EnsureGateway(ctx, net.tenant, gwID); err != nil {
		return nil, fmt.Errorf("other network: %w", err)
	}
	g, err := gateway.Start(r.runCtx, gateway.Config{ID: c.GatewayID, MQTTURL: on.NetworkInfo.MQTT, Region: f.Network.Region, Air: r.air,
		ReportsNoReply: true})
	if err != nil {
		return nil, fmt.Errorf("other network: gateway %s: %w", gwID, err)
	}
	gw.Store(g)
	r.closers = append(r.closers, g.Close)
	_, backend, err := r.startBackend(ctx, net, c.JoinEUI, r.log.With("network", c.NetID.String()))
	if err != nil {
		return nil, fmt.Errorf("other network: provisioning backend: %w", err)
	}
	backend.OnKeys = rememberIssued
	on.Backend = backend
	on.Phone = func(b *Board, opts phone.Options) *phone.Phone {
		return phone.New(phone.NFCTag(b.Tag), on.Backend, b.PhoneOptions(opts))
	}
	return on, nil
}

// Joins adapts the other network's client to the phone's JoinWaiter.
func (on *OtherNetwork) Joins() phone.JoinWaiter { return joinAdapter{on.Network} }
