// Package phone plays the provisioning app of the solution brief: it taps a
// device, reads its identity from the tag (NDEF, then the FTM mailbox), has the
// backend register it and issue its AppKey, writes the key through the mailbox
// and checks the device's acknowledgement by key check value.
//
// It speaks the protocol of fixtures/proto/provproto/SPEC.md through any Tag (the
// rigs/nfc ST25DV driver over a direct or PC/SC transport), so the same code
// drives an emulated board and a real one.
package phone

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/ndef"
	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// Tag is the part of the ST25DV driver the app needs.
type Tag interface {
	// IdentityRecord returns the payload of the tap2join.io:dev NDEF record.
	IdentityRecord(ctx context.Context) ([]byte, error)
	// WriteMessage puts a message into the FTM mailbox (RF Write Message).
	WriteMessage(ctx context.Context, msg []byte) error
	// HostMessagePending reports whether the device has put a message for the
	// phone (MB_CTRL_Dyn HOST_PUT_MSG).
	HostMessagePending(ctx context.Context) (bool, error)
	// ReadMessage reads the whole mailbox message (RF Read Message).
	ReadMessage(ctx context.Context) ([]byte, error)
	// MailboxPoller: both PUT bits of MB_CTRL_Dyn, for streaming and for
	// ST25FTM's packet-by-packet pacing.
	MailboxPoller
}

// Backend registers a device and issues its keys in clear
// (fixtures/provisioning.Client, or any client of the API of
// fixtures/proto/provapi). With req.Reprovision a registered device is issued
// a new key, pending until confirmed (see Confirmer).
type Backend interface {
	RegisterClear(ctx context.Context, req provapi.ClearRequest) (provapi.Issued, error)
}

// Phone is the app on one phone, tapping one tag.
type Phone struct {
	tag     Tag
	backend Backend
	opts    Options

	// lastWrite is the start of the last ST25FTM packet write (a
	// profile's CommandGap counts from it).
	lastWrite time.Time

	mu      sync.Mutex
	stale   int // unread answers of earlier requests discarded (writeRequest)
	resumes int // ST25FTM segments resumed after a field loss (sendFTM)
}

// Options tune the app.
type Options struct {
	// Poll is the first interval between mailbox status polls; it doubles up
	// to PollMax. Real apps poll every ~10 ms (ant9000/st25dv_mailbox lib/st25dv.dart polls every 10 ms).
	Poll, PollMax time.Duration
	// ReplyTimeout bounds the wait for the device's answer to one message.
	ReplyTimeout time.Duration
	// Wrapped asks for the AppKey to cross the air wrapped to the device's
	// public key (SPEC.md §3.2); it fails if the device cannot.
	Wrapped bool
	// Location is the install position sent to the backend.
	Location *provapi.Location
	// Reprovision allows giving an already provisioned device a new key
	// (SPEC.md §5.3): the PROVISION carries the re-provision flag and the
	// registration asks the backend for a new key (Phone.Provision).
	Reprovision bool
	// MailboxProtocol is how messages cross the mailbox: MailboxTap2join
	// ("" too: one frame per message) or MailboxST25FTM (SPEC.md §8).
	MailboxProtocol string
	// FieldReturn is how long, over ST25FTM, the phone waits for the field
	// to come back after an RF command got no answer before it gives up
	// (default 1 s, ST25FTM's ack timeout; UNCONFIRMED for phone apps,
	// which re-detect the tag). When it comes back the segment resumes.
	FieldReturn time.Duration
}

// New returns an app driving tag and backend.
func New(tag Tag, backend Backend, opts Options) *Phone {
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Microsecond
	}
	if opts.PollMax <= 0 {
		opts.PollMax = 10 * time.Millisecond
	}
	if opts.FieldReturn <= 0 {
		opts.FieldReturn = time.Second
	}
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = 5 * time.Second
	}
	return &Phone{tag: tag, backend: backend, opts: opts}
}

// NDEFIdentity is the device identity read from the tag's NDEF (SPEC.md §6).
type NDEFIdentity struct {
	DevEUI, JoinEUI provproto.EUI64
	Firmware        [3]byte
	State           provproto.State
}

// ReadNDEFIdentity reads and decodes the tap2join.io:dev record.
func (p *Phone) ReadNDEFIdentity(ctx context.Context) (NDEFIdentity, error) {
	b, err := p.tag.IdentityRecord(ctx)
	if err != nil {
		return NDEFIdentity{}, fmt.Errorf("phone: read NDEF identity: %w", err)
	}
	return ParseNDEFIdentity(b)
}

// ParseNDEFIdentity decodes the record payload of SPEC.md §6.
func ParseNDEFIdentity(b []byte) (NDEFIdentity, error) {
	if len(b) != 21 {
		return NDEFIdentity{}, fmt.Errorf("phone: NDEF identity of %d bytes, want 21", len(b))
	}
	if b[0] != 0x01 {
		return NDEFIdentity{}, fmt.Errorf("phone: NDEF identity version %d, want 1", b[0])
	}
	var id NDEFIdentity
	copy(id.DevEUI[:], b[1:9])
	copy(id.JoinEUI[:], b[9:17])
	copy(id.Firmware[:], b[17:20])
	id.State = provproto.State(b[20])
	return id, nil
}

// writeRequest puts req into the mailbox. A Write Message refused with an
// ISO error (DS §7.6.31: 0Fh while the mailbox holds a message) over an
// answer nobody read — this phone or another was lifted before reading the
// answer to an earlier request — reads that answer out, discards it (it
// answers a request of an earlier tap; the device nonce makes sure it is
// never mistaken for a fresh one) and writes again, once.
func (p *Phone) writeRequest(ctx context.Context, req []byte) error {
	err := p.tag.WriteMessage(ctx, req)
	var iso *nfc.ISOError
	if err == nil || !errors.As(err, &iso) {
		return err
	}
	pending, perr := p.tag.HostMessagePending(ctx)
	if perr != nil || !pending {
		return err
	}
	if _, rerr := p.tag.ReadMessage(ctx); rerr != nil {
		return fmt.Errorf("%w; reading out the unread answer of an earlier request: %v", err, rerr)
	}
	p.mu.Lock()
	p.stale++
	p.mu.Unlock()
	return p.tag.WriteMessage(ctx, req)
}

// StaleAnswers counts the unread answers of earlier requests this phone
// found in the mailbox and discarded.
func (p *Phone) StaleAnswers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stale
}

// Exchange writes one request into the mailbox and waits for the device's
// answer frame, returning its decoded frame. An ERROR answer becomes a
// *provproto.Error carrying the device's status.
func (p *Phone) Exchange(ctx context.Context, req []byte) (provproto.Frame, error) {
	if p.opts.MailboxProtocol == MailboxST25FTM {
		return p.exchangeFTM(ctx, req)
	}
	if err := p.writeRequest(ctx, req); err != nil {
		return provproto.Frame{}, fmt.Errorf("write request: %w", err)
	}
	return p.awaitAnswer(ctx)
}

// Post writes a request and leaves without its answer, as a phone lifted
// right after writing does; PendingAnswer reads the answer on the next tap.
// Over ST25FTM the request's segments are acknowledged but the last one's
// status byte is left in the mailbox.
func (p *Phone) Post(ctx context.Context, req []byte) error {
	if p.opts.MailboxProtocol == MailboxST25FTM {
		ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
		defer cancel()
		if err := p.sendFTM(ctx, append([]byte{provproto.FTMRequest}, req...), ftmOut{noLastStatus: true}); err != nil {
			return p.ftmErr(ctx, "write request", err)
		}
		return nil
	}
	if err := p.writeRequest(ctx, req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return nil
}

// PendingAnswer reads the answer to a request written earlier (by Post, or
// by an exchange the phone was lifted out of) and decodes it as Exchange
// does: what a re-tapping phone reads.
func (p *Phone) PendingAnswer(ctx context.Context) (provproto.Frame, error) {
	if p.opts.MailboxProtocol == MailboxST25FTM {
		ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
		defer cancel()
		f, err := p.receiveFTMAnswer(ctx)
		if err != nil && !isDeviceError(err) {
			return f, p.ftmErr(ctx, "answer", err)
		}
		return f, err
	}
	return p.awaitAnswer(ctx)
}

// awaitAnswer polls for the device's answer frame within ReplyTimeout and
// reads it.
func (p *Phone) awaitAnswer(ctx context.Context) (provproto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
	defer cancel()
	wait := p.opts.Poll
	for {
		ok, err := p.tag.HostMessagePending(ctx)
		if err != nil {
			if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
				// The reply deadline ran out during the poll: that, not
				// the interrupted read, is what went wrong.
				return provproto.Frame{}, fmt.Errorf("no answer from the device within %v: %w", p.opts.ReplyTimeout, ctx.Err())
			}
			return provproto.Frame{}, fmt.Errorf("poll mailbox: %w", err)
		}
		if ok {
			break
		}
		if err := waitTimer(ctx, wait); err != nil {
			return provproto.Frame{}, fmt.Errorf("no answer from the device within %v: %w", p.opts.ReplyTimeout, ctx.Err())
		}
		wait = min(wait*2, p.opts.PollMax)
	}
	raw, err := p.tag.ReadMessage(ctx)
	if err != nil {
		return provproto.Frame{}, fmt.Errorf("read answer: %w", err)
	}
	return decodeAnswer(raw)
}

// Identity asks the device for its identity over the mailbox.
func (p *Phone) Identity(ctx context.Context) (provproto.Identity, error) {
	return exchangeAs(ctx, p, "get identity", provproto.MarshalGetIdentity(), provproto.TypeIdentity, provproto.ParseIdentity)
}

// exchangeAs sends msg and parses the answer, which must be a want frame;
// errors start with "phone: " and op.
func exchangeAs[T any](ctx context.Context, p *Phone, op string, msg []byte, want provproto.Type, parse func([]byte) (T, error)) (T, error) {
	var zero T
	f, err := p.Exchange(ctx, msg)
	if err != nil {
		return zero, fmt.Errorf("phone: %s: %w", op, err)
	}
	if f.Type != want {
		return zero, fmt.Errorf("phone: %s: device answered %s", op, f.Type)
	}
	v, err := parse(f.Body)
	if err != nil {
		return zero, fmt.Errorf("phone: %s: %w", op, err)
	}
	return v, nil
}

// WriteKey sends the issued keys with a PROVISION for the identity just read
// and checks the acknowledgement's key check values. It does not confirm a
// pending key (Provision does): a caller that writes one (iss.Pending) must
// confirm the acknowledged KCV to the backend, or the network keeps the
// device's old key.
func (p *Phone) WriteKey(ctx context.Context, id provproto.Identity, iss provapi.Issued, region byte) (provproto.Ack, error) {
	msg := provproto.Provision{Nonce: id.Nonce, Reprovision: p.opts.Reprovision, Region: region, JoinEUI: iss.JoinEUI, Keys: iss.Keys}
	var raw []byte
	var err error
	if len(iss.Provision) > 0 {
		// Wrapped by the backend for this IDENTITY's nonce: forward as is.
		raw = iss.Provision
	} else if p.opts.Wrapped {
		if id.Capabilities&provproto.CapWrapped == 0 {
			return provproto.Ack{}, errors.New("phone: write key: wrapped mode requested but the device does not offer it")
		}
		raw, err = msg.MarshalWrapped(id.DevEUI, id.PublicKey)
	} else {
		raw, err = msg.MarshalClear()
	}
	if err != nil {
		return provproto.Ack{}, fmt.Errorf("phone: write key: %w", err)
	}
	ack, err := exchangeAs(ctx, p, "write key", raw, provproto.TypeProvisionAck, provproto.ParseAck)
	if err != nil {
		return provproto.Ack{}, err
	}
	if want := iss.AckKCV(); ack.AppKCV != want {
		return ack, fmt.Errorf("phone: write key: device acknowledged a key with KCV %s, issued KCV %s", ack.AppKCV, want)
	}
	if ack.JoinEUI != iss.JoinEUI {
		return ack, fmt.Errorf("phone: write key: device stored JoinEUI %s, issued %s", ack.JoinEUI, iss.JoinEUI)
	}
	return ack, nil
}

// ReadLog reads the device's log ring over the mailbox (service engineers).
func (p *Phone) ReadLog(ctx context.Context) ([]byte, error) {
	var out []byte
	for {
		c, err := exchangeAs(ctx, p, "read log", provproto.MarshalGetLog(uint16(len(out))), provproto.TypeLog, provproto.ParseLog)
		if err != nil {
			return out, err
		}
		out = append(out, c.Data...)
		if len(c.Data) == 0 || len(out) >= int(c.Total) {
			return out, nil
		}
	}
}

// IdentityRecordType is the NFC Forum external type of the identity record
// (SPEC.md §6).
const IdentityRecordType = "tap2join.io:dev"

// NFCTag adapts the rigs/nfc ST25DV driver to the app's Tag.
func NFCTag(d *nfc.ST25DV) Tag { return nfcTag{d} }

type nfcTag struct{ d *nfc.ST25DV }

func (t nfcTag) IdentityRecord(ctx context.Context) ([]byte, error) {
	recs, err := t.d.ReadNDEF(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.TNF == ndef.TNFExternal && string(r.Type) == IdentityRecordType {
			return r.Payload, nil
		}
	}
	return nil, fmt.Errorf("no %s record among %d NDEF records", IdentityRecordType, len(recs))
}

func (t nfcTag) WriteMessage(ctx context.Context, msg []byte) error {
	return t.d.WriteMessage(ctx, msg)
}
func (t nfcTag) ReadMessage(ctx context.Context) ([]byte, error) { return t.d.ReadMessage(ctx) }

func (t nfcTag) HostMessagePending(ctx context.Context) (bool, error) {
	st, err := t.d.MailboxStatus(ctx)
	if err != nil {
		return false, err
	}
	return st.HostPut, nil
}
