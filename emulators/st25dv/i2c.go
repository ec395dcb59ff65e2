package st25dv

import (
	"context"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
)

// I2C returns the chip's I2C target. Device selects follow I2C_CFG (DS
// Table 88, 90): DEVICE_CODE<<3 | E2<<2 | E1<<1 | E0, factory 53h (user
// memory, dynamic registers, mailbox: E2=0 E1=1) and 57h (system area:
// E2=1 E1=1); with I2C_RF_SWITCHOFF_EN the E1=0 addresses are the
// RFSwitchOff/On commands (DS §5.3.1).
//
// The target also accounts I2C bus time (9 clocks per byte at
// Config.I2CClockHz) and EEPROM programming time on the tag's clock, so the
// controller side need not model them again.
func (t *Tag) I2C() bus.Target { return i2cTarget{t} }

type i2cTarget struct{ t *Tag }

func (x i2cTarget) Claims(addr uint16) bool {
	x.t.mu.Lock()
	defer x.t.mu.Unlock()
	return x.t.vcc && x.t.devOf(addr) != devNone
}

func (x i2cTarget) Tx(addr uint16, w, r []byte) error { return x.t.i2cTx(addr, w, r) }

type i2cDev int

const (
	devNone i2cDev = iota
	devUser
	devSys
	devSwitchOff
	devSwitchOn
)

func (t *Tag) devOf(addr uint16) i2cDev {
	cfg := t.sys[regI2CCfg]
	base := uint16(cfg&0x0F)<<3 | uint16(cfg>>4&1)
	switch addr {
	case base | 0x2:
		return devUser
	case base | 0x6:
		return devSys
	case base, base | 0x4:
		if cfg&i2cCfgSwOffEn == 0 {
			return devNone
		}
		e2 := addr&0x4 != 0
		// CONFLICT: ST's driver (x-cube-nfc7 st25dvxxkc.c
		// ST25DVxxKC_WriteI2CSlaveMode), correcting the datasheet, says E2=1
		// is switch-off; DS Rev 2 Table 88 / Figures 14–15 say E2=0.
		if e2 != t.swOffE2Low {
			return devSwitchOff
		}
		return devSwitchOn
	}
	return devNone
}

// i2cTx runs one transaction (see bus.I2C for its shape).
func (t *Tag) i2cTx(addr uint16, w, r []byte) error {
	t.mu.Lock()
	var p pulses
	prog, err := t.i2cLocked(addr, w, r, &p)
	t.mu.Unlock()
	if err != nil {
		var nw int
		if n, isNACK := err.(*bus.NACKError); isNACK {
			nw = max(n.Index-1, 0)
		}
		_ = t.spend(context.Background(), t.i2cTime(nw, 0))
		return err
	}
	_ = t.spend(context.Background(), t.i2cTime(len(w), len(r))+prog)
	p.fire(t.gpo)
	return nil
}

func nack(addr uint16, idx int) error { return &bus.NACKError{Addr: addr, Index: idx} }

// i2cLocked does the work with t.mu held; it returns the EEPROM programming
// time started by the STOP.
func (t *Tag) i2cLocked(addr uint16, w, r []byte, p *pulses) (time.Duration, error) {
	dev := t.devOf(addr)
	if !t.vcc || dev == devNone {
		return 0, nack(addr, 0)
	}
	switch dev {
	case devSwitchOff, devSwitchOn:
		// Always ACKed, even while RF is busy; trailing address bytes (ST's
		// driver sends a 0-byte memory write) are accepted and ignored.
		t.rfSwitch(dev == devSwitchOff, p)
		for i := range r {
			r[i] = 0xFF
		}
		return 0, nil
	}
	// RF busy (DS §5.3) and EEPROM programming (ACK polling, DS §6.4.3):
	// the device select is not acknowledged.
	if t.rfBusy || t.i2cBusyRF() {
		return 0, nack(addr, 0)
	}
	if len(w) < 2 {
		// Probe (no bytes) or an incomplete address: nothing changes; a read
		// continues from the current address counter (DS §6.5.2).
		if len(r) > 0 {
			t.i2cRead(dev, t.ptr, r)
		}
		return 0, nil
	}
	a := int(w[0])<<8 | int(w[1])
	data := w[2:]
	if len(data) == 0 {
		// Address-only write. With STOP this latches the address counter
		// (SparkFun's write+STOP then read works on silicon; the DS describes
		// only the repeated-START form, DS §6.5 — UNCONFIRMED).
		t.ptr = a
		if len(r) > 0 {
			t.i2cRead(dev, a, r)
		}
		return 0, nil
	}
	var commit func() time.Duration
	var err error
	if dev == devUser {
		commit, err = t.i2cWriteUser(addr, a, data, p)
	} else {
		commit, err = t.i2cWriteSys(addr, a, data, p)
	}
	if err != nil {
		return 0, err // any NACK: nothing is written (DS §6.4.2)
	}
	if len(r) > 0 {
		// A repeated START instead of STOP after the data: a write is only
		// committed by a STOP right after an ACK (DS §6.4), so it is dropped.
		t.i2cRead(dev, a+len(data), r)
		return 0, nil
	}
	t.ptr = a + len(data)
	prog := commit()
	if prog > 0 {
		if t.realistic() {
			t.busyUntil = time.Now().Add(t.i2cTime(len(w), 0) + prog)
		}
		t.i2cEvent(gpo2I2CWrite, p) // end of EEPROM programming (DS §5.4.2)
	}
	return prog, nil
}

// rfSwitch handles the RFSwitchOff/On commands (DS §5.3.1, §5.2.2).
func (t *Tag) rfSwitch(off bool, p *pulses) {
	if off {
		t.rfMngtDyn |= rfMngtOff
		t.iso = statePowerOff
		t.rfSession = -1
		t.i2cEvent(gpo2I2CRFOff, p)
		return
	}
	t.rfMngtDyn &^= rfMngtOff
	if t.field {
		t.iso = stateReady
	}
	t.rfSession = -1
}

// i2cWriteUser validates a write on device 53h byte by byte (DS §6.4.1,
// §6.4.2, Table 270, 271, 277) and returns the commit to run at STOP. NACK
// index: 1, 2 are the address bytes; data byte k is index 3+k.
func (t *Tag) i2cWriteUser(addr uint16, a int, data []byte, p *pulses) (func() time.Duration, error) {
	for k := range data {
		idx := 3 + k
		if k >= MailboxSz {
			return nil, nack(addr, idx) // 257th byte (DS §6.4.2)
		}
		b := a + k
		switch {
		case a <= lastUser:
			if t.mbCtrl&mbEN != 0 || b > lastUser || t.areaOf(b) != t.areaOf(a) || !t.i2cCanWrite(b) {
				return nil, nack(addr, idx)
			}
		case a < mbBase:
			// Dynamic registers: one byte, writable ones only (DS §4.4, Table 13).
			if k > 0 || !dynWritable(a) {
				return nil, nack(addr, idx)
			}
		case a == mbBase:
			if !t.mbEnabled() || t.mbBusy() {
				return nil, nack(addr, idx)
			}
		default:
			// Mailbox writes must start at 2008h; nothing else is writable.
			return nil, nack(addr, idx)
		}
	}
	switch {
	case a <= lastUser:
		return func() time.Duration {
			t.user.write(a, data)
			return t.i2cProgramTime(a, len(data))
		}, nil
	case a < mbBase:
		return func() time.Duration { t.writeDyn(a, data[0]); return 0 }, nil
	default:
		return func() time.Duration { t.putMessage(data, false); return 0 }, nil
	}
}

func dynWritable(a int) bool {
	switch a {
	case 0x2000, 0x2002, 0x2003, 0x2006:
		return true
	}
	return false
}

// writeDyn applies a dynamic register write at STOP (no programming time).
func (t *Tag) writeDyn(a int, v byte) {
	switch a {
	case 0x2000:
		t.gpoCtrlDyn = v & 1
	case 0x2002:
		t.ehEN = v&1 != 0
	case 0x2003:
		t.rfMngtDyn = t.rfMngtDyn&rfMngtOff | v&(rfMngtDisable|rfMngtSleep)
	case 0x2006:
		// MB_EN without MB_MODE=1: the only field report (ST community
		// "ST25DV04kc enable mailbox via i2c") saw an ACK and no effect, so
		// the byte is ACKed and ignored (UNCONFIRMED: NACK or ignore is not
		// stated in the DS).
		t.setMBEN(v&1 != 0)
	}
}

// i2cWriteSys validates a write on device 57h: the I2C password commands at
// 0900h (DS §6.6) or one system register byte with the I2C session open
// (DS §6.4.2; ST community "How to configure ST25DV registers via I2C").
func (t *Tag) i2cWriteSys(addr uint16, a int, data []byte, p *pulses) (func() time.Duration, error) {
	if a == pwdAddr {
		return t.i2cPassword(addr, data)
	}
	if len(data) > 1 {
		return nil, nack(addr, 4) // a second byte into the system area
	}
	v := data[0]
	switch {
	case a > regLockCfg, !t.i2cSSO:
		return nil, nack(addr, 3) // read-only register / no session
	case (a == regENDA1 || a == regENDA2 || a == regENDA3) && !t.endaValid(a, v):
		return nil, nack(addr, 3)
	}
	return func() time.Duration {
		t.writeSysReg(a, v)
		return t.i2cProgramTime(a, 1)
	}, nil
}

// i2cPassword handles `09 00 <pwd 8> <09|07> <pwd 8>` (DS §6.6.1, §6.6.2,
// Figure 35, 36). The chip cannot tell Present from Write before the
// validation code, so a refused Write Password (session closed or MB_EN=1)
// is NACKed on that byte (exact position UNCONFIRMED; DS Table 297 shows the
// NACK on the address LSB).
func (t *Tag) i2cPassword(addr uint16, data []byte) (func() time.Duration, error) {
	for k, v := range data {
		switch {
		case k == 8 && v == 0x09:
		case k == 8 && v == 0x07:
			if !t.i2cSSO || t.mbCtrl&mbEN != 0 {
				return nil, nack(addr, 3+k)
			}
		case k == 8, k >= 17:
			return nil, nack(addr, 3+k)
		}
	}
	return func() time.Duration {
		if len(data) != 17 || [8]byte(data[0:8]) != [8]byte(data[9:17]) {
			return 0 // incomplete, or the two copies differ: no comparison
		}
		pwd := [8]byte(data[0:8])
		if data[8] == 0x09 {
			t.i2cSSO = pwd == t.i2cPwd // compared at STOP, no tW
			return 0
		}
		t.i2cPwd = pwd
		return t.i2cProgramTime(0, 8)
	}, nil
}

// i2cRead fills r from address a of device dev. Unreadable bytes read FFh
// and stop the address counter (DS §6.5, Table 282, 289); reads do not roll
// over (DS §6.5.3). Reading the last byte of an RF message releases it at
// the STOP (DS §5.1.2, Table 294).
func (t *Tag) i2cRead(dev i2cDev, a int, r []byte) {
	stopped, hitEnd := false, false
	for i := range r {
		r[i] = 0xFF
		if stopped {
			continue
		}
		var v byte
		var good bool
		if dev == devUser {
			v, good = t.readUserByte(a+i, &hitEnd)
		} else {
			v, good = t.readSysByte(a + i)
		}
		if !good {
			stopped = true
			t.ptr = a + i
			continue
		}
		r[i] = v
	}
	if !stopped {
		t.ptr = a + len(r)
	}
	if hitEnd {
		t.releaseRFMessage()
	}
}

func (t *Tag) readUserByte(b int, hitEnd *bool) (byte, bool) {
	switch {
	case b < 0:
		return 0, false
	case b <= lastUser:
		if !t.i2cCanRead(b) {
			return 0, false
		}
		return t.user.at(b), true
	case b < mbBase:
		return t.readDyn(b), true
	case b <= mbLast:
		o := b - mbBase
		// FFh with FTM off (DS Table 295) and past the message end (DS
		// §5.1.2; whether stale bytes show instead is UNCONFIRMED).
		if !t.mbEnabled() || o >= t.mbMsgLen() {
			return 0, false
		}
		if o == t.mbMsgLen()-1 {
			*hitEnd = true
		}
		return t.mailbox[o], true
	}
	return 0, false
}

func (t *Tag) readDyn(b int) byte {
	switch b {
	case 0x2000:
		return t.gpoCtrlDyn
	case 0x2002:
		return t.ehCtrl()
	case 0x2003:
		return t.rfMngtDyn
	case 0x2004:
		if t.i2cSSO {
			return 1
		}
		return 0
	case 0x2005:
		v := t.itSts
		t.itSts = 0 // clear on read (DS Table 36)
		return v
	case 0x2006:
		return t.mbCtrl
	case 0x2007:
		return t.mbLen
	}
	return 0 // 2001h reserved
}

func (t *Tag) readSysByte(b int) (byte, bool) {
	switch {
	case b >= 0 && b <= lastSysAddr:
		return t.sys[b], true
	case b >= pwdAddr && b < pwdAddr+8:
		if !t.i2cSSO {
			return 0, false // I2C_PWD readable only in an I2C session (DS Table 291)
		}
		return t.i2cPwd[b-pwdAddr], true
	}
	return 0, false
}
