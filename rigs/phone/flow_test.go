package phone_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/provapi"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/phone"
)

// journal records, in order, what the app did at the tag and the backend.
type journal struct {
	mu  sync.Mutex
	ops []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	j.ops = append(j.ops, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.ops...)
}

// index is the position of the first op starting with prefix, or -1.
func (j *journal) index(prefix string) int {
	for i, op := range j.list() {
		if strings.HasPrefix(op, prefix) {
			return i
		}
	}
	return -1
}

// journalTag is the app's tag, noting the type of each message written and
// read.
type journalTag struct {
	phone.Tag
	j *journal
}

func (t journalTag) WriteMessage(ctx context.Context, msg []byte) error {
	if f, err := provproto.Unmarshal(msg); err == nil {
		t.j.add("write %s", f.Type)
	}
	return t.Tag.WriteMessage(ctx, msg)
}

func (t journalTag) ReadMessage(ctx context.Context) ([]byte, error) {
	b, err := t.Tag.ReadMessage(ctx)
	if f, ferr := provproto.Unmarshal(b); err == nil && ferr == nil {
		t.j.add("read %s", f.Type)
	}
	return b, err
}

// fakeBackend issues random keys, in clear or wrapped to the device, pending
// or not, and notes every call.
type fakeBackend struct {
	j       *journal
	pending bool
	join    provproto.EUI64

	mu         sync.Mutex
	clearReqs  []provapi.ClearRequest
	wrapReqs   []provapi.WrapRequest
	issued     []provproto.KCV
	confirmed  []provproto.KCV
	confirmErr error
}

func (b *fakeBackend) keys() (provproto.Keys, provproto.KCV) {
	var k provproto.Keys
	_, _ = rand.Read(k.AppKey[:])
	kcv := provproto.CheckValue(k.AppKey)
	b.mu.Lock()
	b.issued = append(b.issued, kcv)
	b.mu.Unlock()
	return k, kcv
}

func (b *fakeBackend) RegisterClear(_ context.Context, req provapi.ClearRequest) (provapi.Issued, error) {
	b.j.add("register clear reprovision=%v", req.Reprovision)
	b.mu.Lock()
	b.clearReqs = append(b.clearReqs, req)
	b.mu.Unlock()
	k, kcv := b.keys()
	return provapi.Issued{DevEUI: req.DevEUI, JoinEUI: b.join, Keys: k, KCV: kcv, Pending: b.pending}, nil
}

// confirmingBackend adds Confirm to fakeBackend.
type confirmingBackend struct{ *fakeBackend }

func (b confirmingBackend) Confirm(_ context.Context, dev provproto.EUI64, kcv provproto.KCV) error {
	b.j.add("confirm %s %s", dev, kcv)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.confirmed = append(b.confirmed, kcv)
	return b.confirmErr
}

// wrappingBackend adds RegisterWrapped and Confirm to fakeBackend.
type wrappingBackend struct{ confirmingBackend }

func (b wrappingBackend) RegisterWrapped(_ context.Context, req provapi.WrapRequest) (provapi.Issued, error) {
	b.j.add("register wrapped reprovision=%v", req.Reprovision)
	b.mu.Lock()
	b.wrapReqs = append(b.wrapReqs, req)
	b.mu.Unlock()
	k, kcv := b.keys()
	frame, err := provproto.Provision{Nonce: req.Nonce, Reprovision: req.Reprovision, Region: req.Region, JoinEUI: b.join, Keys: k}.
		MarshalWrapped(req.DevEUI, req.PublicKey)
	if err != nil {
		return provapi.Issued{}, err
	}
	return provapi.Issued{DevEUI: req.DevEUI, JoinEUI: b.join, KCV: kcv, Provision: frame, Pending: b.pending}, nil
}

type instantJoins struct{}

func (instantJoins) AwaitJoin(context.Context, provproto.EUI64) (lorawan.DevAddr, error) {
	return lorawan.DevAddr{0x01, 0x02, 0x03, 0x04}, nil
}
func (instantJoins) AwaitUplink(context.Context, provproto.EUI64) (lorawan.DevAddr, error) {
	return lorawan.DevAddr{0x01, 0x02, 0x03, 0x04}, nil
}

func newFake(pending bool) (*fakeBackend, *journal) {
	j := &journal{}
	return &fakeBackend{j: j, pending: pending, join: provproto.EUI64{0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0, 0, 1}}, j
}

// provisionWith runs the whole flow on a fresh board through backend.
func provisionWith(t *testing.T, wrapped bool, opts phone.Options, backend phone.Backend, j *journal) (phone.Result, error) {
	t.Helper()
	_, drv := boardTag(t, wrapped, opts)
	p := phone.New(journalTag{phone.NFCTag(drv), j}, backend, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Provision(ctx, provproto.RegionEU868, instantJoins{})
}

// With Options.Reprovision the registration asks for it; a pending answer is
// confirmed, with the KCV of the device's ACK, after the ACK and in the write
// key phase.
func TestProvisionConfirmsPendingKeyAfterAck(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapped=%v", wrapped), func(t *testing.T) {
			fb, j := newFake(true)
			var backend phone.Backend = confirmingBackend{fb}
			if wrapped {
				backend = wrappingBackend{confirmingBackend{fb}}
			}
			res, err := provisionWith(t, wrapped, phone.Options{Reprovision: true, Wrapped: wrapped}, backend, j)
			if err != nil {
				t.Fatalf("provision: %v (ops %q)", err, j.list())
			}
			fb.mu.Lock()
			defer fb.mu.Unlock()
			asked := len(fb.clearReqs) == 1 && fb.clearReqs[0].Reprovision
			if wrapped {
				asked = len(fb.wrapReqs) == 1 && fb.wrapReqs[0].Reprovision
			}
			if !asked {
				t.Fatalf("the registration did not ask for re-provisioning: clear %+v wrapped %d", fb.clearReqs, len(fb.wrapReqs))
			}
			if len(fb.issued) != 1 || len(fb.confirmed) != 1 || fb.confirmed[0] != fb.issued[0] || res.KCV != fb.issued[0] {
				t.Fatalf("issued %v, confirmed %v, result KCV %s: want the issued KCV confirmed once", fb.issued, fb.confirmed, res.KCV)
			}
			ack, confirm := j.index("read PROVISION_ACK"), j.index("confirm ")
			if ack < 0 || confirm < ack || j.index("write PROVISION") > ack {
				t.Fatalf("order of operations %q: want write PROVISION, read PROVISION_ACK, then confirm", j.list())
			}
			if got := j.list()[confirm]; got != "confirm "+provproto.EUI64(uniqueID).String()+" "+fb.issued[0].String() {
				t.Fatalf("confirmation %q", got)
			}
			var phases []string
			for _, tm := range res.Timings {
				phases = append(phases, tm.Phase)
			}
			if strings.Join(phases, ",") != "tap,identity,register,write key,join,uplink" {
				t.Fatalf("phases %v", phases)
			}
		})
	}
}

// An answer that is not pending (a first registration, or a device new to
// this backend) is not confirmed.
func TestProvisionDoesNotConfirmActiveKey(t *testing.T) {
	for _, reprov := range []bool{false, true} {
		fb, j := newFake(false)
		if _, err := provisionWith(t, false, phone.Options{Reprovision: reprov}, confirmingBackend{fb}, j); err != nil {
			t.Fatalf("reprovision=%v: %v", reprov, err)
		}
		if i := j.index("confirm "); i >= 0 || len(fb.confirmed) != 0 {
			t.Fatalf("reprovision=%v: confirmed a key the network already holds (ops %q)", reprov, j.list())
		}
		if fb.clearReqs[0].Reprovision != reprov {
			t.Fatalf("registration asked reprovision=%v, option %v", fb.clearReqs[0].Reprovision, reprov)
		}
	}
}

// A pending key from a backend that cannot confirm it would leave the
// device with a key the network never takes: the register phase fails, and
// nothing is written to the device.
func TestProvisionPendingWithoutConfirmerFails(t *testing.T) {
	fb, j := newFake(true)
	_, err := provisionWith(t, false, phone.Options{Reprovision: true}, fb, j)
	if phone.PhaseOf(err) != phone.PhaseRegister || !strings.Contains(err.Error(), "cannot confirm") {
		t.Fatalf("got %v, want a register phase error saying the backend cannot confirm", err)
	}
	if j.index("write PROVISION") >= 0 {
		t.Fatalf("a key was written: %q", j.list())
	}
}

// A confirmation the backend refuses fails the write key phase, naming the
// KCV the device stored.
func TestProvisionConfirmRefusedFailsWriteKey(t *testing.T) {
	fb, j := newFake(true)
	fb.confirmErr = errors.New("HTTP 502: network server down")
	_, err := provisionWith(t, false, phone.Options{Reprovision: true}, confirmingBackend{fb}, j)
	if phone.PhaseOf(err) != phone.PhaseWriteKey || !strings.Contains(err.Error(), "network server down") ||
		!strings.Contains(err.Error(), fb.issued[0].String()) {
		t.Fatalf("got %v, want a write key phase error with the backend's reason and KCV %s", err, fb.issued[0])
	}
}
