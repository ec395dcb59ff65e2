package stm32wl5

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

var (
	testUID     = UniqueIDFrom([3]byte{0x00, 0x80, 0xE1}, 0x15, 0x00051234)
	testJoinEUI = provproto.EUI64{0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x00, 0x01}
	testAppKey  = [16]byte{0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C}
)

type rig struct {
	tag   *fakeTag
	air   *radio.Air
	clock *timing.Clock
	board *MCU
	phone phone
	done  chan error
	stop  context.CancelFunc
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	tag := newFakeTag()
	return startRig(t, tag, rigConfig(t, tag, mod))
}

// rigConfig is the test board's configuration on tag (an instant clock, a
// fresh air), changed by mod when not nil.
func rigConfig(t testing.TB, tag *fakeTag, mod func(*Config)) Config {
	clock := timing.NewClock(timing.Instant)
	cfg := Config{
		UniqueID: testUID, I2C: tag, GPO: tag.gpo, Air: radio.NewAir(clock), Clock: clock,
		RXWindowCap: 100 * time.Millisecond, NDEFRefreshAfter: 200 * time.Millisecond,
		Logf: t.Logf,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func startRig(t *testing.T, tag *fakeTag, cfg Config) *rig {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{tag: tag, air: cfg.Air, clock: cfg.Clock, board: b, phone: fakePhone{tag}, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitEvent(t, b, Booted)
	return r
}

func (r *rig) identity(t *testing.T) provproto.Identity {
	t.Helper()
	f, err := provproto.Unmarshal(r.phone.exchange(t, provproto.MarshalGetIdentity()))
	if err != nil || f.Type != provproto.TypeIdentity {
		t.Fatalf("GET_IDENTITY answered %v %v", f.Type, err)
	}
	id, err := provproto.ParseIdentity(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// provision sends a PROVISION and returns the ACK, or the device's error.
func (r *rig) provision(t *testing.T, frame []byte) (provproto.Ack, error) {
	t.Helper()
	f, err := provproto.Unmarshal(r.phone.exchange(t, frame))
	if err != nil {
		t.Fatalf("device answer does not decode: %v", err)
	}
	switch f.Type {
	case provproto.TypeProvisionAck:
		return provproto.ParseAck(f.Body)
	case provproto.TypeError:
		return provproto.Ack{}, provproto.ParseError(f.Body)
	}
	t.Fatalf("answer type %s", f.Type)
	return provproto.Ack{}, nil
}

func clearProvision(t *testing.T, nonce uint32, key [16]byte, reprov bool) []byte {
	t.Helper()
	b, err := provproto.Provision{Nonce: nonce, Region: provproto.RegionEU868, JoinEUI: testJoinEUI, Keys: provproto.Keys{AppKey: key}, Reprovision: reprov}.MarshalClear()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func statusOf(t *testing.T, err error) provproto.Status {
	t.Helper()
	st, ok := provproto.StatusOf(err)
	if !ok {
		t.Fatalf("not a protocol error: %v", err)
	}
	return st
}

func TestBootConfiguresTag(t *testing.T) {
	r := newRig(t, nil)
	tag := r.tag
	eventually(t, "MB_EN", func() bool { tag.mu.Lock(); defer tag.mu.Unlock(); return tag.ctrl&mbEN != 0 })
	tag.mu.Lock()
	gpo1, ftm, session := tag.sys[regGPO1], tag.sys[regFTM], tag.session
	tag.mu.Unlock()
	if gpo1 != 0x61 || ftm != 0x01 || session {
		t.Errorf("GPO1=%02X FTM=%02X session open=%v", gpo1, ftm, session)
	}
	for _, a := range tag.writes {
		if a%16 != 0 {
			t.Errorf("NDEF write at %04Xh not row aligned", a)
		}
	}
	dev := r.board.DevEUI()
	if dev != [8]byte{0x00, 0x80, 0xE1, 0x15, 0x00, 0x05, 0x12, 0x34} {
		t.Errorf("DevEUI %X", dev)
	}
	img := tag.userMem(64)
	want := append([]byte{0xE1, 0x40, 0xFF, 0x01, 0x03, 39, 0xD4, 15, 21}, "tap2join.io:dev"...)
	want = append(want, 0x01)
	want = append(want, dev[:]...)
	want = append(want, make([]byte, 8)...)
	want = append(want, 1, 3, 1, 0, 0xFE)
	if !bytes.Equal(img[:len(want)], want) {
		t.Errorf("NDEF\n got %X\nwant %X", img[:len(want)], want)
	}
}

func TestIdentityNonceIsFresh(t *testing.T) {
	r := newRig(t, nil)
	a, b := r.identity(t), r.identity(t)
	if a.Nonce == b.Nonce {
		t.Error("nonce repeated")
	}
	if a.DevEUI != provproto.EUI64(testUID) || a.State != provproto.StateFactory || a.Firmware != [3]byte{1, 3, 1} ||
		a.Capabilities != provproto.CapLog|provproto.CapLoRaWAN11 || a.PublicKey != nil {
		t.Errorf("identity %+v", a)
	}
}

func TestProvisionRulesAndErrors(t *testing.T) {
	r := newRig(t, func(c *Config) { c.JoinAttempts = 1 })

	// Malformed frames: the codec's status comes back.
	good := clearProvision(t, r.identity(t).Nonce, testAppKey, false)
	bad := append([]byte(nil), good...)
	bad[10] ^= 0xFF
	if _, err := r.provision(t, bad); statusOf(t, err) != provproto.BadCRC {
		t.Errorf("corrupted: %v", err)
	}
	if _, err := r.provision(t, good[:len(good)-3]); statusOf(t, err) != provproto.Truncated {
		t.Errorf("truncated: %v", err)
	}
	unk, _ := provproto.Marshal(0x42, nil)
	if _, err := r.provision(t, unk); statusOf(t, err) != provproto.UnknownType {
		t.Errorf("unknown type: %v", err)
	}

	// A PROVISION without a fresh IDENTITY is a replay.
	if _, err := r.provision(t, clearProvision(t, 12345, testAppKey, false)); statusOf(t, err) != provproto.Replay {
		t.Errorf("no identity: %v", err)
	}
	id := r.identity(t)
	ack, err := r.provision(t, clearProvision(t, id.Nonce, testAppKey, false))
	if err != nil {
		t.Fatal(err)
	}
	if ack.AppKCV != provproto.CheckValue(testAppKey) || ack.JoinEUI != testJoinEUI {
		t.Errorf("ack %+v", ack)
	}
	expectEvent(t, r.board, Provisioned, provproto.CheckValue(testAppKey).String())
	// The same message again: nonce consumed → REPLAY.
	if _, err := r.provision(t, clearProvision(t, id.Nonce, testAppKey, false)); statusOf(t, err) != provproto.Replay {
		t.Errorf("replayed: %v", err)
	}
	waitEvent(t, r.board, JoinFailed) // no network here; let the join end
	// Provisioned: a new key without the flag is refused, with it accepted.
	newKey := testAppKey
	newKey[15] ^= 0xA5
	if _, err := r.provision(t, clearProvision(t, r.identity(t).Nonce, newKey, false)); statusOf(t, err) != provproto.AlreadyProvisioned {
		t.Errorf("already provisioned: %v", err)
	}
	id = r.identity(t)
	if id.State != provproto.StateProvisioned || id.JoinEUI != testJoinEUI {
		t.Errorf("identity after provisioning %+v", id)
	}
	ack, err = r.provision(t, clearProvision(t, id.Nonce, newKey, true))
	if err != nil || ack.AppKCV != provproto.CheckValue(newKey) {
		t.Fatalf("re-provision: %+v %v", ack, err)
	}
	// The NDEF state follows (rewritten once the phone has read the ACK).
	eventually(t, "NDEF state provisioned", func() bool { return r.tag.userMem(64)[44] == byte(provproto.StateProvisioned) })
	// Wrapped PROVISION to a board without the capability → UNSUPPORTED.
	waitEvent(t, r.board, JoinFailed)
	pub, _ := ecdh.X25519().GenerateKey(nil)
	id = r.identity(t)
	w, err := provproto.Provision{Nonce: id.Nonce, Region: provproto.RegionEU868, JoinEUI: testJoinEUI, Keys: provproto.Keys{AppKey: newKey}, Reprovision: true}.
		MarshalWrapped(id.DevEUI, pub.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.provision(t, w); statusOf(t, err) != provproto.Unsupported {
		t.Errorf("wrapped to clear-only board: %v", err)
	}
	// SPEC §5.6, the order of the checks: ALREADY_PROVISIONED before
	// UNSUPPORTED (the same wrapped frame, without the re-provision flag).
	id = r.identity(t)
	w, err = provproto.Provision{Nonce: id.Nonce, Region: provproto.RegionEU868, JoinEUI: testJoinEUI, Keys: provproto.Keys{AppKey: newKey}}.
		MarshalWrapped(id.DevEUI, pub.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.provision(t, w); statusOf(t, err) != provproto.AlreadyProvisioned {
		t.Errorf("unsupported and not re-provisioning: %v, want ALREADY_PROVISIONED first", err)
	}
	for _, l := range r.board.Log() {
		if strings.Contains(strings.ToUpper(l), strings.ToUpper(lorawan.AES128Key(testAppKey).String())) {
			t.Fatalf("key material in log: %q", l)
		}
	}
}

func TestWrappedProvisioning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nvm.bin")
	r := newRig(t, func(c *Config) { c.Wrapped = true; c.NVMPath = path; c.JoinAttempts = 1 })
	id := r.identity(t)
	if id.Capabilities&provproto.CapWrapped == 0 || len(id.PublicKey) != 32 {
		t.Fatalf("identity %+v", id)
	}
	p := provproto.Provision{Nonce: id.Nonce, Region: provproto.RegionEU868, JoinEUI: testJoinEUI, Keys: provproto.Keys{AppKey: testAppKey}}
	// Wrapped to somebody else's key: authentication fails.
	other, _ := ecdh.X25519().GenerateKey(nil)
	w, _ := p.MarshalWrapped(id.DevEUI, other.PublicKey().Bytes())
	if _, err := r.provision(t, w); statusOf(t, err) != provproto.UnwrapFailed {
		t.Errorf("wrong device key: %v", err)
	}
	id = r.identity(t)
	p.Nonce = id.Nonce
	w, _ = p.MarshalWrapped(id.DevEUI, id.PublicKey)
	ack, err := r.provision(t, w)
	if err != nil || ack.AppKCV != provproto.CheckValue(testAppKey) {
		t.Fatalf("wrapped: %+v %v", ack, err)
	}
	if bytes.Contains(w, testAppKey[:]) {
		t.Error("key in clear inside a wrapped PROVISION")
	}
	waitEvent(t, r.board, JoinFailed)
	// The key pair survives a reboot (kept in NVM).
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.done <- nil // consumed again by the cleanup
	tag := newFakeTag()
	r2 := startRig(t, tag, Config{UniqueID: testUID, I2C: tag, GPO: tag.gpo, Air: r.air, Clock: r.clock, Wrapped: true,
		NVMPath: path, JoinAttempts: 1, RXWindowCap: 20 * time.Millisecond})
	waitEvent(t, r2.board, JoinFailed) // provisioned at boot → joins again
	id2 := r2.identity(t)
	if !bytes.Equal(id2.PublicKey, id.PublicKey) || id2.State != provproto.StateProvisioned {
		t.Errorf("after reboot: %+v", id2)
	}
}

func TestGetLog(t *testing.T) {
	r := newRig(t, nil)
	var text []byte
	for off := 0; ; {
		f, err := provproto.Unmarshal(r.phone.exchange(t, provproto.MarshalGetLog(uint16(off))))
		if err != nil || f.Type != provproto.TypeLog {
			t.Fatalf("GET_LOG: %v %v", f.Type, err)
		}
		c, _ := provproto.ParseLog(f.Body)
		text = append(text, c.Data...)
		off += len(c.Data)
		if len(c.Data) == 0 || off >= int(c.Total) {
			break
		}
	}
	if !strings.Contains(string(text), "Booted") || !strings.Contains(string(text), "mailbox enabled") {
		t.Errorf("log %q", text)
	}
}

// TestPowerLossDuringProvisionKeepsOldState cuts the power at every flash
// step of the re-provisioning store of a joined board and checks that the
// next boot sees the old key set (joined, old key) or the new one
// (provisioned, new key), never a mix, and that no ACK was sent.
func TestPowerLossDuringProvisionKeepsOldState(t *testing.T) {
	oldKey, newKey := testAppKey, testAppKey
	newKey[0] ^= 0xFF
	for k := 1; k <= SaveSteps; k++ {
		path := filepath.Join(t.TempDir(), "nvm.bin")
		n, _, _, _ := openNVM(path)
		old := record{state: provproto.StateJoined, joinEUI: [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, rootKey: oldKey, devNonce: 7, joinNonce: 3, devAddr: [4]byte{1, 2, 3, 4}}
		if _, err := n.save(NVMWriteAny, old); err != nil {
			t.Fatal(err)
		}
		tag := newFakeTag()
		clock := timing.NewClock(timing.Instant)
		cfg := Config{UniqueID: testUID, I2C: tag, GPO: tag.gpo, Air: radio.NewAir(clock), Clock: clock, NVMPath: path,
			Faults: Faults{NVMKillAtStep: k}, RXWindowCap: 20 * time.Millisecond, JoinAttempts: 1}
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- b.Run(context.Background()) }()
		waitEvent(t, b, Booted)
		id := (&rig{phone: fakePhone{tag}}).identity(t)
		eventually(t, "mailbox free", func() bool { return tag.phoneWrite(clearProvision(t, id.Nonce, newKey, true)) })
		select {
		case err := <-done:
			if !errors.Is(err, ErrPowerLoss) {
				t.Fatalf("k=%d: Run returned %v", k, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("k=%d: board did not die", k)
		}
		if _, ok := tag.phoneRead(); ok {
			t.Errorf("k=%d: a dead board answered", k)
		}
		_, rec, found, _ := openNVM(path)
		switch {
		case !found:
			t.Fatalf("k=%d: no record", k)
		case rec.state == provproto.StateJoined && rec.rootKey == oldKey && rec.devAddr == old.devAddr && rec.devNonce == 7:
			if k >= commitSteps {
				t.Errorf("k=%d: completed write lost", k)
			}
		case rec.state == provproto.StateProvisioned && rec.rootKey == newKey && rec.devAddr == [4]byte{} && rec.devNonce == 7:
			if k < commitSteps {
				t.Errorf("k=%d: torn write valid", k)
			}
		default:
			t.Fatalf("k=%d: mixed state %+v", k, rec)
		}
	}
}
