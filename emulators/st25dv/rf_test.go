package st25dv_test

import (
	"context"
	"testing"

	"github.com/tap2join/tap2join/emulators/st25dv"
)

// TestRFSingleFrames pins request → response bytes on a fresh tag (factory
// configuration, VCC and field on). Sources: DS §7.4, §7.6 tables; ST RFAL
// rfal_nfcv.h; AOSP system/nfc rw_i93.cc for the Android frames.
func TestRFSingleFrames(t *testing.T) {
	u := uidAir
	tests := []struct {
		name, req, want string // want "" = silence
	}{
		{"inventory 1 slot no mask (Android)", "26 01 00", "00 00 " + u},
		{"inventory full 64-bit mask (Android presence check)", "26 01 40 " + u, "00 00 " + u},
		{"inventory 8-bit mask match", "26 01 08 D9", "00 00 " + u},
		{"inventory 8-bit mask mismatch", "26 01 08 DA", ""},
		{"inventory 12-bit mask match", "26 01 0C D9 04", "00 00 " + u},
		{"inventory mask length without mask bytes", "26 01 08", ""},
		{"inventory AFI 00 matches all", "36 01 00 00", "00 00 " + u},
		{"inventory AFI 05 mismatch", "36 01 05 00", ""},
		{"inventory 16 slots, tag in slot 9", "06 01 00", ""},
		{"inventory 16 slots, 4-bit mask selects slot 0 next", "06 01 04 09", ""},
		{"inventory 16 slots, 28-bit mask puts tag in slot 0", "06 01 1C D9 84 11 06", "00 00 " + u},
		{"inventory without inventory flag", "02 01 00", ""},
		{"get system info", "02 2B", "00 0B " + u + " 00 00 51"},
		{"get system info addressed", "22 2B " + u, "00 0B " + u + " 00 00 51"},
		{"get system info, other UID", "22 2B D9 84 11 06 00 51 02 E1", ""},
		{"get system info option flag", "42 2B", "01 03"},
		{"address and select together", "32 2B " + u, "01 03"},
		{"select flag while Ready", "12 2B", ""},
		{"ext get system info all of 0F", "02 3B 0F", "00 0F " + u + " 00 00 FF 07 03 51"},
		{"ext get system info Android 1F addressed", "22 3B 1F " + u, "00 1F " + u + " 00 00 FF 07 03 51"},
		{"ext get system info mem size only", "02 3B 04", "00 04 " + u + " FF 07 03"},
		{"ext get system info command list", "02 3B 20", "00 20 " + u + " FF 3F 3F 00"},
		{"read single block 0", "02 20 00", "00 00 00 00 00"},
		{"read single block with security status", "42 20 00", "00 00 00 00 00 00"},
		{"read single block addressed (Android)", "22 20 " + u + " 00", "00 00 00 00 00"},
		{"read single block missing param", "02 20", "01 02"},
		{"ext read single last block 07FF", "02 30 FF 07", "00 00 00 00 00"},
		{"ext read single block 0800", "02 30 00 08", "01 10"},
		{"fast ext read single", "02 C4 02 00 00", "00 00 00 00 00"},
		{"read multiple 2 blocks", "02 23 00 01", "00 00 00 00 00 00 00 00 00"},
		{"ext read multiple truncated at end of memory", "02 33 FF 07 03 00", "00 00 00 00 00"},
		{"get multiple block security status", "02 2C 00 02", "00 00 00 00"},
		{"unknown ISO command", "02 2D", "01 01"},
		{"C1h is not a KC command", "02 C1 02", "01 01"},
		{"unknown custom command", "02 B4 02", "01 01"},
		{"custom command, mfg 03h", "02 AB 03", "01 02"},
		{"custom command addressed, mfg 03h", "22 AB 03 " + u, "01 02"},
		{"custom command, mfg missing", "02 AB", ""},
		{"read config GPO1", "02 A0 02 00", "00 11"},
		{"read config GPO2", "02 A0 02 01", "00 0C"},
		{"read config ENDA3", "02 A0 02 09", "00 FF"},
		{"read config FTM", "02 A0 02 0D", "00 00"},
		{"read config I2C_CFG has no RF pointer", "02 A0 02 0E", "01 10"},
		{"write config without RF_PWD_0 session", "02 A1 02 0D 01", "01 0F"},
		{"read dyn GPO_CTRL_Dyn", "02 AD 02 00", "00 01"},
		{"read dyn EH_CTRL_Dyn (field + VCC)", "02 AD 02 02", "00 0C"},
		{"read dyn MB_CTRL_Dyn", "02 AD 02 0D", "00 00"},
		{"read dyn bad pointer", "02 AD 02 05", "01 10"},
		{"enable mailbox without MB_MODE", "02 AE 02 0D 01", "01 0F"},
		{"read message length, FTM off", "02 AB 02", "01 0F"},
		{"write message, FTM off", "02 AA 02 00 55", "01 0F"},
		{"present password wrong", "02 B3 02 00 01 00 00 00 00 00 00 00", "01 0F"},
		{"present password factory zero", "02 B3 02 00 00 00 00 00 00 00 00 00", "00"},
		{"present password number 4", "02 B3 02 04 00 00 00 00 00 00 00 00", "01 10"},
		{"write password without session", "02 B1 02 01 00 00 00 00 00 00 00 01", "01 12"},
		{"write single block", "02 21 05 01 02 03 04", "00"},
		{"write single block short data", "02 21 05 01 02 03", "01 02"},
		{"write multiple 5 blocks", "02 24 00 04" + " 00000000 00000000 00000000 00000000 00000000", "01 0F"},
		{"stay quiet never answers", "22 02 " + u, ""},
		{"reset to ready", "02 26", "00"},
		{"lone flags byte", "02", ""},
		{"empty frame", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := newTag(t, st25dv.Config{})
			expectRF(t, tag, tc.req, tc.want)
		})
	}
}

func TestDefaultUID(t *testing.T) {
	tag := newTag(t, st25dv.Config{UID: [8]byte{}})
	_ = tag
	fresh := st25dv.New(st25dv.Config{})
	if fresh.UID() != st25dv.DefaultUID || st25dv.DefaultUID != [8]byte{0xE0, 0x02, 0x51, 0, 0, 0, 0, 1} {
		t.Fatalf("UID() = % X", fresh.UID())
	}
	fresh.FieldOn()
	expectRF(t, fresh, "26 01 00", "00 00 01 00 00 00 00 51 02 E0")
}

func TestRFNeedsField(t *testing.T) {
	tag := st25dv.New(st25dv.Config{UID: testUID})
	expectRF(t, tag, "26 01 00", "")
	tag.FieldOn()
	expectRF(t, tag, "26 01 00", "00 00 "+uidAir)
	tag.FieldOff()
	expectRF(t, tag, "02 2B", "")
}

// TestISOStates walks DS Figure 38: Stay Quiet, Select, Reset to Ready, field reset.
func TestISOStates(t *testing.T) {
	u := uidAir
	other := "D9 84 11 06 00 51 02 E1"
	tag := newTag(t, st25dv.Config{})
	steps := []struct{ req, want string }{
		{"22 02 " + u, ""}, // → Quiet
		{"26 01 00", ""},   // Quiet ignores Inventory
		{"02 2B", ""},      // and non-addressed requests
		{"22 2B " + u, "00 0B " + u + " 00 00 51"}, // but answers addressed ones
		{"22 25 " + u, "00"},                       // Select → Selected
		{"12 2B", "00 0B " + u + " 00 00 51"},      // select flag answered
		{"02 2B", "00 0B " + u + " 00 00 51"},      // non-addressed answered too
		{"22 25 " + other, ""},                     // another tag selected → Ready, silent
		{"12 2B", ""},                              // no longer selected
		{"26 01 00", "00 00 " + u},                 // Ready answers Inventory
		{"22 02 " + u, ""},                         // Quiet again
		{"22 26 " + u, "00"},                       // Reset to Ready
		{"02 2B", "00 0B " + u + " 00 00 51"},      // Ready
	}
	for i, s := range steps {
		got := rf(t, tag, s.req)
		if (s.want == "" && got != nil) || (s.want != "" && fmtHex(got) != fmtHex(hx(s.want))) {
			t.Fatalf("step %d %s: got %s want %s", i, s.req, fmtHex(got), s.want)
		}
	}
	// Field loss → Power-off; the next field boots into Ready.
	expectRF(t, tag, "22 02 "+u, "")
	tag.FieldOff()
	tag.FieldOn()
	expectRF(t, tag, "26 01 00", "00 00 "+u)
}

func TestRFBlocksAndI2CView(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	expectRF(t, tag, "02 21 05 01 02 03 04", "00")
	expectRF(t, tag, "02 20 05", "00 01 02 03 04")
	if got := i2cR(t, tag, devUser, 0x0014, 4); fmtHex(got) != "01 02 03 04" {
		t.Fatalf("I2C view of block 5 = %s", fmtHex(got))
	}
	expectRF(t, tag, "02 24 06 01 11 12 13 14 21 22 23 24", "00")
	expectRF(t, tag, "02 23 05 02", "00 01 02 03 04 11 12 13 14 21 22 23 24")
	// Blocks above FFh only through the extended commands, LSB first.
	expectRF(t, tag, "02 31 00 04 AA BB CC DD", "00")
	expectRF(t, tag, "02 30 00 04", "00 AA BB CC DD")
	expectRF(t, tag, "02 34 01 04 00 00 EE EE EE EE", "00")
	expectRF(t, tag, "02 33 00 04 01 00", "00 AA BB CC DD EE EE EE EE")
	if got := i2cR(t, tag, devUser, 0x1000, 8); fmtHex(got) != "AA BB CC DD EE EE EE EE" {
		t.Fatalf("I2C view of block 400h = %s", fmtHex(got))
	}
	// I2C writes show up on RF.
	mustW(t, tag, devUser, 0x1FFC, 0xCA, 0xFE, 0xBA, 0xBE)
	expectRF(t, tag, "02 30 FF 07", "00 CA FE BA BE")
	expectRF(t, tag, "02 31 00 08 00 00 00 00", "01 10")
}

// TestLockCCFile: Lock Block on blocks 0/1 sets LOCK_CCFILE (DS §5.6.3).
func TestLockCCFile(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	expectRF(t, tag, "02 22 02", "01 10")
	expectRF(t, tag, "02 22 00", "00")
	expectRF(t, tag, "02 22 00", "01 11")
	expectRF(t, tag, "02 21 00 01 02 03 04", "01 12")
	expectRF(t, tag, "42 20 00", "00 01 00 00 00 00")
	expectRF(t, tag, "02 2C 00 01", "00 01 00")
	wantReg(t, tag, devSys, 0x000C, 0x01, "LOCK_CCFILE")
	wantNACK(t, i2cW(tag, devUser, 0x0000, 1), 3)
	mustW(t, tag, devUser, 0x0004, 1, 2, 3, 4) // block 1 not locked
}

// TestAreaProtection: ENDA1 = 00h makes Area 1 blocks 0..7; RFA2SS = 0Dh
// (PWD_CTRL=01, RW_PROTECTION=11: read with session, write never).
func TestAreaProtection(t *testing.T) {
	tag := newTag(t, st25dv.Config{RFPasswords: [4][8]byte{1: {1, 2, 3, 4, 5, 6, 7, 8}}})
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	wantNACK(t, i2cW(tag, devSys, 0x0007, 0x10), 3) // ENDA2 < ENDA3=FF with ENDA1=FF: invalid layout
	mustW(t, tag, devSys, 0x0005, 0x00)
	mustW(t, tag, devSys, 0x0006, 0x0D)
	expectRF(t, tag, "02 20 07", "00 00 00 00 00")
	expectRF(t, tag, "02 20 08", "01 15")
	expectRF(t, tag, "02 23 06 03", "00 00 00 00 00 00 00 00 00") // stops at the unreadable block
	expectRF(t, tag, "02 24 06 03 00000000 00000000 00000000 00000000", "01 0F")
	expectRF(t, tag, "02 B3 02 01 01 02 03 04 05 06 07 08", "00")
	expectRF(t, tag, "02 20 08", "00 00 00 00 00")
	expectRF(t, tag, "02 21 08 01 01 01 01", "01 12")
	expectRF(t, tag, "42 20 08", "00 01 00 00 00 00")
	// A wrong password closes the session.
	expectRF(t, tag, "02 B3 02 01 00 00 00 00 00 00 00 00", "01 0F")
	expectRF(t, tag, "02 20 08", "01 15")
	// Field loss closes RF sessions too.
	expectRF(t, tag, "02 B3 02 01 01 02 03 04 05 06 07 08", "00")
	tag.FieldOff()
	tag.FieldOn()
	expectRF(t, tag, "02 20 08", "01 15")
}

// TestRFConfigSession: Write Configuration needs RF_PWD_0 (DS §5.6.4), then
// the sequence ST gave in the ST community thread "How to Enable the Mailbox
// and Perform Write/Read on ST25DV via RF (ISO15693)" enables the mailbox
// from RF.
func TestRFConfigSession(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	expectRF(t, tag, "02 A1 02 0D 01", "01 0F")
	expectRF(t, tag, "02 B3 02 00 00 00 00 00 00 00 00 00", "00")
	expectRF(t, tag, "02 A1 02 0E 00", "01 10")
	expectRF(t, tag, "02 A1 02 07 10", "01 0F") // ENDA ordering
	expectRF(t, tag, "02 A1 02 0D 01", "00")
	expectRF(t, tag, "02 AE 02 0D 01", "00")
	expectRF(t, tag, "02 AD 02 0D", "00 01")
	wantReg(t, tag, devSys, 0x000D, 0x01, "FTM via I2C")
	// Change RF_PWD_0 and check the old one no longer opens the session.
	expectRF(t, tag, "02 B1 02 00 11 22 33 44 55 66 77 88", "00")
	expectRF(t, tag, "02 B3 02 00 00 00 00 00 00 00 00 00", "01 0F")
	expectRF(t, tag, "02 A1 02 0F 01", "01 0F")
	expectRF(t, tag, "02 B3 02 00 11 22 33 44 55 66 77 88", "00")
	expectRF(t, tag, "02 A1 02 0F 01", "00") // LOCK_CFG
	expectRF(t, tag, "02 A1 02 00 11", "01 0F")
	// Clearing MB_MODE disables the mailbox: needs I2C now that LOCK_CFG=1.
	if err := presentI2CPassword(tag, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	mustW(t, tag, devSys, 0x000D, 0x00)
	expectRF(t, tag, "02 AD 02 0D", "00 00")
}

func TestRFDisableAndSleep(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	mustW(t, tag, devUser, 0x2003, 0x01) // RF_DISABLE
	expectRF(t, tag, "26 01 00", "")
	expectRF(t, tag, "02 2B", "01 0F")
	mustW(t, tag, devUser, 0x2003, 0x02) // RF_SLEEP
	expectRF(t, tag, "02 2B", "")
	mustW(t, tag, devUser, 0x2003, 0x00)
	expectRF(t, tag, "02 2B", "00 0B "+uidAir+" 00 00 51")
}

func TestTransceiveContextCancelled(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tag.Transceive(ctx, hx("26 01 00")); err == nil {
		t.Fatal("want context error")
	}
}
