package vpcd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
)

// hx parses "FF CA 00 00 00" into bytes.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func newTag() *st25dv.Tag {
	tag := st25dv.New(st25dv.Config{}) // UID E0 02 51 00 00 00 00 01
	tag.SetVCC(true)
	return tag
}

// exchange is one pinned APDU and its expected answer.
type exchange struct{ cmd, resp string }

func run(t *testing.T, c *vpcd.Card, steps []exchange) {
	t.Helper()
	for _, s := range steps {
		got := c.Transmit(t.Context(), hx(s.cmd))
		if !bytes.Equal(got, hx(s.resp)) {
			t.Fatalf("> %s\n< % X\nwant %s", s.cmd, got, s.resp)
		}
	}
}

func TestATR(t *testing.T) {
	for _, tc := range []struct {
		name uint16
		want string
	}{
		{0x0000, "3B 8F 80 01 80 4F 0C A0 00 00 03 06 0B 00 00 00 00 00 00 63"},
		{0x0013, "3B 8F 80 01 80 4F 0C A0 00 00 03 06 0B 00 13 00 00 00 00 70"}, // pcsc-tools "ST M24LR04E"
	} {
		if got := vpcd.ATR(tc.name); !bytes.Equal(got, hx(tc.want)) {
			t.Errorf("ATR(%04X) = % X, want %s", tc.name, got, tc.want)
		}
	}
}

func TestGetDataAndBinary(t *testing.T) {
	tag := newTag()
	tag.FieldOn()
	c := vpcd.NewCard(tag)
	run(t, c, []exchange{
		{"FF CA 00 00 00", "01 00 00 00 00 51 02 E0 90 00"}, // UID LSB first
		{"FF CA 00 00", "01 00 00 00 00 51 02 E0 90 00"},    // no Le
		{"FF CA 00 00 04", "6C 08"},
		{"FF CA 00 00 0A", "01 00 00 00 00 51 02 E0 62 82"},
		{"FF CA 01 00 00", "6A 81"},
		{"FF CA 00 01 00", "6B 00"},
		{"00 CA 00 00 00", "6E 00"},
		{"FF 00 00 00 00", "6D 00"},
		{"FF CA 00", "67 00"},
		{"FF CA 00 00 05 00", "67 00"},
		{"FF D6 00 01 08 11 22 33 44 55 66 77 88", "90 00"},
		{"FF B0 00 00 0C", "00 00 00 00 11 22 33 44 55 66 77 88 90 00"},
		{"FF B0 00 01 02", "11 22 90 00"},
		{"FF D6 07 FF 04 A1 A2 A3 A4", "90 00"}, // last block, extended write 31h
		{"FF B0 07 FF 04", "A1 A2 A3 A4 90 00"},
		{"FF B0 07 FF 08", "A1 A2 A3 A4 62 82"}, // runs past the end
		{"FF B0 08 00 04", "6A 82"},             // starts past the end
		{"FF D6 00 00 03 01 02 03", "67 00"},
		{"FF D6 08 00 04 01 02 03 04", "6A 82"},
	})
	if got := c.Transmit(t.Context(), hx("FF B0 00 00 00")); len(got) != 258 || !bytes.Equal(got[256:], hx("90 00")) {
		t.Fatalf("Le 00 read: %d bytes % X", len(got), got[len(got)-2:])
	}
	mo := vpcd.NewCard(tag, vpcd.WithUIDOrder(vpcd.MSBFirst))
	run(t, mo, []exchange{{"FF CA 00 00 00", "E0 02 51 00 00 00 00 01 90 00"}})
}

// TestTransparentSession replays the shape of a public ACR1552U + ICODE SLI
// transparent-session trace (NXP community thread 2093136) against the
// ST25DV twin.
func TestTransparentSession(t *testing.T) {
	tag := newTag()
	tag.FieldOn()
	c := vpcd.NewCard(tag)
	run(t, c, []exchange{
		// Before a session: exchange and switch are refused (first DO, 69 86).
		{"FF C2 00 01 04 95 02 02 2B 00", "C0 03 01 69 86 90 00"},
		{"FF C2 00 02 04 8F 02 02 03 00", "C0 03 01 69 86 90 00"},
		{"FF C2 00 00 02 81 00 00", "C0 03 00 90 00 90 00"},
		{"FF C2 00 00 02 80 00 00", "C0 03 00 90 00 80 03 02 02 00 90 00"},
		{"FF C2 00 02 04 8F 02 02 03", "C0 03 00 90 00 8F 01 00 90 00"},
		{"FF C2 00 02 04 8F 02 00 03", "C0 03 01 64 01 90 00"}, // 14443-A: no such card
		{"FF C2 00 02 04 8F 02 02 04", "C0 03 01 6A 80 90 00"},
		// Inventory: 00 DSFID UID(LSB first).
		{"FF C2 00 01 05 95 03 26 01 00 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 0A 00 00 01 00 00 00 00 51 02 E0 90 00"},
		// Timer (1 s, LSB first) + flags 00 00 + Read Single Block 0.
		{"FF C2 00 01 10 5F 46 04 40 42 0F 00 90 02 00 00 95 03 02 20 00 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 05 00 00 00 00 00 90 00"},
		// ST custom Read Dynamic Configuration MB_CTRL_Dyn (AD 02 0D).
		{"FF C2 00 01 06 95 04 02 AD 02 0D 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 02 00 00 90 00"},
		// Error response of the tag travels inside 97: block 2048 not available.
		{"FF C2 00 01 06 95 04 02 30 00 08 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 02 01 10 90 00"},
		// A wrong timer length fails at DO 1; an unknown DO at its index.
		{"FF C2 00 01 05 5F 46 02 00 00 00", "C0 03 01 67 00 90 00"},
		{"FF C2 00 01 07 90 02 00 00 A5 01 00 00", "C0 03 02 6A 81 90 00"},
		{"FF C2 00 01 04 90 02 01 00 00", "C0 03 01 6A 81 90 00"},
		// Truncated DO list: the DO after the last complete one fails.
		{"FF C2 00 01 03 95 05 02 00", "C0 03 01 67 00 90 00"},
		// Transmit-only then receive.
		{"FF C2 00 01 05 93 03 02 20 00 00", "C0 03 00 90 00 90 00"},
		{"FF C2 00 01 02 94 00 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 05 00 00 00 00 00 90 00"},
		{"FF C2 00 01 02 94 00 00", "C0 03 01 64 01 90 00"},
		// RF off: the tag falls silent (64 01 = no response from the ICC).
		{"FF C2 00 00 02 83 00 00", "C0 03 00 90 00 90 00"},
		{"FF C2 00 01 05 95 03 26 01 00 00", "C0 03 01 64 01 90 00"},
		{"FF C2 00 00 02 84 00 00", "C0 03 00 90 00 90 00"},
		{"FF C2 00 01 05 95 03 02 20 00 00", "C0 03 00 90 00 92 01 00 96 02 00 00 97 05 00 00 00 00 00 90 00"},
		{"FF C2 00 00 02 82 00 00", "C0 03 00 90 00 90 00"},
		{"FF C2 00 01 05 95 03 02 20 00 00", "C0 03 01 69 86 90 00"},
		{"FF C2 01 01 00", "6B 00"},
		{"FF C2 00 03 00", "6B 00"},
		// Pass-through is ACR1552 only.
		{"FF FB 00 00 02 20 00", "6D 00"},
	})
}

func TestACR1552PassThrough(t *testing.T) {
	tag := newTag()
	tag.FieldOn()
	c := vpcd.NewCard(tag, vpcd.WithProfile(vpcd.ProfileACR1552))
	run(t, c, []exchange{
		{"FF FB 00 00 02 20 00", "00 00 00 00 90 00"},                      // Read Single Block 0: data only
		{"FF FB 00 00 03 AD 02 0D", "00 90 00"},                            // MB_CTRL_Dyn
		{"FF FB 00 00 03 30 00 08", "01 10 63 00"},                         // ISO error 10h kept in the data
		{"FF FB 00 00 0B B3 02 00 01 02 03 04 05 06 07 08", "01 0F 63 00"}, // wrong password
		{"FF FB 00 00 03 01 00 00", "64 01"},                               // inventory without the inventory flag: silence
		{"FF FB 00 01 02 20 00", "6B 00"},
		{"FF FB 00 00", "67 00"},
		{"FF C2 00 00 02 81 00 00", "C0 03 00 90 00 90 00"}, // the ACR1552 does FF C2 as well
	})
	for _, s := range []string{"transparent", "ACR1552", "acr1552u"} {
		if _, err := vpcd.ParseProfile(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := vpcd.ParseProfile("omnikey"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestAPDUParse(t *testing.T) {
	for _, tc := range []struct {
		in       string
		data     string
		le       int
		extended bool
		err      bool
	}{
		{in: "FF CA 00 00", le: -1},
		{in: "FF CA 00 00 00", le: 256},
		{in: "FF CA 00 00 08", le: 8},
		{in: "FF D6 00 01 02 AA BB", data: "AA BB", le: -1},
		{in: "FF D6 00 01 02 AA BB 00", data: "AA BB", le: 256},
		{in: "FF B0 00 00 00 01 00", le: 256, extended: true},
		{in: "FF B0 00 00 00 00 00", le: 65536, extended: true},
		{in: "FF D6 00 00 00 00 02 AA BB", data: "AA BB", le: -1, extended: true},
		{in: "FF D6 00 00 00 00 02 AA BB 00 10", data: "AA BB", le: 16, extended: true},
		{in: "FF CA 00", err: true},
		{in: "FF D6 00 00 03 AA", err: true},
		{in: "FF D6 00 00 00 00", err: true},
		{in: "FF D6 00 00 00 00 00 AA", err: true},
	} {
		a, err := vpcd.ParseAPDU(hx(tc.in))
		if tc.err {
			if err == nil {
				t.Errorf("%s: no error", tc.in)
			}
			continue
		}
		if err != nil || !bytes.Equal(a.Data, hx(tc.data)) || a.Le != tc.le || a.Extended != tc.extended {
			t.Errorf("%s: %+v, %v", tc.in, a, err)
		}
	}
}

// fakeVPCD plays vpcd's side of the socket (vsmartcard doc/api.txt) for tests that
// need no pcscd.
type fakeVPCD struct {
	ln   net.Listener
	conn net.Conn
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeVPCD{ln: ln}
}

// accept takes the card's connection and sends the first GET ATR, which is
// what makes Insert return.
func (f *fakeVPCD) accept(t *testing.T) {
	t.Helper()
	c, err := f.ln.Accept()
	if err != nil {
		t.Error(err)
		return
	}
	f.conn = c
	f.send(t, []byte{vpcd.CtrlGetATR})
}

// insert inserts c into this vpcd and fails the test if that does not work.
func (f *fakeVPCD) insert(t *testing.T, c *vpcd.Card) {
	t.Helper()
	go f.accept(t)
	if err := c.Insert(t.Context(), f.ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeVPCD) send(t *testing.T, msg []byte) {
	t.Helper()
	// Like vpcd 0.8: length and body in two writes (sendToVICC before
	// vsmartcard PR #252).
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(msg)))
	if _, err := f.conn.Write(hdr[:]); err != nil {
		t.Error(err)
	}
	if _, err := f.conn.Write(msg); err != nil {
		t.Error(err)
	}
}

func (f *fakeVPCD) recv(t *testing.T) []byte {
	t.Helper()
	_ = f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := vpcd.ReadFrame(f.conn, nil)
	if err != nil {
		t.Fatalf("vpcd side: %v", err)
	}
	return b
}

func TestOverVPCDSocket(t *testing.T) {
	tag := newTag()
	c := vpcd.NewCard(tag)
	v := newFakeVPCD(t)
	v.insert(t, c)
	if got := v.recv(t); !bytes.Equal(got, vpcd.ATR(0)) {
		t.Fatalf("ATR % X", got)
	}
	// Power on, a control byte vpcd never sends, an empty message: no answer
	// to any of them; the next APDU still gets its own answer.
	v.send(t, []byte{vpcd.CtrlPowerOn})
	v.send(t, []byte{0x07})
	v.send(t, []byte{})
	v.send(t, hx("FF CA 00 00 00"))
	if got := v.recv(t); !bytes.Equal(got, hx("01 00 00 00 00 51 02 E0 90 00")) {
		t.Fatalf("GET DATA % X", got)
	}
	v.send(t, hx("FF CA 00")) // too short for an APDU
	if got := v.recv(t); !bytes.Equal(got, hx("67 00")) {
		t.Fatalf("garbage: % X", got)
	}
	v.send(t, []byte{vpcd.CtrlPowerOff})
	v.send(t, []byte{vpcd.CtrlGetATR}) // answered while powered off, too
	if got := v.recv(t); !bytes.Equal(got, vpcd.ATR(0)) {
		t.Fatalf("ATR after power off % X", got)
	}
	if err := c.Insert(t.Context(), v.ln.Addr().String()); !errors.Is(err, vpcd.ErrInserted) {
		t.Fatalf("second insert: %v", err)
	}
	if c.APDUs() != 2 {
		t.Fatalf("APDUs = %d", c.APDUs())
	}
	// Lift: vpcd sees EOF and the tag loses its field.
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	_ = v.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := v.conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("vpcd side after remove: %v", err)
	}
	if resp, _ := tag.Transceive(t.Context(), hx("26 01 00")); resp != nil {
		t.Fatalf("tag still in the field: % X", resp)
	}
	if err := c.Remove(); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

func TestVPCDDropsTheCard(t *testing.T) {
	tag := newTag()
	c := vpcd.NewCard(tag)
	v := newFakeVPCD(t)
	v.insert(t, c)
	done := c.Done()
	v.recv(t)
	v.conn.Close() // pcscd stopped
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("card did not notice")
	}
	if resp, _ := tag.Transceive(t.Context(), hx("26 01 00")); resp != nil {
		t.Fatal("tag still in the field")
	}
	// It can be tapped again.
	v.insert(t, c)
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestInsertFailures(t *testing.T) {
	c := vpcd.NewCard(newTag())
	// Nobody listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if err := c.Insert(t.Context(), addr); err == nil || !strings.Contains(err.Error(), "pcscd") {
		t.Fatalf("closed port: %v", err)
	}
	// A listener that never speaks (an occupied vpcd slot looks like this).
	v := newFakeVPCD(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Insert(ctx, v.ln.Addr().String()); !errors.Is(err, vpcd.ErrNotAccepted) {
		t.Fatalf("silent vpcd: %v", err)
	}
	if c.Done() != nil {
		t.Fatal("card still inserted")
	}
}
