package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/fixtures/provproto"
)

// Location and Issued mirror the backend's types so this package needs no
// backend import; fixtures/provisioning.Client satisfies Backend through a
// one-line adapter (see rigs).
type Location struct {
	Latitude, Longitude, Altitude float64
}

// Issued is a registration answer. Keys prints only check values.
type Issued struct {
	JoinEUI provproto.EUI64
	Keys    provproto.Keys
}

// Phase names of the provisioning flow, in order.
const (
	PhaseTap      = "tap"       // read the NDEF identity
	PhaseIdentity = "identity"  // GET_IDENTITY over the mailbox
	PhaseRegister = "register"  // HTTPS registration, AppKey issued
	PhaseWriteKey = "write key" // PROVISION over the mailbox, ACK checked
	PhaseJoin     = "join"      // the network server reports the join
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

// JoinWaiter waits for the network server's join event for a device and
// returns its DevAddr (fixtures/lns through an adapter).
type JoinWaiter interface {
	AwaitJoin(ctx context.Context, devEUI provproto.EUI64) (devAddr string, err error)
}

// Provision runs the whole flow of the solution brief: tap, identity,
// register, write key, join. Each phase is timed; a failure is a *PhaseError.
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
		iss, err = p.backend.Register(ctx, id.DevEUI, provproto.EUI64{}, p.opts.Location)
		return err
	}); err != nil {
		return res, err
	}
	res.JoinEUI, res.KCV = iss.JoinEUI, provproto.CheckValue(iss.Keys.AppKey)
	if err := step(PhaseWriteKey, func() error { _, err := p.WriteKey(ctx, id, iss, region); return err }); err != nil {
		return res, err
	}
	if err := step(PhaseJoin, func() (err error) { res.DevAddr, err = joins.AwaitJoin(ctx, id.DevEUI); return }); err != nil {
		return res, err
	}
	return res, nil
}
