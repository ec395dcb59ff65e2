package st25dv

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/timing"
)

// Memory geometry of the ST25DV64KC (DS §4.2, Table 3, Table 4).
const (
	UserSize  = 8192          // user EEPROM bytes (64 Kbit)
	BlockSize = 4             // RF block size in bytes (BLK_SIZE = 03h, DS Table 81)
	NumBlocks = UserSize / 4  // 2048 RF blocks, 0000h..07FFh (MEM_SIZE = 07FFh, DS Table 79)
	lastBlock = NumBlocks - 1 //
	lastUser  = UserSize - 1  // 1FFFh
	maxENDA   = 0xFF          // largest ENDAi on the 64KC (DS Table 7)
	MailboxSz = 256           // FTM mailbox RAM (DS §5.1)
	icRef64KC = 0x51          // IC_REF of the 64KC (DS Table 83)
	sysSize   = 0x24          // system configuration area 0000h..0023h (DS Table 12)
	pwdAddr   = 0x0900        // I2C_PWD (DS Table 57)
	dynBase   = 0x2000        // dynamic registers (DS Table 13)
	mbBase    = 0x2008        // mailbox RAM (DS Table 14)
	mbLast    = mbBase + MailboxSz - 1
)

// System configuration register addresses (I2C address on device 0x57; the
// RF Read/Write Configuration pointer is the same number where RF access
// exists). DS Table 12.
const (
	regGPO1     = 0x00
	regGPO2     = 0x01
	regEHMode   = 0x02
	regRFMngt   = 0x03
	regRFA1SS   = 0x04
	regENDA1    = 0x05
	regRFA2SS   = 0x06
	regENDA2    = 0x07
	regRFA3SS   = 0x08
	regENDA3    = 0x09
	regRFA4SS   = 0x0A
	regI2CSS    = 0x0B
	regLockCC   = 0x0C
	regFTM      = 0x0D
	regI2CCfg   = 0x0E
	regLockCfg  = 0x0F
	regLockDSF  = 0x10
	regLockAFI  = 0x11
	regDSFID    = 0x12
	regAFI      = 0x13
	regMemSize  = 0x14 // and 0x15
	regBlkSize  = 0x16
	regICRef    = 0x17
	regUID      = 0x18 // ..0x1F, LSB first
	regICRev    = 0x20
	lastSysAddr = sysSize - 1
)

// GPO1 enable bits (DS Table 30).
const (
	gpo1GPOEn     = 0x01
	gpo1RFUser    = 0x02
	gpo1RFAct     = 0x04
	gpo1RFIntr    = 0x08
	gpo1FieldChg  = 0x10
	gpo1RFPutMsg  = 0x20
	gpo1RFGetMsg  = 0x40
	gpo1RFWrite   = 0x80
	gpo2I2CWrite  = 0x01 // GPO2 (DS Table 32)
	gpo2I2CRFOff  = 0x02 //
	rfMngtDisable = 0x01 // RF_MNGT(_Dyn) (DS Table 22, Table 24)
	rfMngtSleep   = 0x02 //
	rfMngtOff     = 0x04 // RF_MNGT_Dyn only: set by the RFSwitchOff I2C command
	i2cCfgSwOffEn = 0x20 // I2C_CFG b5 I2C_RF_SWITCHOFF_EN (DS Table 90)
)

// IT_STS_Dyn bits (DS Table 36).
const (
	itRFUser       = 0x01
	itRFActivity   = 0x02
	itRFInterrupt  = 0x04
	itFieldFalling = 0x08
	itFieldRising  = 0x10
	itRFPutMsg     = 0x20
	itRFGetMsg     = 0x40
	itRFWrite      = 0x80
)

// MB_CTRL_Dyn bits (DS Table 18).
const (
	mbEN          = 0x01
	mbHostPut     = 0x02
	mbRFPut       = 0x04
	mbHostMiss    = 0x10
	mbRFMiss      = 0x20
	mbHostCurrent = 0x40
	mbRFCurrent   = 0x80
)

// Config configures a Tag. The zero value is a factory-fresh chip with a
// default UID.
type Config struct {
	// UID MSB first as printed: E0 02 51 xx xx xx xx xx. Zero value => E0 02 51 00 00 00 00 01.
	UID [8]byte
	// Clock accounts (and in realistic mode sleeps) modelled time. nil => instant.
	Clock *timing.Clock

	// I2CPassword is the 64-bit I2C password, MSB first (the order of the
	// 0900h..0907h registers and of the present-password sequence, DS §6.6).
	// Factory value: all zero (DS Table 58).
	I2CPassword [8]byte
	// RFPasswords are RF_PWD_0 (configuration) .. RF_PWD_3, compared byte by
	// byte in the order they are sent in Present Password. DS §7.6 says
	// multi-byte fields go LSByte first but the byte order of passwords on air
	// is UNCONFIRMED; RFAL sends the caller's buffer verbatim, and so do we.
	// Factory value: all zero (DS §5.6.2).
	RFPasswords [4][8]byte
	// FTM is the initial static FTM register 000Dh (b0 MB_MODE, b3..b1
	// MB_WDG). Factory 00h (DS Table 16). Set 01h for a board whose firmware
	// has already authorised the mailbox once (it is EEPROM, it persists).
	FTM byte
	// UserMemory, if non-nil, is copied to the start of the user EEPROM
	// (at most 8192 bytes); the rest stays at the factory 00h.
	UserMemory []byte
	// ICRev is IC_REV (0020h); 0 => 11h as read on a real ST25DV64KC board.
	ICRev byte

	// SwitchOffE2Low selects the RFSwitchOff/On device-select convention of
	// DS Rev 2 (E2=0 → switch-off, 7-bit 51h). The default follows ST's
	// x-cube-nfc7 driver, which states the datasheet had them swapped:
	// E2=1 → switch-off (55h), E2=0 → switch-on (51h) (st25dvxxkc.c
	// ST25DVxxKC_WriteI2CSlaveMode). CONFLICT with DS Rev 2 Table 88.
	SwitchOffE2Low bool
	// I2CClockHz is the SCL frequency used to model I2C bus time; 0 => 400 kHz.
	I2CClockHz int
	// I2CWriteTime is tW per 16-byte EEPROM row touched; 0 => 5 ms (DS Table 250 max).
	I2CWriteTime time.Duration
}

// ISO 15693 tag states (DS §7.4.2, Figure 38).
type isoState int

const (
	statePowerOff isoState = iota
	stateReady
	stateQuiet
	stateSelected
)

// Tag is one emulated ST25DV64KC. It is safe for concurrent use by an RF
// reader and an I2C controller.
type Tag struct {
	mu      sync.Mutex
	clock   *timing.Clock
	modeled atomic.Int64 // ns
	gpo     *bus.Line
	uid     [8]byte // MSB first

	swOffE2Low bool
	i2cHz      int
	tW         time.Duration

	// Non-volatile.
	user   eeprom // eeprom.go
	sys    [sysSize]byte
	i2cPwd [8]byte
	rfPwd  [4][8]byte

	// Power.
	vcc, field bool

	// Dynamic registers (DS §4.4), lost at VCC off / POR.
	gpoCtrlDyn byte
	ehEN       bool
	rfMngtDyn  byte
	i2cSSO     bool
	itSts      byte
	mbCtrl     byte
	mbLen      byte
	mailbox    [MailboxSz]byte

	// RF side.
	iso       isoState
	rfSession int // -1: none; 0: configuration (RF_PWD_0); 1..3: user areas
	rfBusy    bool
	userLevel bool // RF_USER level held by Manage GPO

	// I2C side.
	ptr       int       // address counter (DS §6.5.2)
	busyUntil time.Time // EEPROM programming in progress (realistic mode only)

	// Mailbox watchdog (DS §5.1.2, Table 16).
	wdgGen   uint64
	wdgTimer *time.Timer
}

// DefaultUID is used when Config.UID is zero (MSB first).
var DefaultUID = [8]byte{0xE0, 0x02, 0x51, 0x00, 0x00, 0x00, 0x00, 0x01}

// New returns a tag with factory configuration (DS Table 12 defaults), VCC
// off and no RF field.
func New(cfg Config) *Tag {
	t := &Tag{
		clock:      cfg.Clock,
		gpo:        bus.NewLine(),
		uid:        cfg.UID,
		swOffE2Low: cfg.SwitchOffE2Low,
		i2cHz:      cfg.I2CClockHz,
		tW:         cfg.I2CWriteTime,
		i2cPwd:     cfg.I2CPassword,
		rfPwd:      cfg.RFPasswords,
		rfSession:  -1,
	}
	if t.uid == ([8]byte{}) {
		t.uid = DefaultUID
	}
	if t.i2cHz <= 0 {
		t.i2cHz = 400_000
	}
	if t.tW <= 0 {
		t.tW = 5 * time.Millisecond
	}
	t.user.write(0, cfg.UserMemory)
	// Factory values of the system configuration area (DS Table 12 and the
	// per-register tables it points to).
	s := &t.sys
	s[regGPO1] = 0x11   // GPO_EN + FIELD_CHANGE_EN (DS Table 30)
	s[regGPO2] = 0x0C   // IT_TIME = 011b (DS Table 32)
	s[regEHMode] = 0x01 // EH on demand (DS Table 39)
	s[regENDA1] = maxENDA
	s[regENDA2] = maxENDA
	s[regENDA3] = maxENDA
	s[regFTM] = cfg.FTM & 0x0F // b7..b4 RFU
	s[regI2CCfg] = 0x1A        // device code 1010b, E0=1 → 53h/57h (DS Table 90)
	s[regMemSize] = 0xFF       // 07FFh blocks-1, LSB first (DS Table 79)
	s[regMemSize+1] = 0x07
	s[regBlkSize] = BlockSize - 1
	s[regICRef] = icRef64KC
	for i := 0; i < 8; i++ {
		s[regUID+i] = t.uid[7-i] // 0018h = UID LSB (DS Table 85)
	}
	s[regICRev] = cfg.ICRev
	if s[regICRev] == 0 {
		s[regICRev] = 0x11
	}
	t.resetDynamic()
	return t
}

// UID returns the tag UID, MSB first.
func (t *Tag) UID() [8]byte { return t.uid }

// GPO returns the GPO interrupt line.
func (t *Tag) GPO() *bus.Line { return t.gpo }

// ModeledTime returns the total modelled time of this tag's RF and I2C
// operations.
func (t *Tag) ModeledTime() time.Duration { return time.Duration(t.modeled.Load()) }

// spend accounts d (and sleeps it in realistic mode). Never call with mu held.
func (t *Tag) spend(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t.modeled.Add(int64(d))
	return t.clock.Spend(ctx, d)
}

func (t *Tag) realistic() bool { return t.clock.Mode() == timing.Realistic }

// resetDynamic loads the POR values of the dynamic registers: the "dynamic
// images" of GPO1.GPO_EN, EH_MODE and RF_MNGT are refreshed from their static
// registers; MB_CTRL_Dyn is not loaded from FTM, it is always 00h at boot
// (DS §4.4, §5.1.2; ST community "About the value of MB_MODE of ST25DV64K
// at power-on").
func (t *Tag) resetDynamic() {
	t.gpoCtrlDyn = t.sys[regGPO1] & gpo1GPOEn
	t.ehEN = t.sys[regEHMode]&1 == 0
	t.rfMngtDyn = t.sys[regRFMngt] & (rfMngtDisable | rfMngtSleep)
	t.i2cSSO = false
	t.itSts = 0
	t.mbCtrl = 0
	t.mbLen = 0
	t.ptr = 0
	t.stopWatchdog()
}

// SetVCC powers the I2C side on or off. VCC off is a POR of the dynamic
// registers: the I2C session closes, MB_CTRL_Dyn returns to 00h (FTM
// disabled, DS Figure 12) and RF-off mode is left (DS §5.3.1).
func (t *Tag) SetVCC(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on == t.vcc {
		return
	}
	t.vcc = on
	if !on {
		t.resetDynamic()
		t.busyUntil = time.Time{}
	}
}

// FieldOn signals an RF field appearing (a phone tapping). The ISO state
// machine boots into Ready and a FIELD_CHANGE (rising) event is raised
// (DS §5.4.1, Figure 19).
func (t *Tag) FieldOn() { t.setField(true) }

// FieldOff signals the field vanishing (the phone lifted). RF sessions close
// and the ISO state is lost (DS §5.6.2, §7.4.2). The mailbox is not touched:
// FTM state depends only on VCC and MB_EN (DS Figure 12; our inference,
// UNCONFIRMED by test). A falling FIELD_CHANGE is reported only with VCC present.
func (t *Tag) FieldOff() { t.setField(false) }

// setField is FieldOn and FieldOff: a change of the field closes the RF
// sessions and moves the ISO state machine.
func (t *Tag) setField(on bool) {
	t.mu.Lock()
	if t.field == on {
		t.mu.Unlock()
		return
	}
	t.field = on
	t.rfSession = -1
	var p pulses
	if on {
		t.iso = stateReady
		t.fieldEvent(itFieldRising, &p)
	} else {
		t.iso = statePowerOff
		if t.vcc {
			t.fieldEvent(itFieldFalling, &p)
		}
	}
	t.mu.Unlock()
	p.fire(t.gpo)
}

// fieldEvent applies DS Table 27: RF_OFF → nothing; RF_SLEEP → IT_STS only.
func (t *Tag) fieldEvent(bit byte, p *pulses) {
	if t.rfMngtDyn&rfMngtOff != 0 || t.sys[regGPO1]&gpo1FieldChg == 0 {
		return
	}
	t.itSts |= bit
	if t.rfMngtDyn&rfMngtSleep == 0 && t.gpoCtrlDyn&1 != 0 {
		p.n++
	}
}

// rfEvent latches an RF event in IT_STS_Dyn when it is enabled in GPO1 and
// queues a GPO pulse when the GPO output is enabled (DS §5.4.1, Table 36:
// IT_STS_Dyn is updated even with the GPO output disabled).
func (t *Tag) rfEvent(gpo1Bit, itBit byte, p *pulses) {
	if t.sys[regGPO1]&gpo1Bit == 0 {
		return
	}
	t.itSts |= itBit
	if t.gpoCtrlDyn&1 != 0 {
		p.n++
	}
}

// i2cEvent queues a pulse for an I2C event enabled in GPO2 (DS §5.4.2); I2C
// events have no IT_STS_Dyn bit.
func (t *Tag) i2cEvent(gpo2Bit byte, p *pulses) {
	if t.sys[regGPO2]&gpo2Bit != 0 && t.gpoCtrlDyn&1 != 0 {
		p.n++
	}
}

// pulses collects GPO pulses to emit once the triggering exchange is over
// (the chip pulses after the response EOF or the I2C STOP), outside mu.
type pulses struct{ n int }

func (p *pulses) fire(l *bus.Line) {
	for i := 0; i < p.n; i++ {
		l.Pulse()
	}
}

// ehCtrl composes EH_CTRL_Dyn (DS Table 41): b0 EH_EN, b1 EH_ON, b2 FIELD_ON, b3 VCC_ON.
func (t *Tag) ehCtrl() byte {
	var v byte
	if t.ehEN {
		v |= 0x01
		if t.field {
			v |= 0x02 // harvesting actually on only with a field
		}
	}
	if t.field {
		v |= 0x04
	}
	if t.vcc {
		v |= 0x08
	}
	return v
}

// ---- Areas and access rights (DS §4.2.1, §5.6.3) ----

// areaOf returns the user area 1..4 holding byte address a: the last byte of
// area i is 32·ENDAi + 31.
func (t *Tag) areaOf(a int) int {
	for i, r := range [3]int{regENDA1, regENDA2, regENDA3} {
		if a <= 32*int(t.sys[r])+31 {
			return i + 1
		}
	}
	return 4
}

func (t *Tag) rfassOf(area int) byte {
	return t.sys[[4]int{regRFA1SS, regRFA2SS, regRFA3SS, regRFA4SS}[area-1]]
}

// rfAreaSession reports whether the RF user session that unlocks area is open.
func (t *Tag) rfAreaSession(area int) bool {
	pc := int(t.rfassOf(area) & 3)
	return pc != 0 && t.rfSession == pc
}

// rfCanRead implements DS Table 44..50: area 1 is always readable; other
// areas with RW_PROTECTION 1x need the area's session.
func (t *Tag) rfCanRead(block int) bool {
	area := t.areaOf(block * BlockSize)
	if area == 1 {
		return true
	}
	return (t.rfassOf(area)>>2)&3 < 2 || t.rfAreaSession(area)
}

// rfWriteLocked reports whether an RF write of block is refused right now
// (also the b0 of the block security status, DS Table 109).
func (t *Tag) rfWriteLocked(block int) bool {
	if block < 2 && t.sys[regLockCC]&(1<<block) != 0 {
		return true // LOCK_CCFILE, regardless of RFA1SS (DS §5.6.3)
	}
	area := t.areaOf(block * BlockSize)
	switch (t.rfassOf(area) >> 2) & 3 {
	case 0:
		return false
	case 3:
		return true
	default:
		return !t.rfAreaSession(area)
	}
}

// i2cssOf returns the 2 I2CSS bits of area (DS Table 52).
func (t *Tag) i2cssOf(area int) byte { return (t.sys[regI2CSS] >> (2 * (area - 1))) & 3 }

// i2cCanRead: area 1 always; other areas with I2CSS b1 set need the I2C session.
func (t *Tag) i2cCanRead(a int) bool {
	area := t.areaOf(a)
	return area == 1 || t.i2cssOf(area)&2 == 0 || t.i2cSSO
}

// i2cCanWrite: I2CSS b0 set → write needs the I2C session (all areas, DS
// Table 52); bytes 0000h..0007h also obey LOCK_CCFILE (DS §6.4.1).
func (t *Tag) i2cCanWrite(a int) bool {
	if a < 8 && t.sys[regLockCC]&(1<<(a/4)) != 0 {
		return false
	}
	return t.i2cssOf(t.areaOf(a))&1 == 0 || t.i2cSSO
}

// endaValid checks a prospective ENDAi write (DS §4.2.1): the resulting
// triple must be one of the four valid layouts (1..4 areas). This reading of
// the ordering rule accepts exactly the datasheet's recommended procedure.
func (t *Tag) endaValid(reg int, v byte) bool {
	e := [3]int{int(t.sys[regENDA1]), int(t.sys[regENDA2]), int(t.sys[regENDA3])}
	e[(reg-regENDA1)/2] = int(v)
	switch {
	case e[0] == maxENDA && e[1] == maxENDA && e[2] == maxENDA:
	case e[0] < e[1] && e[1] == maxENDA && e[2] == maxENDA:
	case e[0] < e[1] && e[1] < e[2] && e[2] == maxENDA:
	case e[0] < e[1] && e[1] < e[2] && e[2] < maxENDA:
	default:
		return false
	}
	return true
}

// writeSysReg stores a validated system register value and refreshes its
// dynamic image (DS §4.4, §5 intro: config writes apply immediately).
func (t *Tag) writeSysReg(a int, v byte) {
	switch a {
	case regFTM:
		v &= 0x0F
		if v&1 == 0 {
			t.setMBEN(false) // clearing MB_MODE forces MB_EN=0 (DS Table 18 note 1)
		}
	case regGPO1:
		t.gpoCtrlDyn = v & gpo1GPOEn
	case regEHMode:
		if v&1 == 0 {
			t.ehEN = true // writing 0 sets EH_EN at once; writing 1 does not clear it (DS §5.5.2)
		}
	case regRFMngt:
		v &= 0x03
		t.rfMngtDyn = t.rfMngtDyn&rfMngtOff | v
	case regLockCfg:
		v &= 0x01
	}
	t.sys[a] = v
}
