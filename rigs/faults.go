package rigs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tap2join/tap2join/emulators/gateway"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
)

// Fault injection: what the fault suite does to a bench besides using it —
// lift the phone, halt or reset a board's MCU, cut the gateways, restart the
// network server or its broker. Emulated parts do it in-process; for a real
// part (a lab without a relay or a switchable gateway) the hooks return
// ErrNotEmulated and a fault spec skips.

// ErrNotEmulated says a fault cannot be injected into this part of the rig.
var ErrNotEmulated = errors.New("rigs: fault injection needs an emulated part")

// twin is an emulated board's parts and its firmware's run.
type twin struct {
	name string
	rig  *Rig
	tag  *st25dv.Tag
	mcu  *stm32wl5.MCU

	events <-chan stm32wl5.Event
	mu     sync.Mutex
	stop   context.CancelFunc // ends the current Run
	done   chan struct{}      // closed when the current Run returned
}

// startMCU runs the board's firmware until the rig closes or HaltMCU, and
// waits for it to boot.
func (r *Rig) startMCU(ctx context.Context, tw *twin) error {
	tw.mu.Lock()
	if tw.done != nil {
		tw.mu.Unlock()
		return fmt.Errorf("board %s: firmware already running", tw.name)
	}
	tw.rig = r
	mctx, stop := context.WithCancel(r.runCtx)
	done := make(chan struct{})
	tw.stop, tw.done = stop, done
	tw.events = tw.mcu.Events()
	tw.mu.Unlock()
	booted := make(chan error, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		if err := tw.mcu.Run(mctx); err != nil {
			r.errMu.Lock()
			r.bgErrs = append(r.bgErrs, fmt.Errorf("board %s: %w", tw.name, err))
			r.errMu.Unlock()
			select {
			case booted <- err:
			default:
			}
		}
	}()
	return waitBooted(ctx, tw.events, booted)
}

func (b *Board) emulated() (*twin, error) {
	if b.twin == nil {
		return nil, fmt.Errorf("board %s: %w", b.Name, ErrNotEmulated)
	}
	return b.twin, nil
}

// Lift takes the phone off the board's tag: the RF field vanishes, RF
// sessions close, frames get no answer (nfc.ErrNoResponse). The mailbox
// keeps its message (its state depends on VCC and MB_EN only).
func (b *Board) Lift() error {
	tw, err := b.emulated()
	if err != nil {
		return err
	}
	tw.tag.FieldOff()
	return nil
}

// Tap brings the phone back: field on, the tag boots into Ready.
func (b *Board) Tap() error {
	tw, err := b.emulated()
	if err != nil {
		return err
	}
	tw.tag.FieldOn()
	return nil
}

// ExpireMailboxWatchdog lets the tag's mailbox watchdog (FTM.MB_WDG) expire
// now, as if its time had passed (the instant-timing stand-in for waiting).
// It reports false when MB_WDG is 0 or no message is pending.
func (b *Board) ExpireMailboxWatchdog() (bool, error) {
	tw, err := b.emulated()
	if err != nil {
		return false, err
	}
	return tw.tag.ExpireWatchdog(), nil
}

// HaltMCU stops the board's firmware (a hung MCU, a debugger halt): it no
// longer reads the mailbox, answers its console or uses the radio. The tag
// keeps its VCC. ResetMCU starts it again.
func (b *Board) HaltMCU() error {
	tw, err := b.emulated()
	if err != nil {
		return err
	}
	tw.mu.Lock()
	stop, done := tw.stop, tw.done
	tw.stop, tw.done = nil, nil
	tw.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	<-done
	return nil
}

// ResetMCU restarts a halted board's firmware (a reset: RAM lost, the
// context read from NVM, the tag configured again) and waits for it to boot.
func (b *Board) ResetMCU(ctx context.Context) error {
	tw, err := b.emulated()
	if err != nil {
		return err
	}
	if err := b.HaltMCU(); err != nil {
		return err
	}
	return tw.rig.startMCU(ctx, tw)
}

// rigGateway is one emulated gateway, which CutGateways may stop and
// RestoreGateways start again with the same configuration.
type rigGateway struct {
	cfg gateway.Config
	mu  sync.Mutex
	gw  *gateway.Gateway // nil while cut
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
		g.mu.Lock()
		gw := g.gw
		g.mu.Unlock()
		if gw != nil {
			gw.NoReply(context)
		}
	}
}

// CutGateways takes every emulated gateway off the network (it announces
// OFFLINE and stops forwarding): devices transmit to nobody.
func (r *Rig) CutGateways() error {
	if len(r.gateways) == 0 {
		return fmt.Errorf("gateways: %w", ErrNotEmulated)
	}
	var errs []error
	for _, g := range r.gateways {
		errs = append(errs, g.close())
	}
	return errors.Join(errs...)
}

// RestoreGateways starts the cut gateways again (connected to the broker,
// forwarding uplinks) before it returns.
func (r *Rig) RestoreGateways(ctx context.Context) error {
	if len(r.gateways) == 0 {
		return fmt.Errorf("gateways: %w", ErrNotEmulated)
	}
	for _, g := range r.gateways {
		g.mu.Lock()
		if g.gw == nil {
			gw, err := gateway.Start(r.runCtx, g.cfg) // lives until Close; ctx only bounds this call
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

// RestartBroker restarts the embedded network server's MQTT broker (every
// MQTT client is cut off). NetworkReady says when everything reconnected.
func (r *Rig) RestartBroker(ctx context.Context) error {
	if r.ns == nil {
		return fmt.Errorf("broker: %w", ErrNotEmulated)
	}
	return r.ns.RestartBroker(ctx)
}

// RestartNetworkServer restarts the embedded network server (API and its
// MQTT client; its state is kept, as ChirpStack's database is).
func (r *Rig) RestartNetworkServer(ctx context.Context) error {
	if r.ns == nil {
		return fmt.Errorf("network server: %w", ErrNotEmulated)
	}
	return r.ns.Restart(ctx)
}

// NetworkReady reports nil when every MQTT client of the rig is connected:
// the embedded network server's gateway backend, the emulated gateways and
// the network client's integration subscription; else what is not.
func (r *Rig) NetworkReady() error {
	var errs []error
	if r.ns != nil && !r.ns.MQTTReady() {
		errs = append(errs, errors.New("network server: gateway backend not subscribed"))
	}
	for _, g := range r.gateways {
		g.mu.Lock()
		gw := g.gw
		g.mu.Unlock()
		if gw != nil && !gw.Connected() {
			errs = append(errs, fmt.Errorf("gateway %s: not connected", gw.ID()))
		}
	}
	if c, ok := r.Network.(interface{ Connected() bool }); ok && !c.Connected() {
		errs = append(errs, errors.New("network client: integration not connected"))
	}
	return errors.Join(errs...)
}
