package stm32wl5

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/radio"
)

// fakeTag is a small ST25DV64KC stand-in for unit tests: the subset of the
// I2C register map the firmware uses (DS13519 Tables 12–14), the mailbox
// state machine of DS Figure 12 without watchdog, and an "RF side" for the
// test acting as phone. The full twin is emulators/st25dv.
type fakeTag struct {
	mu      sync.Mutex
	gpo     *bus.Line
	user    [8192]byte
	sys     map[uint16]byte
	pwd     [8]byte
	session bool
	ctrl    byte
	mb      []byte
	writes  []uint16 // user-memory write start addresses, for assertions
	sysLog  []uint16 // system register writes
}

func newFakeTag() *fakeTag {
	return &fakeTag{gpo: bus.NewLine(), sys: map[uint16]byte{regGPO1: 0x11, 0x0001: 0x0C, regFTM: 0x00, 0x000E: 0x1A, 0x0017: 0x51}}
}

func (t *fakeTag) Claims(addr uint16) bool { return addr == addrUser || addr == addrSys }

func (t *fakeTag) Tx(addr uint16, w, r []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	nack := func(i int) error { return &bus.NACKError{Addr: addr, Index: i} }
	if len(w) == 0 && len(r) == 0 {
		return nil // ACK polling: never busy here
	}
	if len(w) < 2 {
		return nack(len(w) + 1)
	}
	a := uint16(w[0])<<8 | uint16(w[1])
	data := w[2:]
	if addr == addrSys {
		switch {
		case a == regI2CPwd && len(data) == 17 && data[8] == 0x09:
			if string(data[:8]) == string(data[9:]) {
				t.session = string(data[:8]) == string(t.pwd[:])
			}
		case len(data) == 1:
			if !t.session {
				return nack(3)
			}
			t.sys[a] = data[0]
			t.sysLog = append(t.sysLog, a)
			if a == regFTM && data[0]&ftmMBMode == 0 {
				t.ctrl = 0
			}
		case len(data) > 1:
			return nack(4) // one byte per system-register write (DS §6.4.2)
		}
		for i := range r {
			r[i] = t.sys[a+uint16(i)]
		}
		return nil
	}
	switch {
	case len(data) == 0:
	case a < 0x2000:
		if t.ctrl&mbEN != 0 {
			return nack(3) // user EEPROM while MB_EN=1 (DS §5.1.2)
		}
		copy(t.user[a:], data)
		t.writes = append(t.writes, a)
	case a == dynMBCtrl && len(data) == 1:
		if t.sys[regFTM]&ftmMBMode == 0 {
			return nil // ACKed, ignored (ST community "ST25DV04kc enable mailbox via i2c")
		}
		if data[0]&mbEN != 0 {
			if t.ctrl&mbEN == 0 {
				t.ctrl, t.mb = mbEN, nil
			}
		} else {
			t.ctrl, t.mb = 0, nil
		}
	case a == mailbox:
		if t.ctrl&mbEN == 0 || t.ctrl&(mbHostPut|mbRFPut) != 0 {
			return nack(3)
		}
		t.mb = append([]byte(nil), data...)
		t.ctrl = mbEN | mbHostPut | 0x40
	default:
		return nack(3)
	}
	for i := range r {
		p := int(a) + i
		switch {
		case p < 0x2000:
			r[i] = t.user[p]
		case p == dynMBCtrl:
			r[i] = t.ctrl
		case p == dynMBLen:
			r[i] = byte(len(t.mb) - 1)
		case p >= mailbox && p < mailbox+len(t.mb) && t.ctrl&mbEN != 0:
			r[i] = t.mb[p-mailbox]
			if p == mailbox+len(t.mb)-1 && t.ctrl&mbRFPut != 0 {
				t.ctrl &^= mbRFPut
			}
		default:
			r[i] = 0xFF
		}
	}
	return nil
}

// phoneWrite is the RF Write Message (AAh): ok=false when the tag would
// answer error 0Fh (mailbox off or busy).
func (t *fakeTag) phoneWrite(msg []byte) bool {
	t.mu.Lock()
	if t.ctrl&mbEN == 0 || t.ctrl&(mbHostPut|mbRFPut) != 0 {
		t.mu.Unlock()
		return false
	}
	t.mb = append([]byte(nil), msg...)
	t.ctrl = mbEN | mbRFPut | 0x80
	gpoOn := t.sys[regGPO1]&(gpoEN|gpoRFPutMsgEN) == gpoEN|gpoRFPutMsgEN
	t.mu.Unlock()
	if gpoOn {
		t.gpo.Pulse()
	}
	return true
}

// phoneRead is the RF Read Message (ACh) of a host message, if one is there.
func (t *fakeTag) phoneRead() ([]byte, bool) {
	t.mu.Lock()
	if t.ctrl&mbHostPut == 0 {
		t.mu.Unlock()
		return nil, false
	}
	m := append([]byte(nil), t.mb...)
	t.ctrl &^= mbHostPut
	gpoOn := t.sys[regGPO1]&(gpoEN|gpoRFGetMsgEN) == gpoEN|gpoRFGetMsgEN
	t.mu.Unlock()
	if gpoOn {
		t.gpo.Pulse()
	}
	return m, true
}

func (t *fakeTag) userMem(n int) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.user[:n]...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval of an Eventually, not a fixed delay
	}
}

// phone is what the test does as the phone app through the fake tag.
type phone interface {
	exchange(t *testing.T, req []byte) []byte
}

type fakePhone struct{ tag *fakeTag }

func (p fakePhone) exchange(t *testing.T, req []byte) []byte {
	t.Helper()
	eventually(t, "mailbox free for the phone", func() bool { return p.tag.phoneWrite(req) })
	var resp []byte
	eventually(t, "device answer", func() bool {
		var ok bool
		resp, ok = p.tag.phoneRead()
		return ok
	})
	return resp
}

// waitEvent returns the next event of kind k (skipping others).
func waitEvent(t *testing.T, b *MCU, k EventKind) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-b.Events():
			if e.Kind == k {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event; log:\n%v", k, b.Log())
		}
	}
}

// expectEvent waits for the next event of kind k and reports an error for
// each of want its detail does not contain.
func expectEvent(t *testing.T, b *MCU, k EventKind, want ...string) Event {
	t.Helper()
	e := waitEvent(t, b, k)
	for _, w := range want {
		if !strings.Contains(e.Detail, w) {
			t.Errorf("%s %q: want %q in it", k, e.Detail, w)
		}
	}
	return e
}

// network plays the LoRaWAN network for tests: it answers JoinRequests whose
// MIC verifies with key by a JoinAccept on RX1 (JoinNonce counting from 0,
// like ChirpStack), and records data uplinks.
type network struct {
	key       [16]byte
	netID     lorawan.NetID
	devAddr   lorawan.DevAddr
	joinNonce uint32

	mu       sync.Mutex
	badMICs  int
	joinReqs []lorawan.JoinRequestPayload
	uplinks  []lorawan.PHYPayload
}

func (n *network) run(ctx context.Context, t *testing.T, air *radio.Air) {
	ups, stop := air.Listen(true)
	go func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case f := <-ups:
				n.handle(ctx, t, air, f)
			}
		}
	}()
}

func (n *network) handle(ctx context.Context, t *testing.T, air *radio.Air, f radio.Frame) {
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(f.PHYPayload); err != nil {
		t.Errorf("network: %v", err)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.MHDR.MType != lorawan.JoinRequest {
		n.uplinks = append(n.uplinks, p)
		return
	}
	jr := *p.MACPayload.(*lorawan.JoinRequestPayload)
	if ok, _ := p.ValidateUplinkJoinMIC(lorawan.AES128Key(n.key)); !ok {
		n.badMICs++
		return
	}
	n.joinReqs = append(n.joinReqs, jr)
	ja := lorawan.PHYPayload{
		MHDR: lorawan.MHDR{MType: lorawan.JoinAccept, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.JoinAcceptPayload{
			JoinNonce: lorawan.JoinNonce(n.joinNonce), HomeNetID: n.netID, DevAddr: n.devAddr,
			DLSettings: lorawan.DLSettings{RX2DataRate: 0}, RXDelay: 1,
		},
	}
	n.joinNonce++
	key := lorawan.AES128Key(n.key)
	if err := ja.SetDownlinkJoinMIC(lorawan.JoinRequestType, jr.JoinEUI, jr.DevNonce, key); err != nil {
		t.Errorf("network: %v", err)
		return
	}
	if err := ja.EncryptJoinAcceptPayload(key); err != nil {
		t.Errorf("network: %v", err)
		return
	}
	b, _ := ja.MarshalBinary()
	go air.Transmit(ctx, radio.Frame{Frequency: f.Frequency, SF: f.SF, Bandwidth: f.Bandwidth, PHYPayload: b, Sender: "test network"})
}

func (n *network) snapshot() (badMICs int, joins []lorawan.JoinRequestPayload, ups []lorawan.PHYPayload) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.badMICs, append([]lorawan.JoinRequestPayload(nil), n.joinReqs...), append([]lorawan.PHYPayload(nil), n.uplinks...)
}
