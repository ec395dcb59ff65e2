package stm32wl5

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/ndef"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// The MCU's ST25DV64KC driver: the I2C accesses the firmware makes, written
// against the datasheet register map (DS13519 Rev 2 Tables 12–14, §6) in the
// same way ST's x-cube-nfc7 st25dvxxkc driver does them.

const (
	addrUser = 0x53 // user memory, dynamic registers, mailbox (DS Table 88: E2=0)
	addrSys  = 0x57 // system configuration area (E2=1)

	regGPO1   = 0x0000 // GPO1 (DS Table 29)
	regFTM    = 0x000D // FTM: b0 MB_MODE, b3..1 MB_WDG (DS Table 15)
	regI2CPwd = 0x0900 // I2C password present/write (DS §6.6)

	dynMBCtrl = 0x2006 // MB_CTRL_Dyn (DS Table 17)
	dynMBLen  = 0x2007 // MB_LEN_Dyn = length − 1 (DS Table 19)
	mailbox   = 0x2008 // 256-byte FTM buffer (DS Table 14)

	mbEN      = 1 << 0
	mbHostPut = 1 << 1
	mbRFPut   = 1 << 2

	gpoEN          = 1 << 0
	gpoFieldChange = 1 << 4
	gpoRFPutMsgEN  = 1 << 5
	gpoRFGetMsgEN  = 1 << 6
	gpo1Firmware   = gpoEN | gpoRFPutMsgEN | gpoRFGetMsgEN
	// gpo1ST25FTM is what ST's ST25FTM glue sets (71h: GPO_EN |
	// FIELD_CHANGE | RF_PUT_MSG | RF_GET_MSG; fp-sns-smartag2
	// st25ftm_glue): a field change wakes it too.
	gpo1ST25FTM = gpoEN | gpoFieldChange | gpoRFPutMsgEN | gpoRFGetMsgEN

	dynITSts       = 0x2005 // IT_STS_Dyn, cleared on read (DS Table 36)
	itFieldFalling = 1 << 3
	itFieldRising  = 1 << 4
	ftmMBMode      = 1 << 0
	eepromRowBytes = 16 // one tW programs up to one 16-byte row (DS §6.4.2)
)

// tagDriver talks to the tag over I2C.
type tagDriver struct {
	i2c   bus.I2C
	clock *timing.Clock
	// ackPollLimit bounds ACK polling (ST's driver: 85 ms = 5 + 5·256/16 ms).
	ackPollLimit time.Duration
}

func addr16(a uint16) []byte { return []byte{byte(a >> 8), byte(a)} }

// tx runs one transaction, retrying while the device select is NACKed (the
// chip is busy with an RF command or an EEPROM write, DS §5.3, §6.4.3), like
// HAL_I2C_IsDeviceReady loops do on the real MCU. Data NACKs are returned.
func (d *tagDriver) tx(ctx context.Context, addr uint16, w, r []byte) error {
	deadline := time.Now().Add(d.ackPollLimit)
	for {
		err := d.i2c.Tx(addr, w, r)
		var nack *bus.NACKError
		if err == nil || !errors.As(err, &nack) || nack.Index != 0 || time.Now().After(deadline) {
			return err
		}
		if err := d.clock.Spend(ctx, 100*time.Microsecond); err != nil {
			return err
		}
		runtime.Gosched()
	}
}

func (d *tagDriver) read(ctx context.Context, addr, reg uint16, n int) ([]byte, error) {
	r := make([]byte, n)
	if err := d.tx(ctx, addr, addr16(reg), r); err != nil {
		return nil, fmt.Errorf("read 0x%02x:%04Xh: %w", addr, reg, err)
	}
	return r, nil
}

func (d *tagDriver) write(ctx context.Context, addr, reg uint16, data []byte) error {
	if err := d.tx(ctx, addr, append(addr16(reg), data...), nil); err != nil {
		return fmt.Errorf("write 0x%02x:%04Xh: %w", addr, reg, err)
	}
	return nil
}

// ackPoll waits for the end of an EEPROM programming cycle: the chip does not
// acknowledge its device select while it programs (DS §6.4.3, Figure 34).
func (d *tagDriver) ackPoll(ctx context.Context, addr uint16) error {
	if err := d.tx(ctx, addr, nil, nil); err != nil {
		return fmt.Errorf("ack polling 0x%02x: %w", addr, err)
	}
	return nil
}

// presentPassword sends the I2C present-password sequence (DS §6.6.1,
// Figure 35): 0900h, password MSB first, validation code 09h, password again.
func (d *tagDriver) presentPassword(ctx context.Context, pwd [8]byte) error {
	b := append(append(append([]byte(nil), pwd[:]...), 0x09), pwd[:]...)
	return d.write(ctx, addrSys, regI2CPwd, b)
}

// writeSysReg writes one system register (single-byte transaction: a second
// byte would be NACKed, DS §6.4.2; ST community "How to configure ST25DV
// registers via I2C") and waits for tW.
func (d *tagDriver) writeSysReg(ctx context.Context, reg uint16, v byte) error {
	if err := d.write(ctx, addrSys, reg, []byte{v}); err != nil {
		return err
	}
	return d.ackPoll(ctx, addrSys)
}

// writeUser writes user EEPROM in row-aligned chunks (≤ 16 bytes, never
// crossing a 16-byte row, so each write costs exactly one tW) with ACK
// polling after each, skipping rows that already hold the data (EEPROM
// endurance; the ST examples do the same read-compare).
func (d *tagDriver) writeUser(ctx context.Context, at uint16, data []byte) (written int, err error) {
	cur, err := d.read(ctx, addrUser, at, len(data))
	if err != nil {
		return 0, err
	}
	for off := 0; off < len(data); {
		a := int(at) + off
		n := min(eepromRowBytes-a%eepromRowBytes, len(data)-off)
		if string(cur[off:off+n]) != string(data[off:off+n]) {
			if err := d.write(ctx, addrUser, uint16(a), data[off:off+n]); err != nil {
				return written, err
			}
			if err := d.ackPoll(ctx, addrUser); err != nil {
				return written, err
			}
			written += n
		}
		off += n
	}
	return written, nil
}

// configure runs the boot-time FTM set-up of ST's mailbox example
// (stm32-hotspot/stm32cubemx2_st25dvxxkc_mailbox_i2c example.c; DS §5.1.2):
// open the I2C security session, set FTM.MB_MODE and
// the GPO1 events, close the session again by presenting a wrong password.
// Registers already holding the wanted value are not rewritten (EEPROM).
func (d *tagDriver) configure(ctx context.Context, pwd [8]byte, gpo1 byte) error {
	if err := d.presentPassword(ctx, pwd); err != nil {
		return fmt.Errorf("present I2C password: %w", err)
	}
	regs, err := d.read(ctx, addrSys, regGPO1, 1)
	if err != nil {
		return err
	}
	// GPO1: GPO_EN kept, RF_PUT_MSG (the phone wrote a request) and
	// RF_GET_MSG (the phone read our answer) pulse the GPO (DS Table 30, §5.4.1, Figures 20–21).
	if regs[0] != gpo1 {
		if err := d.writeSysReg(ctx, regGPO1, gpo1); err != nil {
			return fmt.Errorf("set GPO1: %w", err)
		}
	}
	ftm, err := d.read(ctx, addrSys, regFTM, 1)
	if err != nil {
		return err
	}
	if ftm[0]&ftmMBMode == 0 {
		// MB_WDG stays 0 (no watchdog, KC factory value): the firmware
		// answers at its own pace and the phone polls.
		if err := d.writeSysReg(ctx, regFTM, ftm[0]|ftmMBMode); err != nil {
			return fmt.Errorf("set FTM.MB_MODE: %w", err)
		}
	}
	var wrong [8]byte
	for i := range pwd {
		wrong[i] = ^pwd[i]
	}
	if err := d.presentPassword(ctx, wrong); err != nil {
		return fmt.Errorf("close I2C session: %w", err)
	}
	return nil
}

// itSts reads IT_STS_Dyn, which clears it (DS Table 36): what ST's glue
// reads first when the GPO fired.
func (d *tagDriver) itSts(ctx context.Context) (byte, error) {
	b, err := d.read(ctx, addrUser, dynITSts, 1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *tagDriver) mbCtrl(ctx context.Context) (byte, error) {
	b, err := d.read(ctx, addrUser, dynMBCtrl, 1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// setMBEN writes MB_CTRL_Dyn.MB_EN (no password needed; needs MB_MODE=1 and
// VCC, DS §5.1.1; ST community "ST25DV04kc enable mailbox via i2c"). Dynamic
// registers need no ACK polling.
func (d *tagDriver) setMBEN(ctx context.Context, on bool) error {
	var v byte
	if on {
		v = mbEN
	}
	return d.write(ctx, addrUser, dynMBCtrl, []byte{v})
}

// readMessage reads the RF message: MB_LEN_Dyn then the whole message from
// 2008h; reading the last byte releases it (RF_PUT_MSG cleared, DS §5.1.2).
func (d *tagDriver) readMessage(ctx context.Context) ([]byte, error) {
	l, err := d.read(ctx, addrUser, dynMBLen, 1)
	if err != nil {
		return nil, err
	}
	return d.read(ctx, addrUser, mailbox, int(l[0])+1)
}

// writeMessage posts the answer at 2008h (one transaction, DS §5.1.2). The
// chip NACKs it while the mailbox is busy; retry a few times.
func (d *tagDriver) writeMessage(ctx context.Context, msg []byte) error {
	if len(msg) == 0 || len(msg) > 256 {
		return fmt.Errorf("message of %d bytes", len(msg))
	}
	var err error
	for range 5 {
		if err = d.write(ctx, addrUser, mailbox, msg); err == nil || !bus.IsNACK(err) {
			return err
		}
		if serr := d.clock.Spend(ctx, time.Millisecond); serr != nil {
			return serr
		}
	}
	return err
}

// ndefIdentity encodes the tag image of SPEC.md §6 with the project's one
// NDEF codec (fixtures/proto/ndef, a leaf package emulators may import — see its
// package comment): a Type 5 capability container E1 40 FF 01 (NFC Forum
// T5T, AN4911 §3.1: magic E1h, version 1.0 all access, MLEN = 2040/8 = FFh,
// the E1 maximum, MBREAD), an NDEF TLV (03h) holding one external record
// (TNF 4, MB|ME|SR) of type "tap2join.io:dev", and the terminator TLV FEh.
// The payload is version 01h, DevEUI and JoinEUI (MSB first), firmware
// major/minor/patch, state.
func ndefIdentity(devEUI, joinEUI [8]byte, fw [3]byte, st provproto.State) ([]byte, error) {
	payload := []byte{0x01}
	payload = append(payload, devEUI[:]...)
	payload = append(payload, joinEUI[:]...)
	payload = append(payload, fw[:]...)
	payload = append(payload, byte(st))
	return ndef.EncodeT5T([]ndef.Record{ndef.ExternalRecord(ndefIdentityType, payload)}, ndefAreaBytes)
}

const (
	ndefIdentityType = "tap2join.io:dev"
	// ndefAreaBytes is the T5T area the 4-byte CC declares (MLEN FFh).
	ndefAreaBytes = 0xFF * 8
)
