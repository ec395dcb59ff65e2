package st25dv_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/st25dv"
)

const (
	devUser = 0x53
	devSys  = 0x57
)

// testUID is the UID of a real ST25DV64KC board (printed by the SparkFun
// ST25DV64KC Arduino library's examples/docs/img/ex_01_Serial_Monitor.png), MSB first;
// on air (LSB first) it reads D9 84 11 06 00 51 02 E0.
var testUID = [8]byte{0xE0, 0x02, 0x51, 0x00, 0x06, 0x11, 0x84, 0xD9}

const uidAir = "D9 84 11 06 00 51 02 E0"

// hx parses "26 01 00" style hex.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func fmtHex(b []byte) string {
	if b == nil {
		return "<silence>"
	}
	return fmt.Sprintf("% X", b)
}

// newTag returns a tag powered from both sides (VCC on, RF field on).
func newTag(t *testing.T, cfg st25dv.Config) *st25dv.Tag {
	t.Helper()
	if cfg.UID == ([8]byte{}) {
		cfg.UID = testUID
	}
	tag := st25dv.New(cfg)
	tag.SetVCC(true)
	tag.FieldOn()
	drainGPO(tag.GPO()) // the FIELD_CHANGE pulse of FieldOn
	return tag
}

// rf sends one frame and returns the response (nil = silence).
func rf(t *testing.T, tag *st25dv.Tag, req string) []byte {
	t.Helper()
	resp, err := tag.Transceive(context.Background(), hx(req))
	if err != nil {
		t.Fatalf("Transceive(%s): %v", req, err)
	}
	return resp
}

// expectRF sends req and requires want ("" = silence).
func expectRF(t *testing.T, tag *st25dv.Tag, req, want string) {
	t.Helper()
	got := rf(t, tag, req)
	if want == "" {
		if got != nil {
			t.Fatalf("%s: got % X, want silence", req, got)
		}
		return
	}
	if got == nil || !bytes.Equal(got, hx(want)) {
		t.Fatalf("%s:\n got  % X\n want % X", req, got, hx(want))
	}
}

func i2cW(tag *st25dv.Tag, dev uint16, addr int, data ...byte) error {
	return tag.I2C().Tx(dev, append([]byte{byte(addr >> 8), byte(addr)}, data...), nil)
}

func i2cR(t *testing.T, tag *st25dv.Tag, dev uint16, addr, n int) []byte {
	t.Helper()
	r := make([]byte, n)
	if err := tag.I2C().Tx(dev, []byte{byte(addr >> 8), byte(addr)}, r); err != nil {
		t.Fatalf("I2C read %02Xh@%04Xh: %v", dev, addr, err)
	}
	return r
}

func reg(t *testing.T, tag *st25dv.Tag, dev uint16, addr int) byte {
	t.Helper()
	return i2cR(t, tag, dev, addr, 1)[0]
}

func mustW(t *testing.T, tag *st25dv.Tag, dev uint16, addr int, data ...byte) {
	t.Helper()
	if err := i2cW(tag, dev, addr, data...); err != nil {
		t.Fatalf("I2C write %02Xh@%04Xh: %v", dev, addr, err)
	}
}

// wantNACK requires err to be a NACK at byte index idx.
func wantNACK(t *testing.T, err error, idx int) {
	t.Helper()
	var n *bus.NACKError
	if !errors.As(err, &n) {
		t.Fatalf("err = %v, want NACK at index %d", err, idx)
	}
	if n.Index != idx {
		t.Fatalf("NACK at index %d, want %d", n.Index, idx)
	}
}

// presentI2CPassword sends the I2C present-password sequence (DS §6.6.1).
func presentI2CPassword(tag *st25dv.Tag, pwd [8]byte) error {
	seq := append(append(append([]byte{}, pwd[:]...), 0x09), pwd[:]...)
	return i2cW(tag, devSys, 0x0900, seq...)
}

// enableMailbox does ST's flow (stm32-hotspot/stm32cubemx2_st25dvxxkc_mailbox_i2c
// example.c): open the I2C session, set MB_MODE,
// close the session, set MB_EN.
func enableMailbox(t *testing.T, tag *st25dv.Tag, ftm byte) {
	t.Helper()
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	mustW(t, tag, devSys, 0x000D, ftm|1)
	mustW(t, tag, devUser, 0x2006, 0x01)
	wantReg(t, tag, devUser, 0x2006, 0x01, "MB_CTRL_Dyn after enable")
}

// drainGPO consumes pending edges and returns how many there were.
func drainGPO(l *bus.Line) int {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for l.WaitForEdge(ctx) == nil {
		n++
	}
	return n
}

// wantReg fails the test when the register at dev/addr does not hold want;
// what names the register and the situation.
func wantReg(t *testing.T, tag *st25dv.Tag, dev uint16, addr int, want byte, what string) {
	t.Helper()
	if got := reg(t, tag, dev, addr); got != want {
		t.Fatalf("%s = %02Xh, want %02Xh", what, got, want)
	}
}
