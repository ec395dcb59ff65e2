package st25dv_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/timing"
)

// TestSystemDefaults reads the whole system area from device 57h and compares
// with the factory values of DS Table 12.
func TestSystemDefaults(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	got := i2cR(t, tag, devSys, 0x0000, 0x22)
	want := hx("11 0C 01 00 00 FF 00 FF 00 FF 00 00 00 00 1A 00" + // 0000h..000Fh
		" 00 00 00 00 FF 07 03 51" + // LOCK_DSFID, LOCK_AFI, DSFID, AFI, MEM_SIZE, BLK_SIZE, IC_REF
		" D9 84 11 06 00 51 02 E0" + // UID LSB first at 0018h
		" 11 00") // IC_REV, reserved
	if !bytes.Equal(got, want) {
		t.Fatalf("system area:\n got  % X\n want % X", got, want)
	}
	// No roll-over: FFh after the last system byte (DS §6.5.3).
	if got := i2cR(t, tag, devSys, 0x0023, 3); !bytes.Equal(got, hx("00 FF FF")) {
		t.Fatalf("past the system area: % X", got)
	}
	// Dynamic registers at POR (DS Table 13): GPO_CTRL_Dyn = GPO1.b0, EH_CTRL_Dyn
	// live bits FIELD_ON|VCC_ON, others 00h.
	if got := i2cR(t, tag, devUser, 0x2000, 8); !bytes.Equal(got, hx("01 00 0C 00 00 10 00 00")) {
		// IT_STS_Dyn (2005h) holds FIELD_RISING from FieldOn.
		t.Fatalf("dynamic registers: % X", got)
	}
	wantReg(t, tag, devUser, 0x2005, 0, "IT_STS_Dyn after a read (cleared on read)")
	// The user memory is factory 00h and reads run on into the dynamic registers.
	if got := i2cR(t, tag, devUser, 0x1FFE, 4); !bytes.Equal(got, hx("00 00 01 00")) {
		t.Fatalf("1FFEh..2001h: % X", got)
	}
}

func TestClaims(t *testing.T) {
	tag := st25dv.New(st25dv.Config{})
	tgt := tag.I2C()
	if tgt.Claims(devUser) {
		t.Fatal("claims 53h without VCC")
	}
	wantNACK(t, tgt.Tx(devUser, nil, nil), 0)
	tag.SetVCC(true)
	for addr, want := range map[uint16]bool{0x53: true, 0x57: true, 0x51: false, 0x55: false, 0x50: false} {
		if got := tgt.Claims(addr); got != want {
			t.Errorf("Claims(%02Xh) = %v, want %v", addr, got, want)
		}
	}
	if err := tgt.Tx(devSys, nil, nil); err != nil { // SparkFun isConnected probe
		t.Fatalf("probe: %v", err)
	}
}

func TestI2CPasswordAndSystemWrites(t *testing.T) {
	tag := newTag(t, st25dv.Config{I2CPassword: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}})
	wantNACK(t, i2cW(tag, devSys, 0x000D, 0x01), 3) // no session
	if got := i2cR(t, tag, devSys, 0x0900, 2); !bytes.Equal(got, hx("FF FF")) {
		t.Fatalf("I2C_PWD readable without session: % X", got)
	}
	// Wrong password: ACKed, session stays closed.
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2004, 0, "I2C_SSO_Dyn after wrong password")
	// Bad validation code → NACK on it (index 3+8).
	wantNACK(t, i2cW(tag, devSys, 0x0900, hx("0102030405060708 0A 0102030405060708")...), 11)
	// Write password refused without a session, NACK on the 07h code.
	wantNACK(t, i2cW(tag, devSys, 0x0900, hx("0000000000000000 07 0000000000000000")...), 11)
	// Copies differing: no comparison.
	if err := i2cW(tag, devSys, 0x0900, hx("0102030405060708 09 0102030405060709")...); err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2004, 0, "I2C_SSO_Dyn after mismatching copies")
	if err := presentI2CPassword(tag, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2004, 1, "I2C_SSO_Dyn after right password")
	if got := i2cR(t, tag, devSys, 0x0900, 8); !bytes.Equal(got, hx("01 02 03 04 05 06 07 08")) {
		t.Fatalf("I2C_PWD = % X", got)
	}
	// One byte per transaction into the system area (DS §6.4.2; ST community
	// "How to configure ST25DV registers via I2C").
	wantNACK(t, i2cW(tag, devSys, 0x0004, 0x01, 0x02), 4)
	// Read-only registers.
	for _, a := range []int{0x0012, 0x0017, 0x0018} {
		wantNACK(t, i2cW(tag, devSys, a, 0x00), 3)
	}
	mustW(t, tag, devSys, 0x0000, 0x61)
	wantReg(t, tag, devSys, 0x0000, 0x61, "GPO1")
	// Change the I2C password, then the old one no longer works.
	mustW(t, tag, devSys, 0x0900, hx("1111111111111111 07 1111111111111111")...)
	if err := presentI2CPassword(tag, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2004, 0, "I2C_SSO_Dyn with the old password")
	if err := presentI2CPassword(tag, [8]byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}); err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2004, 1, "I2C_SSO_Dyn with the new password")
	// VCC off closes the session (DS Table 69).
	tag.SetVCC(false)
	tag.SetVCC(true)
	wantReg(t, tag, devUser, 0x2004, 0, "I2C_SSO_Dyn after VCC off")
}

func TestI2CUserWriteRules(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	mustW(t, tag, devSys, 0x0005, 0x00) // ENDA1 = 00h: Area 1 = 0000h..001Fh
	// Crossing into Area 2: the first byte of Area 2 is NACKed, nothing written.
	wantNACK(t, i2cW(tag, devUser, 0x001E, 1, 2, 3, 4), 3+2)
	if got := i2cR(t, tag, devUser, 0x001E, 2); !bytes.Equal(got, hx("00 00")) {
		t.Fatalf("partial write committed: % X", got)
	}
	// I2CSS area 2 = 11b (read and write with session) — session still open.
	mustW(t, tag, devSys, 0x000B, 0x0C)
	mustW(t, tag, devUser, 0x0020, 0xAB)
	if err := presentI2CPassword(tag, [8]byte{9}); err != nil { // wrong → close
		t.Fatal(err)
	}
	wantNACK(t, i2cW(tag, devUser, 0x0020, 0x01), 3)
	if got := i2cR(t, tag, devUser, 0x001F, 3); !bytes.Equal(got, hx("00 FF FF")) {
		t.Fatalf("read-protected area 2: % X", got)
	}
	// Dynamic registers: one byte, writable ones only.
	wantNACK(t, i2cW(tag, devUser, 0x2000, 0x01, 0x01), 4)
	wantNACK(t, i2cW(tag, devUser, 0x2004, 0x01), 3)
	wantNACK(t, i2cW(tag, devUser, 0x2007, 0x01), 3)
	// Beyond the mailbox.
	wantNACK(t, i2cW(tag, devUser, 0x2108, 0x01), 3)
}

func TestI2CAddressCounter(t *testing.T) {
	tag := newTag(t, st25dv.Config{UserMemory: hx("00 11 22 33 44 55")})
	tgt := tag.I2C()
	// Address-only write ended by STOP, then a current-address read (SparkFun style).
	if err := tgt.Tx(devUser, hx("00 02"), nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 2)
	if err := tgt.Tx(devUser, nil, r); err != nil || !bytes.Equal(r, hx("22 33")) {
		t.Fatalf("current address read = % X, %v", r, err)
	}
	if err := tgt.Tx(devUser, nil, r); err != nil || !bytes.Equal(r, hx("44 55")) {
		t.Fatalf("counter did not advance: % X, %v", r, err)
	}
}

// TestEEPROMProgrammingTime: tW per 16-byte row touched (DS §6.4.2): 40 bytes
// at 0010h touch rows 1..3, at 000Ch rows 0..3. (0008h..002Fh lies in rows
// 0..2: 3·tW, not the 4·tW a hand-worked example once claimed.)
func TestEEPROMProgrammingTime(t *testing.T) {
	for _, tc := range []struct {
		addr, rows int
	}{{0x0010, 3}, {0x0008, 3}, {0x000C, 4}} {
		tag := newTag(t, st25dv.Config{I2CClockHz: 1_000_000})
		before := tag.ModeledTime()
		mustW(t, tag, devUser, tc.addr, make([]byte, 40)...)
		got := tag.ModeledTime() - before
		bus := time.Duration((9*(1+42)+2)*1000) * time.Nanosecond
		if want := time.Duration(tc.rows)*5*time.Millisecond + bus; got != want {
			t.Errorf("40 B at %04Xh: modelled %v, want %v", tc.addr, got, want)
		}
	}
}

// TestI2CConfigAndRFSwitch: I2C_CFG moves the device addresses after the
// STOP, and b5 enables the RFSwitchOff/On commands (DS §5.3.1; addresses per
// ST's driver x-cube-nfc7 st25dvxxkc.c, which contradicts DS Rev 2 Table 88:
// CONFLICT).
func TestI2CConfigAndRFSwitch(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	mustW(t, tag, devSys, 0x000E, 0x3A) // switch-off enabled
	tgt := tag.I2C()
	if !tgt.Claims(0x51) || !tgt.Claims(0x55) {
		t.Fatal("switch commands not claimed")
	}
	if err := tgt.Tx(0x55, nil, nil); err != nil { // RFSwitchOff (E2=1, ST driver)
		t.Fatal(err)
	}
	expectRF(t, tag, "26 01 00", "")
	wantReg(t, tag, devUser, 0x2003, 0x04, "RF_MNGT_Dyn (RF_OFF)")
	if err := tgt.Tx(0x51, hx("00 17"), nil); err != nil { // RFSwitchOn as ST sends it
		t.Fatal(err)
	}
	expectRF(t, tag, "26 01 00", "00 00 "+uidAir)

	mustW(t, tag, devSys, 0x000E, 0x0A) // E0 = 0 → 52h / 56h
	if tgt.Claims(devUser) || !tgt.Claims(0x52) || !tgt.Claims(0x56) {
		t.Fatal("device code change not effective after STOP")
	}
}

// TestI2CNACKWhileRFBusy: in realistic mode an I2C device select during an
// RF exchange is NACKed (DS §5.3); in instant mode exchanges are atomic.
func TestI2CNACKWhileRFBusy(t *testing.T) {
	tag := newTag(t, st25dv.Config{Clock: timing.NewClock(timing.Realistic)})
	enableMailbox(t, tag, 0)
	done := make(chan error)
	go func() {
		_, err := tag.Transceive(t.Context(), append(hx("02 AA 02 FF"), make([]byte, 256)...))
		done <- err
	}()
	// The write message frame lasts ~80 ms; the tag's state flips to 85h at
	// the start, so wait for the mailbox to show it, then probe.
	sawNACK := false
	for !sawNACK {
		select {
		case err := <-done:
			t.Fatalf("exchange ended (err %v) before an I2C NACK was seen", err)
		default:
		}
		err := tag.I2C().Tx(devUser, hx("20 06"), make([]byte, 1))
		if err != nil {
			wantNACK(t, err, 0)
			sawNACK = true
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantReg(t, tag, devUser, 0x2006, 0x85, "MB_CTRL_Dyn")
}
