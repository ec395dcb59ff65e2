package st25dv_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/timing"
)

// TestMailboxEnableRules: MB_EN needs MB_MODE=1 and VCC; no password (ST
// community "ST25DV04kc enable mailbox via i2c", "About the value of MB_MODE
// of ST25DV64K at power-on").
func TestMailboxEnableRules(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	mustW(t, tag, devUser, 0x2006, 0x01) // ACKed and ignored with MB_MODE=0
	wantReg(t, tag, devUser, 0x2006, 0, "MB_CTRL_Dyn: MB_EN set without MB_MODE")
	if got := i2cR(t, tag, devUser, 0x2008, 2); !bytes.Equal(got, hx("FF FF")) {
		t.Fatalf("mailbox readable with FTM off: % X", got)
	}
	wantNACK(t, i2cW(tag, devUser, 0x2008, 0x01), 3)

	tag = newTag(t, st25dv.Config{FTM: 0x01})
	tag.SetVCC(false)
	expectRF(t, tag, "02 AE 02 0D 01", "01 0F") // no VCC
	tag.SetVCC(true)
	expectRF(t, tag, "02 AE 02 0D 01", "00")
	expectRF(t, tag, "02 AD 02 0D", "00 01")
	// RF EEPROM writes are refused while FTM is on (DS §5.1.2 caution) …
	expectRF(t, tag, "02 21 00 01 02 03 04", "01 0F")
	// … and so are I2C EEPROM writes.
	wantNACK(t, i2cW(tag, devUser, 0x0000, 0x01), 3)
	// VCC off disables FTM.
	tag.SetVCC(false)
	tag.SetVCC(true)
	expectRF(t, tag, "02 AD 02 0D", "00 00")
	expectRF(t, tag, "02 21 00 01 02 03 04", "00")
}

// TestRFToHost: phone → MCU (DS §5.1.2, Figure 12): RF Write Message → 85h,
// GPO RF_PUT_MSG; I2C read of the last byte + STOP → 81h.
func TestRFToHost(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	mustW(t, tag, devSys, 0x0000, 0x61) // GPO1: GPO_EN | RF_PUT_MSG_EN | RF_GET_MSG_EN
	gpo := tag.GPO()
	drainGPO(gpo)
	reg(t, tag, devUser, 0x2005) // clear IT_STS_Dyn (FIELD_RISING from FieldOn)

	expectRF(t, tag, "02 AA 02 03 01 02 03 04", "00")
	if n := drainGPO(gpo); n != 1 {
		t.Fatalf("RF_PUT_MSG pulses = %d, want 1", n)
	}
	if got := i2cR(t, tag, devUser, 0x2005, 3); !bytes.Equal(got, hx("20 85 03")) {
		t.Fatalf("IT_STS_Dyn, MB_CTRL_Dyn, MB_LEN_Dyn = % X, want 20 85 03", got)
	}
	expectRF(t, tag, "02 AB 02", "00 03")
	expectRF(t, tag, "02 AC 02 00 00", "00 01 02 03 04") // RF may re-read its own message …
	expectRF(t, tag, "02 AD 02 0D", "00 85")             // … without releasing it
	// The mailbox is busy for both sides.
	expectRF(t, tag, "02 AA 02 00 09", "01 0F")
	wantNACK(t, i2cW(tag, devUser, 0x2008, 0x09), 3)
	// A read that does not reach the last byte does not release.
	if got := i2cR(t, tag, devUser, 0x2008, 3); !bytes.Equal(got, hx("01 02 03")) {
		t.Fatalf("partial read % X", got)
	}
	wantReg(t, tag, devUser, 0x2006, 0x85, "MB_CTRL_Dyn after a partial read (not released)")
	// Bytes past the message end read FFh.
	if got := i2cR(t, tag, devUser, 0x2008, 6); !bytes.Equal(got, hx("01 02 03 04 FF FF")) {
		t.Fatalf("full read % X", got)
	}
	wantReg(t, tag, devUser, 0x2006, 0x81, "MB_CTRL_Dyn after host read")
	if n := drainGPO(gpo); n != 0 {
		t.Fatalf("unexpected GPO pulses: %d", n)
	}
	// Free again: the host may answer.
	mustW(t, tag, devUser, 0x2008, 0xA5)
	wantReg(t, tag, devUser, 0x2006, 0x43, "MB_CTRL_Dyn")
}

// TestHostToRF: MCU → phone: I2C write at 2008h → 43h; RF Read Message of the
// last byte → 41h and a RF_GET_MSG pulse.
func TestHostToRF(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	mustW(t, tag, devSys, 0x0000, 0x61)
	gpo := tag.GPO()
	drainGPO(gpo)
	reg(t, tag, devUser, 0x2005) // clear IT_STS_Dyn (FIELD_RISING from FieldOn)

	wantNACK(t, i2cW(tag, devUser, 0x2009, 0xAA), 3) // must start at 2008h
	wantNACK(t, i2cW(tag, devUser, 0x2008, make([]byte, 257)...), 3+256)
	mustW(t, tag, devUser, 0x2008, 0xAA, 0xBB, 0xCC)
	if got := i2cR(t, tag, devUser, 0x2006, 2); !bytes.Equal(got, hx("43 02")) {
		t.Fatalf("MB_CTRL_Dyn, MB_LEN_Dyn = % X", got)
	}
	expectRF(t, tag, "02 AD 02 0D", "00 43")
	expectRF(t, tag, "02 AB 02", "00 02")
	expectRF(t, tag, "02 AA 02 00 09", "01 0F") // busy
	expectRF(t, tag, "02 AC 02 00 01", "00 AA BB")
	expectRF(t, tag, "02 AD 02 0D", "00 43")
	expectRF(t, tag, "02 AC 02 02 01", "01 0F") // past the end
	if n := drainGPO(gpo); n != 0 {
		t.Fatalf("pulses before the end was read: %d", n)
	}
	expectRF(t, tag, "02 AC 02 01 01", "00 BB CC")
	expectRF(t, tag, "02 AD 02 0D", "00 41")
	if n := drainGPO(gpo); n != 1 {
		t.Fatalf("RF_GET_MSG pulses = %d, want 1", n)
	}
	wantReg(t, tag, devUser, 0x2005, 0x40, "IT_STS_Dyn (RF_GET_MSG)")
	// The host can still read what it wrote; data stays after release.
	if got := i2cR(t, tag, devUser, 0x2008, 3); !bytes.Equal(got, hx("AA BB CC")) {
		t.Fatalf("mailbox % X", got)
	}
	// Whole-message form 00/00, addressed and fast, after a new host message.
	mustW(t, tag, devUser, 0x2008, 0x01)
	expectRF(t, tag, "22 CC 02 "+uidAir+" 00 00", "00 01")
	expectRF(t, tag, "02 CD 02 0D", "00 41")
}

func TestFieldLossKeepsMailbox(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	expectRF(t, tag, "02 AA 02 00 42", "00")
	tag.FieldOff()
	tag.FieldOn()
	expectRF(t, tag, "02 AD 02 0D", "00 85")
	mustW(t, tag, devUser, 0x2006, 0x00) // MB_EN ← 0 empties the mailbox
	expectRF(t, tag, "02 AD 02 0D", "00 00")
	mustW(t, tag, devUser, 0x2006, 0x01)
	expectRF(t, tag, "02 AC 02 00 00", "01 0F") // no message
}

func TestFastMailboxCommands(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	expectRF(t, tag, "02 CA 02 01 55 66", "00")
	expectRF(t, tag, "02 CB 02", "00 01")
	expectRF(t, tag, "03 CB 02", "01 0F") // fast commands: one subcarrier only
	expectRF(t, tag, "02 CC 02 00 00", "00 55 66")
	expectRF(t, tag, "42 CB 02", "01 03") // option flag unsupported
}

// TestWatchdogInstant: in instant mode the watchdog never fires by itself,
// however much modelled time passes; ExpireWatchdog forces it.
func TestWatchdogInstant(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0x02) // MB_WDG = 1 → 30 ms
	mustW(t, tag, devUser, 0x2008, 0x01, 0x02)
	for i := 0; i < 40; i++ { // > 100 ms of modelled RF time
		expectRF(t, tag, "02 AB 02", "00 01")
	}
	if tag.ModeledTime() < 100*time.Millisecond {
		t.Fatalf("modelled only %v", tag.ModeledTime())
	}
	wantReg(t, tag, devUser, 0x2006, 0x43, "MB_CTRL_Dyn in instant mode (the watchdog must not fire)")
	if !tag.ExpireWatchdog() {
		t.Fatal("ExpireWatchdog = false with a pending message")
	}
	wantReg(t, tag, devUser, 0x2006, 0x61, "MB_CTRL_Dyn after watchdog (RF_MISS)")
	expectRF(t, tag, "02 AC 02 00 00", "00 01 02") // data kept
	expectRF(t, tag, "02 AA 02 00 07", "00")       // mailbox free
	wantReg(t, tag, devUser, 0x2006, 0x85, "MB_CTRL_Dyn")
	if !tag.ExpireWatchdog() {
		t.Fatal("ExpireWatchdog = false")
	}
	wantReg(t, tag, devUser, 0x2006, 0x91, "MB_CTRL_Dyn after watchdog (HOST_MISS)")
	if tag.ExpireWatchdog() {
		t.Fatal("expired with nothing pending")
	}
	// MB_WDG = 0: no watchdog at all.
	tag2 := newTag(t, st25dv.Config{})
	enableMailbox(t, tag2, 0)
	mustW(t, tag2, devUser, 0x2008, 0x01)
	if tag2.ExpireWatchdog() {
		t.Fatal("watchdog expired with MB_WDG = 0")
	}
}

// TestWatchdogRealistic: MB_WDG = 1 → 2^0 × 30 ms (DS Table 16), on a real timer.
func TestWatchdogRealistic(t *testing.T) {
	tag := newTag(t, st25dv.Config{Clock: timing.NewClock(timing.Realistic), I2CClockHz: 1_000_000})
	enableMailbox(t, tag, 0x02)
	posted := time.Now()
	mustW(t, tag, devUser, 0x2008, 0x01)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for reg(t, tag, devUser, 0x2006) != 0x61 {
		select {
		case <-ctx.Done():
			t.Fatal("watchdog did not fire within 2 s")
		case <-tick.C:
		}
	}
	if el := time.Since(posted); el < 28*time.Millisecond {
		t.Fatalf("watchdog fired after %v, want ≥ 30 ms −6 %%", el)
	}
}

func TestVCCOffResetsDynamic(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	mustW(t, tag, devUser, 0x2008, 0x01)
	mustW(t, tag, devUser, 0x2000, 0x00)
	tag.SetVCC(false)
	expectRF(t, tag, "02 AD 02 0D", "00 00")
	expectRF(t, tag, "02 AD 02 02", "00 04") // FIELD_ON only
	tag.SetVCC(true)
	if got := i2cR(t, tag, devUser, 0x2000, 8); !bytes.Equal(got, hx("01 00 0C 00 00 00 00 00")) {
		t.Fatalf("dynamic registers after POR: % X", got)
	}
}
