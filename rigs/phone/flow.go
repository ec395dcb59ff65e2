package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// WrappingBackend is a backend that builds the wrapped PROVISION frame
// itself (fixtures/provisioning in wrapped mode). With Options.Wrapped the app
// uses it, so the clear AppKey never reaches the phone; a Backend without it
// gets the key in clear and the app wraps it (the key then exists on the phone).
// The answer's Provision is the frame, its KCV the check value the device's
// ACK must carry.
type WrappingBackend interface {
	RegisterWrapped(ctx context.Context, req provapi.WrapRequest) (provapi.Issued, error)
}

// Confirmer is a backend that issues re-provisioning keys pending
// confirmation (provapi.Issued.Pending): the network keeps the device's old
// key until the app confirms, after the device's PROVISION_ACK, the KCV the
// device acknowledged. fixtures/provisioning.Client is one.
type Confirmer interface {
	Confirm(ctx context.Context, dev provproto.EUI64, kcv provproto.KCV) error
}

// Phase names of the provisioning flow, in order.
const (
	PhaseTap      = "tap"       // read the NDEF identity
	PhaseIdentity = "identity"  // GET_IDENTITY over the mailbox
	PhaseRegister = "register"  // HTTPS registration, AppKey issued
	PhaseWriteKey = "write key" // PROVISION over the mailbox, ACK checked (and a pending key confirmed)
	PhaseJoin     = "join"      // the network server reports a join (JoinAccept sent)
	PhaseUplink   = "uplink"    // the device's first uplink, decrypted by the server
)

// PhaseError says which phase of the flow failed.
type PhaseError struct {
	Phase string
	Err   error
}

func (e *PhaseError) Error() string { return fmt.Sprintf("phase %q failed: %v", e.Phase, e.Err) }
func (e *PhaseError) Unwrap() error { return e.Err }

// PhaseOf returns the failed phase named by err, or "".
func PhaseOf(err error) string {
	var pe *PhaseError
	if errors.As(err, &pe) {
		return pe.Phase
	}
	return ""
}

// Timing is one phase's measured wall time.
type Timing struct {
	Phase string
	Wall  time.Duration
}

// Result is the outcome of a provisioning flow. It holds no key material.
type Result struct {
	DevEUI  provproto.EUI64
	JoinEUI provproto.EUI64
	KCV     provproto.KCV
	DevAddr lorawan.DevAddr
	Timings []Timing
}

// Total is the wall time from tap to join.
func (r Result) Total() time.Duration {
	var t time.Duration
	for _, p := range r.Timings {
		t += p.Wall
	}
	return t
}

// JoinWaiter waits for the network server's events for a device.
//
// Both are needed: ChirpStack publishes its join event when it sends the
// JoinAccept, but a LoRaWAN 1.0.4 device may drop that JoinAccept (a real
// STM32WL drops JoinNonce 0, ChirpStack's first: STM32CubeWL LoRaMacCrypto.c
// IsJoinNonce10xOk against ChirpStack v4 storage/device_keys.rs, which starts
// join_nonce at 0; UNCONFIRMED on hardware) and join on a later attempt. Only an uplink the
// server decrypts proves the device holds the session the server holds.
type JoinWaiter interface {
	AwaitJoin(ctx context.Context, devEUI provproto.EUI64) (lorawan.DevAddr, error)
	AwaitUplink(ctx context.Context, devEUI provproto.EUI64) (lorawan.DevAddr, error)
}

// Provision runs the whole flow of the solution brief: tap, identity,
// register, write key, join, first uplink. Each phase is timed; a failure is a *PhaseError.
//
// With Options.Reprovision the registration asks for re-provisioning. If the
// backend answers a pending key, the write key phase ends, once the device's
// ACK is checked, with the backend's Confirm of the acknowledged KCV (the
// network takes the new key only then); a backend that is no Confirmer fails
// the register phase before anything is written to the device.
func (p *Phone) Provision(ctx context.Context, region byte, joins JoinWaiter) (Result, error) {
	var res Result
	step := func(name string, f func() error) error {
		start := time.Now()
		err := f()
		res.Timings = append(res.Timings, Timing{Phase: name, Wall: time.Since(start)})
		if err != nil {
			return &PhaseError{Phase: name, Err: err}
		}
		return nil
	}
	var nid NDEFIdentity
	if err := step(PhaseTap, func() (err error) { nid, err = p.ReadNDEFIdentity(ctx); return }); err != nil {
		return res, err
	}
	res.DevEUI = nid.DevEUI
	var id provproto.Identity
	if err := step(PhaseIdentity, func() (err error) {
		if id, err = p.Identity(ctx); err != nil {
			return err
		}
		if id.DevEUI != nid.DevEUI {
			return fmt.Errorf("mailbox identity DevEUI %s differs from NDEF DevEUI %s", id.DevEUI, nid.DevEUI)
		}
		return nil
	}); err != nil {
		return res, err
	}
	var iss provapi.Issued
	var confirmer Confirmer
	if err := step(PhaseRegister, func() (err error) {
		if wb, ok := p.backend.(WrappingBackend); ok && p.opts.Wrapped {
			if id.Capabilities&provproto.CapWrapped == 0 {
				return errors.New("wrapped mode requested but the device does not offer it")
			}
			iss, err = wb.RegisterWrapped(ctx, provapi.WrapRequest{
				DevEUI: id.DevEUI, Location: p.opts.Location, PublicKey: id.PublicKey,
				Nonce: id.Nonce, Region: region, Reprovision: p.opts.Reprovision,
			})
		} else {
			iss, err = p.backend.RegisterClear(ctx, provapi.ClearRequest{
				DevEUI: id.DevEUI, Location: p.opts.Location, Reprovision: p.opts.Reprovision,
			})
		}
		if err != nil || !iss.Pending {
			return err
		}
		var ok bool
		if confirmer, ok = p.backend.(Confirmer); !ok {
			return fmt.Errorf("the backend issued key KCV %s pending confirmation but cannot confirm it (no Confirm method); not writing it", iss.AckKCV())
		}
		return nil
	}); err != nil {
		return res, err
	}
	res.JoinEUI, res.KCV = iss.JoinEUI, iss.AckKCV()
	if err := step(PhaseWriteKey, func() error {
		ack, err := p.WriteKey(ctx, id, iss, region)
		if err != nil || !iss.Pending {
			return err
		}
		// The device holds the new key (WriteKey checked its KCV): now the
		// network may take it and retire the old one.
		if err := confirmer.Confirm(ctx, id.DevEUI, ack.AppKCV); err != nil {
			return fmt.Errorf("the device stored key KCV %s but the backend did not confirm it: %w", ack.AppKCV, err)
		}
		return nil
	}); err != nil {
		return res, err
	}
	if err := step(PhaseJoin, func() (err error) { res.DevAddr, err = joins.AwaitJoin(ctx, id.DevEUI); return }); err != nil {
		return res, err
	}
	if err := step(PhaseUplink, func() (err error) { res.DevAddr, err = joins.AwaitUplink(ctx, id.DevEUI); return }); err != nil {
		return res, err
	}
	return res, nil
}
