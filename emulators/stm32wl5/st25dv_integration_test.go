package stm32wl5

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// rfPhone is the phone app's side against the real tag twin: ISO 15693
// addressed frames (flags 22h = Address + high data rate, as Android sends,
// AOSP system/nfc rw_i93.cc) with the ST custom mailbox commands
// (DS §7.6.31–§7.6.34; IC mfg code 02h).
type rfPhone struct {
	tag *st25dv.Tag
	uid []byte // LSB first, as on air
}

func newRFPhone(tag *st25dv.Tag) *rfPhone {
	u := tag.UID()
	lsb := make([]byte, 8)
	for i := range 8 {
		lsb[i] = u[7-i]
	}
	return &rfPhone{tag: tag, uid: lsb}
}

func (p *rfPhone) cmd(t *testing.T, code byte, params ...byte) []byte {
	t.Helper()
	req := append([]byte{0x22, code, 0x02}, p.uid...)
	resp, err := p.tag.Transceive(context.Background(), append(req, params...))
	if err != nil {
		t.Fatalf("transceive %02X: %v", code, err)
	}
	return resp
}

func (p *rfPhone) exchange(t *testing.T, req []byte) []byte {
	t.Helper()
	// Write Message (AAh): MSGLength = n−1, then the message. Error 0Fh
	// while the mailbox is busy or off → retry.
	eventually(t, "Write Message accepted", func() bool {
		r := p.cmd(t, 0xAA, append([]byte{byte(len(req) - 1)}, req...)...)
		return len(r) == 1 && r[0] == 0x00
	})
	// Poll MB_CTRL_Dyn (Read Dynamic Configuration ADh, pointer 0Dh) for
	// HOST_PUT_MSG, as the phone app does (SPEC.md §1).
	eventually(t, "HOST_PUT_MSG", func() bool {
		r := p.cmd(t, 0xAD, 0x0D)
		return len(r) == 2 && r[0] == 0 && r[1]&mbHostPut != 0
	})
	// Read Message (ACh) pointer 00h, length 00h = the whole message.
	r := p.cmd(t, 0xAC, 0x00, 0x00)
	if len(r) < 2 || r[0] != 0 {
		t.Fatalf("Read Message: % X", r)
	}
	return r[1:]
}

func (p *rfPhone) readBlocks(t *testing.T, n int) []byte {
	t.Helper()
	var out []byte
	for blk := range n {
		// Read Single Block (20h) is an ISO command: no IC mfg code.
		req := append([]byte{0x22, 0x20}, p.uid...)
		resp, err := p.tag.Transceive(context.Background(), append(req, byte(blk)))
		if err != nil || len(resp) != 5 || resp[0] != 0 {
			t.Fatalf("read block %d: % X %v", blk, resp, err)
		}
		out = append(out, resp[1:]...)
	}
	return out
}

// TestWithST25DVTwin attaches the real tag twin to a bus.Bus and runs the
// whole flow from the RF side: the NDEF identity, GET_IDENTITY, PROVISION,
// PROVISION_ACK, then the join on the air.
func TestWithST25DVTwin(t *testing.T) {
	clock := timing.NewClock(timing.Instant)
	tag := st25dv.New(st25dv.Config{UID: [8]byte{0xE0, 0x02, 0x51, 0x00, 0x06, 0x11, 0x84, 0xD9}, Clock: clock})
	tag.SetVCC(true)
	var i2c bus.Bus
	i2c.Attach(tag.I2C())
	air := radio.NewAir(clock)
	b, err := New(Config{UniqueID: testUID, I2C: &i2c, GPO: tag.GPO(), Air: air, Clock: clock,
		RXWindowCap: 100 * time.Millisecond, NDEFRefreshAfter: 200 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitEvent(t, b, Booted)
	tag.FieldOn()
	phone := newRFPhone(tag)
	r := &rig{air: air, clock: clock, board: b, phone: phone}

	// The NDEF identity is readable from the RF side once the mailbox is up.
	eventually(t, "mailbox enabled", func() bool {
		resp := phone.cmd(t, 0xAD, 0x0D)
		return len(resp) == 2 && resp[1]&mbEN != 0
	})
	dev := b.DevEUI()
	ndef := phone.readBlocks(t, 12)
	if !bytes.Equal(ndef[:4], []byte{0xE1, 0x40, 0xFF, 0x01}) || !bytes.Contains(ndef, []byte("tap2join.io:dev")) ||
		!bytes.Contains(ndef, dev[:]) {
		t.Fatalf("NDEF % X", ndef)
	}

	nw := provisionAndJoin(t, r, testAppKey)
	expectEvent(t, b, JoinAccepted, "JoinNonce 1")
	waitEvent(t, b, Uplink)
	if bad, joins, _ := nw.snapshot(); bad != 0 || len(joins) != 2 {
		t.Errorf("network: %d bad MICs, %d joins", bad, len(joins))
	}
	// Re-provisioning needs a fresh identity and the flag.
	if _, err := r.provision(t, clearProvision(t, r.identity(t).Nonce, testAppKey, false)); statusOf(t, err) != provproto.AlreadyProvisioned {
		t.Errorf("already provisioned: %v", err)
	}
	eventually(t, "NDEF state joined", func() bool { return phone.readBlocks(t, 12)[44] == byte(provproto.StateJoined) })
}

// TestST25FTMWithST25DVTwin runs the firmware's ST25FTM mode against the
// real tag twin from the RF side with literal packets: its GPO1 is ST's
// glue's (71h), ST's GET_BOARD_INFO (00h) as one single-packet segment —
// ctrl 71h (in segment, single, ack+CRC, length), length 05h, the command
// byte, CRC32 of "00" C7 04 DD 7B (the ST25 SDK's vector) — gets the status
// byte 80h, then the answer packet, and a corrupted copy gets 81h.
func TestST25FTMWithST25DVTwin(t *testing.T) {
	clock := timing.NewClock(timing.Instant)
	tag := st25dv.New(st25dv.Config{UID: [8]byte{0xE0, 0x02, 0x51, 0x00, 0x06, 0x11, 0x84, 0xD9}, Clock: clock})
	tag.SetVCC(true)
	var i2c bus.Bus
	i2c.Attach(tag.I2C())
	b, err := New(Config{UniqueID: testUID, I2C: &i2c, GPO: tag.GPO(), Air: radio.NewAir(clock), Clock: clock,
		MailboxProtocol: "st25ftm", RXWindowCap: 100 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitEvent(t, b, Booted)
	tag.FieldOn()
	phone := newRFPhone(tag)
	eventually(t, "mailbox enabled", func() bool {
		resp := phone.cmd(t, 0xAD, 0x0D)
		return len(resp) == 2 && resp[1]&mbEN != 0
	})
	// Read Configuration (A0h) of GPO1 (00h): no password needed to read.
	if r := phone.cmd(t, 0xA0, 0x00); !bytes.Equal(r, []byte{0x00, 0x71}) {
		t.Errorf("GPO1 = % X, want 00 71 (ST25FTM glue)", r)
	}
	get := func(what string) []byte {
		t.Helper()
		eventually(t, what, func() bool {
			r := phone.cmd(t, 0xAD, 0x0D)
			return len(r) == 2 && r[0] == 0 && r[1]&mbHostPut != 0
		})
		r := phone.cmd(t, 0xAC, 0x00, 0x00)
		if len(r) < 2 || r[0] != 0 {
			t.Fatalf("Read Message: % X", r)
		}
		return r[1:]
	}
	put := func(msg []byte) {
		t.Helper()
		eventually(t, "Write Message accepted", func() bool {
			r := phone.cmd(t, 0xAA, append([]byte{byte(len(msg) - 1)}, msg...)...)
			return len(r) == 1 && r[0] == 0x00
		})
	}

	put([]byte{0x71, 0x05, 0x00, 0xC7, 0x04, 0xDD, 0x7A}) // last CRC byte wrong
	if st := get("status of the corrupted segment"); !bytes.Equal(st, []byte{0x81}) {
		t.Fatalf("status % X, want 81 (CRC error)", st)
	}
	put([]byte{0x71, 0x05, 0x00, 0xC7, 0x04, 0xDD, 0x7B})
	if st := get("status of the segment"); !bytes.Equal(st, []byte{0x80}) {
		t.Fatalf("status % X, want 80 (segment OK)", st)
	}
	ans := get("answer packet")
	want := append([]byte{0x80, 0x81}, "tap2join 1.3.1"...)
	// ctrl 71h, length = data + CRC, the answer, CRC32 (STM32 unit, MSB first).
	if len(ans) != 2+len(want)+4 || ans[0] != 0x71 || int(ans[1]) != len(want)+4 || !bytes.Equal(ans[2:2+len(want)], want) {
		t.Fatalf("answer % X, want 71 %02X % X + CRC", ans, len(want)+4, want)
	}
	put([]byte{0x80}) // the phone's status for the answer's segment
	eventually(t, "mailbox free", func() bool {
		r := phone.cmd(t, 0xAD, 0x0D)
		return len(r) == 2 && r[1]&(mbHostPut|mbRFPut) == 0
	})
}

// Unread events do not pile up without bound: a full queue drops its
// oldest event, so the newest (Ready, which a rig waits for after a power
// cycle) is always the last one queued.
func TestEventQueueKeepsTheNewest(t *testing.T) {
	clock := timing.NewClock(timing.Instant)
	tag := st25dv.New(st25dv.Config{UID: [8]byte{0xE0, 0x02, 0x51, 0x00, 0x06, 0x11, 0x84, 0xD9}, Clock: clock})
	var i2c bus.Bus
	i2c.Attach(tag.I2C())
	b, err := New(Config{UniqueID: testUID, I2C: &i2c, GPO: tag.GPO(), Air: radio.NewAir(clock), Clock: clock, Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range eventQueue + 10 {
		b.emit(Uplink, "n=%d", i)
	}
	b.emit(Ready, "last")
	if got := len(b.Events()); got != eventQueue {
		t.Fatalf("%d events queued, want %d", got, eventQueue)
	}
	var first, last Event
	for i := range eventQueue {
		e := <-b.Events()
		if i == 0 {
			first = e
		}
		last = e
	}
	if first.Detail != "n=11" || last.Kind != Ready || last.Detail != "last" {
		t.Fatalf("queue from %q to %s %q, want from n=11 to the ready event", first.Detail, last.Kind, last.Detail)
	}
}
