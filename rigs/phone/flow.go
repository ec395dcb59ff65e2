package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// Location and Issued mirror the backend's types so this package needs no
// backend import; fixtures/provisioning.Client satisfies Backend through a
// one-line adapter (see rigs).
type Location struct {
	Latitude, Longitude, Altitude float64
}

// Issued is a registration answer. Keys prints only check values.
//
// In wrapped mode (a WrappingBackend) Keys stays zero: the backend sends
// Provision, the complete PROVISION frame with the key block wrapped to the
// device, and KCV, the check value the device's ACK must carry — the app
// never holds the clear key.
type Issued struct {
	JoinEUI   provproto.EUI64
	Keys      provproto.Keys
	KCV       provproto.KCV // set in wrapped mode; derived from Keys otherwise
	Provision []byte        // wrapped mode: the frame to write as is
}

// kcv is the check value the device must acknowledge.
func (i Issued) kcv() provproto.KCV {
	if len(i.Provision) > 0 {
		return i.KCV
	}
	return provproto.CheckValue(i.Keys.AppKey)
}

// WrapRequest carries what a backend needs to wrap the keys to the device:
// values of the device's IDENTITY message (SPEC.md §3.1) and the region code.
type WrapRequest struct {
	DevEUI, JoinEUI provproto.EUI64
	Location        *Location
	PublicKey       []byte
	Nonce           uint32
	Region          byte
	Reprovision     bool
}

// WrappingBackend is a backend that builds the wrapped PROVISION frame
// itself (fixtures/provisioning in wrapped mode). With Options.Wrapped the app
// uses it, so the clear AppKey never reaches the phone; a Backend without it
// gets the key in clear and the app wraps it (the key then exists on the phone).
type WrappingBackend interface {
	RegisterWrapped(ctx context.Context, req WrapRequest) (Issued, error)
}

// Phase names of the provisioning flow, in order.
const (
	PhaseTap      = "tap"       // read the NDEF identity
	PhaseIdentity = "identity"  // GET_IDENTITY over the mailbox
	PhaseRegister = "register"  // HTTPS registration, AppKey issued
	PhaseWriteKey = "write key" // PROVISION over the mailbox, ACK checked
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
	DevAddr string
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
// STM32WL drops JoinNonce 0, ChirpStack's first; reference/
// lorawan-chirpstack.md §1.5) and join on a later attempt. Only an uplink the
// server decrypts proves the device holds the session the server holds.
type JoinWaiter interface {
	AwaitJoin(ctx context.Context, devEUI provproto.EUI64) (devAddr string, err error)
	AwaitUplink(ctx context.Context, devEUI provproto.EUI64) (devAddr string, err error)
}

// Provision runs the whole flow of the solution brief: tap, identity,
// register, write key, join, first uplink. Each phase is timed; a failure is a *PhaseError.
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
	var iss Issued
	if err := step(PhaseRegister, func() (err error) {
		if wb, ok := p.backend.(WrappingBackend); ok && p.opts.Wrapped {
			if id.Capabilities&provproto.CapWrapped == 0 {
				return errors.New("wrapped mode requested but the device does not offer it")
			}
			iss, err = wb.RegisterWrapped(ctx, WrapRequest{
				DevEUI: id.DevEUI, Location: p.opts.Location, PublicKey: id.PublicKey,
				Nonce: id.Nonce, Region: region, Reprovision: p.opts.Reprovision,
			})
			return err
		}
		iss, err = p.backend.Register(ctx, id.DevEUI, provproto.EUI64{}, p.opts.Location)
		return err
	}); err != nil {
		return res, err
	}
	res.JoinEUI, res.KCV = iss.JoinEUI, iss.kcv()
	if err := step(PhaseWriteKey, func() error { _, err := p.WriteKey(ctx, id, iss, region); return err }); err != nil {
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
