package rigs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/tap2join/tap2join/emulators/gateway"
	"github.com/tap2join/tap2join/emulators/radio"
)

// The emulated air and the rig's gateways. Every gateway of the rig file is
// registered with the network server; an emulated one is also started on
// the air (a real one forwards to the server by itself). Emulated gateways
// can be cut and restored (GatewaySwitch).

// setUpAir creates the emulated air: duty cycle, capture file (Options).
func (r *Rig) setUpAir(opts Options) error {
	r.air = radio.NewAir(r.Clock)
	r.air.SetDutyCycle(radio.DutyCycle{Mode: opts.DutyCycle})
	if opts.CapturePath == "" {
		return nil
	}
	stop, err := r.air.CaptureFile(opts.CapturePath, radio.CaptureOptions{Spec: opts.Spec})
	if err != nil {
		return fmt.Errorf("rigs: %w", err)
	}
	r.closers = append(r.closers, stop)
	return nil
}

// setUpGateways registers the rig file's gateways with the network server
// and starts the emulated ones on the air.
func (r *Rig) setUpGateways(ctx context.Context, net *network, lg *slog.Logger) error {
	f := r.File
	for _, g := range f.Gateways {
		if err := net.client.EnsureGateway(ctx, net.tenant, strings.ToLower(g.ID)); err != nil {
			return fmt.Errorf("rigs: %w", err)
		}
		if !g.Emulated {
			continue // a real gateway forwards to the network server itself
		}
		var id [8]byte
		_, _ = hex.Decode(id[:], []byte(g.ID)) // validated by Parse
		cfg := gateway.Config{ID: id, MQTTURL: r.NetworkInfo.MQTT, Region: f.Network.Region, Air: r.air, Clock: r.Clock,
			ReportsNoReply: r.ns != nil, // the embedded server's Unanswered hook reaches it (noReply)
			Logf:           func(format string, a ...any) { debugf(lg, "part", "gateway", format, a...) }}
		gw, err := gateway.Start(r.runCtx, cfg) // runs until Close, not until the start-up ctx ends
		if err != nil {
			return fmt.Errorf("rigs: gateway %s: %w", g.ID, err)
		}
		rg := &rigGateway{cfg: cfg, gw: gw}
		r.gateways = append(r.gateways, rg)
		r.closers = append(r.closers, rg.close)
	}
	if len(r.gateways) > 0 {
		r.parts = append(r.parts, gatewaySwitch{r}, otherNetworks{r})
	}
	return nil
}

// rigGateway is one emulated gateway, which CutGateways may stop and
// RestoreGateways start again with the same configuration.
type rigGateway struct {
	cfg gateway.Config
	mu  sync.Mutex
	gw  *gateway.Gateway // nil while cut
}

func (g *rigGateway) running() *gateway.Gateway {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gw
}

func (g *rigGateway) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gw == nil {
		return nil
	}
	err := g.gw.Close()
	g.gw = nil
	return err
}

// noReply passes the embedded network server's "no answer to this uplink"
// to the emulated gateway that forwarded it (chirpstack.Config.Unanswered).
func (r *Rig) noReply(gatewayID string, context []byte) {
	for _, g := range r.gateways {
		if !strings.EqualFold(hex.EncodeToString(g.cfg.ID[:]), gatewayID) {
			continue
		}
		if gw := g.running(); gw != nil {
			gw.NoReply(context)
		}
	}
}

// gatewaySwitch cuts and restores the rig's emulated gateways (GatewaySwitch).
type gatewaySwitch struct{ r *Rig }

func (s gatewaySwitch) CutGateways() error {
	var errs []error
	for _, g := range s.r.gateways {
		errs = append(errs, g.close())
	}
	return errors.Join(errs...)
}

func (s gatewaySwitch) RestoreGateways(ctx context.Context) error {
	for _, g := range s.r.gateways {
		g.mu.Lock()
		if g.gw == nil {
			gw, err := gateway.Start(s.r.runCtx, g.cfg) // lives until Close; ctx only bounds this call
			if err != nil {
				g.mu.Unlock()
				return fmt.Errorf("rigs: restore gateway %x: %w", g.cfg.ID, err)
			}
			g.gw = gw
		}
		g.mu.Unlock()
	}
	return nil
}

// gatewaysReady lists the emulated gateways that are running but not
// connected to their broker.
func (r *Rig) gatewaysReady() error {
	var errs []error
	for _, g := range r.gateways {
		if gw := g.running(); gw != nil && !gw.Connected() {
			errs = append(errs, fmt.Errorf("gateway %s: not connected", gw.ID()))
		}
	}
	return errors.Join(errs...)
}
