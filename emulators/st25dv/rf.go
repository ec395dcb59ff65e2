package st25dv

import (
	"context"
	"encoding/binary"
	"time"
)

// ISO 15693 request flags (DS Table 96..98).
const (
	flagSubcarrier = 0x01
	flagHighRate   = 0x02
	flagInventory  = 0x04
	flagSelect     = 0x10 // non-inventory: Select_flag; inventory: AFI_flag
	flagAddress    = 0x20 // non-inventory: Address_flag; inventory: Nb_slots_flag (1 slot)
	flagOption     = 0x40
)

// RF error codes (DS Table 101).
const (
	ErrCodeNotSupported  = 0x01
	ErrCodeFormat        = 0x02
	ErrCodeOption        = 0x03
	ErrCodeUnknown       = 0x0F
	ErrCodeBlockNA       = 0x10
	ErrCodeAlreadyLocked = 0x11
	ErrCodeLocked        = 0x12
	ErrCodeProgram       = 0x13
	ErrCodeLockFailed    = 0x14
	ErrCodeReadProtected = 0x15
)

// Command codes (DS Table 103; RFAL rfal_nfcv.h).
const (
	cmdInventory      = 0x01
	cmdStayQuiet      = 0x02
	cmdReadSingle     = 0x20
	cmdWriteSingle    = 0x21
	cmdLockBlock      = 0x22
	cmdReadMultiple   = 0x23
	cmdWriteMultiple  = 0x24
	cmdSelect         = 0x25
	cmdResetToReady   = 0x26
	cmdWriteAFI       = 0x27
	cmdLockAFI        = 0x28
	cmdWriteDSFID     = 0x29
	cmdLockDSFID      = 0x2A
	cmdGetSysInfo     = 0x2B
	cmdGetMultiSec    = 0x2C
	cmdExtReadSingle  = 0x30
	cmdExtWriteSingle = 0x31
	cmdExtLockBlock   = 0x32
	cmdExtReadMulti   = 0x33
	cmdExtWriteMulti  = 0x34
	cmdExtGetSysInfo  = 0x3B
	cmdExtGetMultiSec = 0x3C
	cmdReadConfig     = 0xA0
	cmdWriteConfig    = 0xA1
	cmdManageGPO      = 0xA9
	cmdWriteMsg       = 0xAA
	cmdReadMsgLen     = 0xAB
	cmdReadMsg        = 0xAC
	cmdReadDynCfg     = 0xAD
	cmdWriteDynCfg    = 0xAE
	cmdWritePwd       = 0xB1
	cmdPresentPwd     = 0xB3
	mfgST             = 0x02 // IC manufacturer code of STMicroelectronics
)

// fastOf maps the fast commands onto their normal-rate twins: same request,
// response at twice the data rate (DS §7.6.37..7.6.44, Appendix A). C1h/C2h
// exist on other ST tags but not on the KC (DS Table 103) → not supported.
var fastOf = map[byte]byte{
	0xC0: cmdReadSingle, 0xC3: cmdReadMultiple, 0xC4: cmdExtReadSingle, 0xC5: cmdExtReadMulti,
	0xCA: cmdWriteMsg, 0xCB: cmdReadMsgLen, 0xCC: cmdReadMsg, 0xCD: cmdReadDynCfg, 0xCE: cmdWriteDynCfg,
}

// rfReq is a parsed request.
type rfReq struct {
	flags     byte
	cmd       byte // after mapping a fast command to its normal twin
	fast      bool
	param     byte // Ext Get System Info parameter request field
	addressed bool
	sel       bool
	option    bool
	p         []byte // parameters after flags, cmd, [mfg], [param], [UID]
}

// rfResult is what one request produces.
type rfResult struct {
	resp     []byte
	silent   bool
	wait     time.Duration // 0 → t1; Wt for EEPROM writes
	fast     bool
	activity bool // RF_ACTIVITY level from request EOF to response EOF
	level    int  // Manage GPO: +1 drive RF_USER, -1 release, 0 untouched
	p        pulses
}

var silence = rfResult{silent: true}

func ok(data ...byte) rfResult { return rfResult{resp: append([]byte{0x00}, data...)} }
func fail(code byte) rfResult  { return rfResult{resp: []byte{0x01, code}} }

type cmdSpec struct {
	h      func(*Tag, *rfReq) rfResult
	option bool // Option_flag meaningful (reads: security status; writes: wait for EOF)
}

var cmds = map[byte]cmdSpec{
	cmdReadSingle:     {(*Tag).cmdReadSingle, true},
	cmdExtReadSingle:  {(*Tag).cmdReadSingle, true},
	cmdWriteSingle:    {(*Tag).cmdWriteBlocks, true},
	cmdExtWriteSingle: {(*Tag).cmdWriteBlocks, true},
	cmdWriteMultiple:  {(*Tag).cmdWriteBlocks, true},
	cmdExtWriteMulti:  {(*Tag).cmdWriteBlocks, true},
	cmdReadMultiple:   {(*Tag).cmdReadMultiple, true},
	cmdExtReadMulti:   {(*Tag).cmdReadMultiple, true},
	cmdLockBlock:      {(*Tag).cmdLockBlock, true},
	cmdExtLockBlock:   {(*Tag).cmdLockBlock, true},
	cmdSelect:         {(*Tag).cmdSelect, false},
	cmdResetToReady:   {(*Tag).cmdResetToReady, false},
	cmdWriteAFI:       {(*Tag).cmdWriteAFIDSFID, true},
	cmdWriteDSFID:     {(*Tag).cmdWriteAFIDSFID, true},
	cmdLockAFI:        {(*Tag).cmdLockAFIDSFID, true},
	cmdLockDSFID:      {(*Tag).cmdLockAFIDSFID, true},
	cmdGetSysInfo:     {(*Tag).cmdGetSysInfo, false},
	cmdExtGetSysInfo:  {(*Tag).cmdExtGetSysInfo, false},
	cmdGetMultiSec:    {(*Tag).cmdGetMultiSec, false},
	cmdExtGetMultiSec: {(*Tag).cmdGetMultiSec, false},
	cmdReadConfig:     {(*Tag).cmdReadConfig, false},
	cmdWriteConfig:    {(*Tag).cmdWriteConfig, true},
	cmdManageGPO:      {(*Tag).cmdManageGPO, false},
	cmdWriteMsg:       {(*Tag).cmdWriteMsg, false},
	cmdReadMsgLen:     {(*Tag).cmdReadMsgLen, false},
	cmdReadMsg:        {(*Tag).cmdReadMsg, false},
	cmdReadDynCfg:     {(*Tag).cmdReadDynCfg, false},
	cmdWriteDynCfg:    {(*Tag).cmdWriteDynCfg, false},
	cmdWritePwd:       {(*Tag).cmdWritePwd, true},
	cmdPresentPwd:     {(*Tag).cmdPresentPwd, false},
}

// Transceive runs one RF exchange: req is an ISO 15693 request without CRC
// (flags, command, [IC mfg code 02h for custom commands], [UID LSB first if
// addressed], parameters); the result is the response without CRC, flags
// byte first, or (nil, nil) when the chip stays silent. The exchange's
// modelled duration is spent on the clock before returning; GPO pulses fire
// after it (the chip pulses after the response EOF, DS §5.4.1). Without an
// RF field the chip is unpowered on the RF side and silent.
func (t *Tag) Transceive(ctx context.Context, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(req) == 0 {
		return nil, nil
	}
	t.mu.Lock()
	res := t.rf(req)
	// RF busy: I2C device selects are NACKed from request SOF to response EOF
	// (DS §5.3). Only modelled when time really passes; in instant mode the
	// exchange is atomic, so I2C never sees a spurious NACK.
	busy := t.realistic()
	t.rfBusy = busy
	activity := res.activity && t.gpoCtrlDyn&1 != 0 && !t.userLevel
	t.mu.Unlock()

	if activity {
		t.gpo.Set(true)
	}
	rate := rateLow
	if req[0]&flagHighRate != 0 {
		rate = rateHigh
	}
	err := t.spend(ctx, exchangeTime(len(req), res.resp, res.silent, res.wait, rate, res.fast))

	t.mu.Lock()
	t.rfBusy = false
	t.mu.Unlock()
	if activity {
		t.gpo.Set(false)
	}
	switch res.level {
	case 1:
		t.gpo.Set(true)
	case -1:
		t.gpo.Set(false)
	}
	res.p.fire(t.gpo)
	if err != nil {
		return nil, err
	}
	if res.silent {
		return nil, nil
	}
	return res.resp, nil
}

func (t *Tag) uidMatches(lsbFirst []byte) bool {
	for i := 0; i < 8; i++ {
		if lsbFirst[i] != t.uid[7-i] {
			return false
		}
	}
	return true
}

func (t *Tag) uidLSB() []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = t.uid[7-i]
	}
	return b
}

// i2cBusyRF reports I2C busy as seen from RF: EEPROM programming after an I2C
// STOP (realistic mode only; I2C transactions themselves are atomic here).
func (t *Tag) i2cBusyRF() bool { return !t.busyUntil.IsZero() && time.Now().Before(t.busyUntil) }

// rf interprets one request with t.mu held. Flag and state rules: DS §7.4,
// §7.6.3, Table 94; RF_MNGT modes: DS Table 25..27.
func (t *Tag) rf(req []byte) rfResult {
	if !t.field || t.rfMngtDyn&(rfMngtOff|rfMngtSleep) != 0 || len(req) < 2 {
		return silence
	}
	flags, cmd := req[0], req[1]
	if flags&flagInventory != 0 || cmd == cmdInventory {
		// The Inventory_flag changes the meaning of b4/b5; only Inventory
		// may carry it, and Inventory must. Anything else cannot be answered.
		if flags&flagInventory == 0 || cmd != cmdInventory {
			return silence
		}
		return t.inventory(flags, req[2:])
	}
	r := rfReq{flags: flags, cmd: cmd, addressed: flags&flagAddress != 0, sel: flags&flagSelect != 0, option: flags&flagOption != 0}
	p := req[2:]
	custom := cmd >= 0xA0 && cmd <= 0xDF // ISO custom command range
	mfg := byte(mfgST)
	if custom {
		if len(p) < 1 {
			return silence
		}
		mfg, p = p[0], p[1:]
	}
	if base, isFast := fastOf[cmd]; isFast {
		r.cmd, r.fast = base, true
	}
	if cmd == cmdExtGetSysInfo {
		// The parameter request field precedes the UID (RFAL
		// rfalNfcvPollerExtendedGetSystemInformation passes it as "param").
		if len(p) < 1 {
			if r.addressed {
				return silence
			}
			return fail(ErrCodeFormat)
		}
		r.param, p = p[0], p[1:]
	}
	if r.addressed {
		if len(p) < 8 {
			return silence
		}
		match := t.uidMatches(p[:8])
		p = p[8:]
		if !match {
			// Select addressed to another tag deselects us (DS §7.4.3).
			if cmd == cmdSelect && t.iso == stateSelected {
				t.iso = stateReady
			}
			return silence
		}
	}
	r.p = p
	if cmd == cmdStayQuiet {
		// Addressed only; never answers (DS Table 106).
		if r.addressed && !r.sel && t.rfMngtDyn&rfMngtDisable == 0 && !t.i2cBusyRF() {
			t.iso = stateQuiet
		}
		return silence
	}
	if r.addressed && r.sel {
		return fail(ErrCodeOption) // bad flags, our UID was given (DS §7.6.3)
	}
	switch t.iso {
	case stateQuiet:
		if !r.addressed {
			return silence // Quiet answers addressed requests only
		}
	case stateReady:
		if r.sel {
			return silence // not selected
		}
	}
	if cmd == cmdSelect && !r.addressed {
		return silence // Select without a UID cannot be ours
	}
	if t.rfMngtDyn&rfMngtDisable != 0 {
		return fail(ErrCodeUnknown) // RF_DISABLE: not processed, 0Fh after t1 (DS Table 25)
	}
	if t.i2cBusyRF() {
		// DS §5.3 / §7.6.3: Select and Reset to Ready get no answer; others
		// 0Fh when non-addressed (already filtered to non-quiet / selected).
		if cmd == cmdSelect || cmd == cmdResetToReady || r.addressed {
			return silence
		}
		return fail(ErrCodeUnknown)
	}
	if custom && mfg != mfgST {
		return fail(ErrCodeFormat) // custom command for another manufacturer (DS §7.6.3)
	}
	spec, known := cmds[r.cmd]
	if !known {
		// Unknown codes: 01h "not supported" (DS Table 101). Whether the KC
		// answers or stays silent is UNCONFIRMED (the DS does not say);
		// ISO 15693 error 01h is what RFAL expects from ST tags.
		return fail(ErrCodeNotSupported)
	}
	if r.fast && flags&flagSubcarrier != 0 {
		// Fast commands are one-subcarrier only; the error code is
		// UNCONFIRMED (DS §7.6.37 does not give it): 0Fh.
		return fail(ErrCodeUnknown)
	}
	if r.option && !spec.option {
		return fail(ErrCodeOption)
	}
	res := spec.h(t, &r)
	res.fast = r.fast
	if !res.silent {
		res.activity = t.sys[regGPO1]&gpo1RFAct != 0
		if res.activity {
			t.itSts |= itRFActivity
		}
	}
	return res
}

// inventory implements Inventory (DS Table 104, 105) with AFI and mask
// matching per ISO/IEC 15693-3 as generally implemented (the standard itself
// was not read: UNCONFIRMED details). 16-slot
// inventories are answered only when this tag falls in slot 0: the slot
// EOFs that follow are not frames at this API (simplification).
func (t *Tag) inventory(flags byte, p []byte) rfResult {
	if t.iso == stateQuiet || t.rfMngtDyn&rfMngtDisable != 0 || t.i2cBusyRF() {
		return silence
	}
	if flags&flagSelect != 0 { // AFI flag
		if len(p) < 1 {
			return silence
		}
		afi := p[0]
		p = p[1:]
		if afi != 0 && afi != t.sys[regAFI] {
			return silence
		}
	}
	if len(p) < 1 {
		return silence
	}
	mlen := int(p[0])
	p = p[1:]
	oneSlot := flags&flagAddress != 0
	maxLen := 64
	if !oneSlot {
		maxLen = 60
	}
	if mlen > maxLen || len(p) != (mlen+7)/8 {
		return silence
	}
	uid := binary.BigEndian.Uint64(t.uid[:]) // LSB of the UID is bit 0
	var mask uint64
	for i, b := range p {
		mask |= uint64(b) << (8 * i)
	}
	if mlen < 64 {
		lo := uint64(1)<<mlen - 1
		if uid&lo != mask&lo {
			return silence
		}
		if !oneSlot && (uid>>mlen)&0xF != 0 {
			return silence
		}
	} else if uid != mask {
		return silence
	}
	return ok(append([]byte{t.sys[regDSFID]}, t.uidLSB()...)...)
}

// ---- parameter helpers ----

// blockNum reads a block number: 1 byte, or 2 bytes LSB first for the
// extended commands (DS §7.6.11).
func blockNum(p []byte, ext bool) (int, []byte, bool) {
	if ext {
		if len(p) < 2 {
			return 0, p, false
		}
		return int(p[0]) | int(p[1])<<8, p[2:], true
	}
	if len(p) < 1 {
		return 0, p, false
	}
	return int(p[0]), p[1:], true
}

func isExt(cmd byte) bool { return cmd >= 0x30 && cmd <= 0x3C }

// blockRange reads the first block and the count − 1 of a multiple-block
// command; a code other than 0 is the error to answer.
func blockRange(r *rfReq) (first, n int, code byte) {
	ext := isExt(r.cmd)
	first, rest, good := blockNum(r.p, ext)
	n, rest, good2 := blockNum(rest, ext)
	if !good || !good2 || len(rest) != 0 {
		return 0, 0, ErrCodeFormat
	}
	if first > lastBlock {
		return 0, 0, ErrCodeBlockNA
	}
	return first, n, 0
}

// written answers an EEPROM write: the response comes after the programming
// time wait, and RF_WRITE is raised (DS §5.4.1).
func (t *Tag) written(wait time.Duration) rfResult {
	res := ok()
	res.wait = wait
	t.rfEvent(gpo1RFWrite, itRFWrite, &res.p)
	return res
}

func (t *Tag) secStatus(blk int) byte {
	if t.rfWriteLocked(blk) {
		return 0x01
	}
	return 0x00
}

// ---- block commands ----

// cmdReadSingle: Read Single Block 20h / Ext 30h / Fast C0h / C4h (DS Table 107..114).
func (t *Tag) cmdReadSingle(r *rfReq) rfResult {
	blk, rest, good := blockNum(r.p, isExt(r.cmd))
	if !good || len(rest) != 0 {
		return fail(ErrCodeFormat)
	}
	if blk > lastBlock {
		return fail(ErrCodeBlockNA)
	}
	if !t.rfCanRead(blk) {
		return fail(ErrCodeReadProtected)
	}
	var out []byte
	if r.option {
		out = append(out, t.secStatus(blk))
	}
	return ok(t.user.appendRange(out, blk*BlockSize, BlockSize)...)
}

// cmdReadMultiple: 23h / 33h / C3h / C5h. The KC returns blocks up to the
// first unreadable one instead of failing (DS §4.2.1, AN4911 §3.5); the end
// of memory is treated the same way. A non-extended read running past block
// FFh continues (UNCONFIRMED: the DS does not say).
func (t *Tag) cmdReadMultiple(r *rfReq) rfResult {
	first, n, code := blockRange(r)
	if code != 0 {
		return fail(code)
	}
	var out []byte
	got := 0
	for b := first; b <= first+n && b <= lastBlock; b++ {
		if !t.rfCanRead(b) {
			break
		}
		if r.option {
			out = append(out, t.secStatus(b))
		}
		out = t.user.appendRange(out, b*BlockSize, BlockSize)
		got++
	}
	if got == 0 {
		return fail(ErrCodeReadProtected)
	}
	return ok(out...)
}

// cmdWriteBlocks: Write Single 21h / 31h and Write Multiple 24h / 34h (DS
// Table 115..120, 135..140). All or nothing; at most 4 blocks; no area
// crossing (0Fh); refused while FTM is on (0Fh, DS §5.1.2 caution).
func (t *Tag) cmdWriteBlocks(r *rfReq) rfResult {
	ext := isExt(r.cmd)
	first, rest, good := blockNum(r.p, ext)
	count := 1
	if r.cmd == cmdWriteMultiple || r.cmd == cmdExtWriteMulti {
		var n int
		var good2 bool
		n, rest, good2 = blockNum(rest, ext)
		good = good && good2
		count = n + 1
	}
	if !good {
		return fail(ErrCodeFormat)
	}
	if count > 4 {
		return fail(ErrCodeUnknown) // max 4 blocks (DS §7.6.14); code UNCONFIRMED
	}
	if len(rest) != count*BlockSize {
		return fail(ErrCodeFormat)
	}
	last := first + count - 1
	if last > lastBlock {
		return fail(ErrCodeBlockNA)
	}
	if t.mbCtrl&mbEN != 0 {
		return fail(ErrCodeUnknown)
	}
	if t.areaOf(first*BlockSize) != t.areaOf(last*BlockSize) {
		return fail(ErrCodeUnknown) // area border crossing (DS §4.2.1)
	}
	for b := first; b <= last; b++ {
		if t.rfWriteLocked(b) {
			return fail(ErrCodeLocked)
		}
	}
	t.user.write(first*BlockSize, rest)
	return t.written(writeWait(wtPerBlockN * count))
}

// cmdLockBlock: 22h / 32h lock blocks 0/1 through LOCK_CCFILE; no password
// needed, even with LOCK_CFG=1 (DS §5.6.3, Table 121..126).
func (t *Tag) cmdLockBlock(r *rfReq) rfResult {
	blk, rest, good := blockNum(r.p, isExt(r.cmd))
	if !good || len(rest) != 0 {
		return fail(ErrCodeFormat)
	}
	if blk > 1 {
		return fail(ErrCodeBlockNA)
	}
	if t.sys[regLockCC]&(1<<blk) != 0 {
		return fail(ErrCodeAlreadyLocked)
	}
	t.sys[regLockCC] |= 1 << blk
	return t.written(writeWait(wtPerSysByteN))
}

// ---- ISO state and identification ----

func (t *Tag) cmdSelect(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	t.iso = stateSelected
	return ok()
}

func (t *Tag) cmdResetToReady(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	t.iso = stateReady
	return ok()
}

// cmdWriteAFIDSFID: 27h / 29h, refused once locked (DS Table 147..149, 153..155).
func (t *Tag) cmdWriteAFIDSFID(r *rfReq) rfResult {
	if len(r.p) != 1 {
		return fail(ErrCodeFormat)
	}
	reg, lock := regAFI, regLockAFI
	if r.cmd == cmdWriteDSFID {
		reg, lock = regDSFID, regLockDSF
	}
	if t.sys[lock] != 0 {
		return fail(ErrCodeLocked)
	}
	t.sys[reg] = r.p[0]
	return t.written(writeWait(wtPerSysByteN))
}

// cmdLockAFIDSFID: 28h / 2Ah, permanent (DS Table 150..152, 156..158).
func (t *Tag) cmdLockAFIDSFID(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	lock := regLockAFI
	if r.cmd == cmdLockDSFID {
		lock = regLockDSF
	}
	if t.sys[lock] != 0 {
		return fail(ErrCodeAlreadyLocked)
	}
	t.sys[lock] = 1
	return t.written(writeWait(wtPerSysByteN))
}

// cmdGetSysInfo: 2Bh → info flags 0Bh (DSFID, AFI, IC ref; no memory size on
// the 16KC/64KC, it does not fit one byte), UID, DSFID, AFI, IC_REF (DS Table 160).
func (t *Tag) cmdGetSysInfo(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	out := append([]byte{0x0B}, t.uidLSB()...)
	return ok(append(out, t.sys[regDSFID], t.sys[regAFI], t.sys[regICRef])...)
}

// cmdExtGetSysInfo: 3Bh with a parameter request field (DS Table 163..174):
// b0 DSFID, b1 AFI, b2 memory size (FF 07 03), b3 IC ref, b4 MOI, b5 command
// list (FF 3F 3F 00); CSI (b6) is never returned. The MOI value reported for
// the 64KC is UNCONFIRMED; we report 1 (2-byte block addressing), which is
// what its 2048 blocks need.
func (t *Tag) cmdExtGetSysInfo(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	info := r.param & 0x3F
	out := append([]byte{info}, t.uidLSB()...)
	if info&0x01 != 0 {
		out = append(out, t.sys[regDSFID])
	}
	if info&0x02 != 0 {
		out = append(out, t.sys[regAFI])
	}
	if info&0x04 != 0 {
		out = append(out, t.sys[regMemSize], t.sys[regMemSize+1], t.sys[regBlkSize])
	}
	if info&0x08 != 0 {
		out = append(out, t.sys[regICRef])
	}
	if info&0x20 != 0 {
		out = append(out, 0xFF, 0x3F, 0x3F, 0x00)
	}
	return ok(out...)
}

// cmdGetMultiSec: 2Ch / 3Ch, one status byte per block, no error past the
// end or across areas (DS Table 175..182).
func (t *Tag) cmdGetMultiSec(r *rfReq) rfResult {
	first, n, code := blockRange(r)
	if code != 0 {
		return fail(code)
	}
	var out []byte
	for b := first; b <= first+n && b <= lastBlock; b++ {
		out = append(out, t.secStatus(b))
	}
	return ok(out...)
}

// ---- configuration and security ----

// rfConfigPtr: system registers with an RF pointer (DS Table 12; I2CSS,
// LOCK_CCFILE and I2C_CFG have none; error 10h for pointer 0Eh was observed
// in the ST community thread "Change value on MB_WDG disable I2C").
func rfConfigPtr(ptr byte) bool { return ptr <= regRFA4SS || ptr == regFTM || ptr == regLockCfg }

func (t *Tag) cmdReadConfig(r *rfReq) rfResult {
	if len(r.p) != 1 {
		return fail(ErrCodeFormat)
	}
	if !rfConfigPtr(r.p[0]) {
		return fail(ErrCodeBlockNA)
	}
	return ok(t.sys[r.p[0]])
}

// cmdWriteConfig: A1h needs the RF configuration session (RF_PWD_0) and
// LOCK_CFG=0 (DS §5.6.4). The error for a closed session / LOCK_CFG=1 is
// UNCONFIRMED (0Fh or 12h); 0Fh is used. RF can set LOCK_CFG, never clear it.
func (t *Tag) cmdWriteConfig(r *rfReq) rfResult {
	if len(r.p) != 2 {
		return fail(ErrCodeFormat)
	}
	ptr, v := r.p[0], r.p[1]
	if !rfConfigPtr(ptr) {
		return fail(ErrCodeBlockNA)
	}
	if t.rfSession != 0 || t.sys[regLockCfg]&1 != 0 {
		return fail(ErrCodeUnknown)
	}
	if (ptr == regENDA1 || ptr == regENDA2 || ptr == regENDA3) && !t.endaValid(int(ptr), v) {
		return fail(ErrCodeUnknown) // DS §4.2.1
	}
	t.writeSysReg(int(ptr), v)
	return t.written(writeWait(wtPerSysByteN))
}

// cmdPresentPwd: B3h. Success opens that session and closes any other;
// a wrong password closes all RF sessions (0Fh); a bad number (>3) is 10h
// and leaves the session as is (DS §5.6.2, Table 212..214).
func (t *Tag) cmdPresentPwd(r *rfReq) rfResult {
	n, pwd, code := pwdArgs(r)
	if code != 0 {
		return fail(code)
	}
	if pwd != t.rfPwd[n] {
		t.rfSession = -1
		return fail(ErrCodeUnknown)
	}
	t.rfSession = int(n)
	return ok()
}

// cmdWritePwd: B1h, only with that password's session open (12h otherwise);
// allowed even with LOCK_CFG=1 (DS §5.6.4, Table 209..211).
func (t *Tag) cmdWritePwd(r *rfReq) rfResult {
	n, pwd, code := pwdArgs(r)
	if code != 0 {
		return fail(code)
	}
	if t.rfSession != int(n) {
		return fail(ErrCodeLocked)
	}
	t.rfPwd[n] = pwd
	return t.written(writeWait(2 * wtPerBlockN))
}

// pwdArgs reads the password number (0..3) and the 8-byte password of
// Present and Write Password; a code other than 0 is the error to answer.
func pwdArgs(r *rfReq) (n byte, pwd [8]byte, code byte) {
	if len(r.p) != 9 {
		return 0, pwd, ErrCodeFormat
	}
	if r.p[0] > 3 {
		return 0, pwd, ErrCodeBlockNA
	}
	return r.p[0], [8]byte(r.p[1:9]), 0
}

// cmdManageGPO: A9h (DS Table 195..198). bit7=1 → interrupt pulse (needs
// RF_INTERRUPT_EN); bit7=0 → drive (bit0=0) or release (bit0=1) the RF_USER
// level (needs RF_USER_EN). A value not matching the enabled mode gives 02h
// per the DS error list (Table 198); the DS text also names 0Fh (CONFLICT) —
// the error list is followed.
func (t *Tag) cmdManageGPO(r *rfReq) rfResult {
	if len(r.p) != 1 {
		return fail(ErrCodeFormat)
	}
	v := r.p[0]
	res := ok()
	if v&0x80 != 0 {
		if t.sys[regGPO1]&gpo1RFIntr == 0 {
			return fail(ErrCodeFormat)
		}
		t.rfEvent(gpo1RFIntr, itRFInterrupt, &res.p)
		return res
	}
	if t.sys[regGPO1]&gpo1RFUser == 0 {
		return fail(ErrCodeFormat)
	}
	if v&1 == 0 {
		t.userLevel = true
		t.itSts |= itRFUser
		if t.gpoCtrlDyn&1 != 0 {
			res.level = 1
		}
	} else {
		t.userLevel = false
		res.level = -1
	}
	return res
}

// ---- dynamic registers and mailbox ----

// cmdReadDynCfg: ADh / CDh, pointers 00h GPO_CTRL_Dyn, 02h EH_CTRL_Dyn, 0Dh
// MB_CTRL_Dyn (DS Table 189..191).
func (t *Tag) cmdReadDynCfg(r *rfReq) rfResult {
	if len(r.p) != 1 {
		return fail(ErrCodeFormat)
	}
	switch r.p[0] {
	case 0x00:
		return ok(t.gpoCtrlDyn)
	case 0x02:
		return ok(t.ehCtrl())
	case 0x0D:
		return ok(t.mbCtrl)
	}
	return fail(ErrCodeBlockNA)
}

// cmdWriteDynCfg: AEh / CEh. Writable from RF: 02h b0 EH_EN, 0Dh b0 MB_EN
// (DS Table 192..194). GPO_CTRL_Dyn is read-only from RF; enabling the
// mailbox without MB_MODE or VCC is refused. Both error codes are
// UNCONFIRMED; 0Fh is used.
func (t *Tag) cmdWriteDynCfg(r *rfReq) rfResult {
	if len(r.p) != 2 {
		return fail(ErrCodeFormat)
	}
	v := r.p[1]
	switch r.p[0] {
	case 0x00:
		return fail(ErrCodeUnknown)
	case 0x02:
		t.ehEN = v&1 != 0
		return ok()
	case 0x0D:
		if !t.setMBEN(v&1 != 0) {
			return fail(ErrCodeUnknown)
		}
		return ok()
	}
	return fail(ErrCodeBlockNA)
}

// cmdWriteMsg: AAh / CAh, MSGLength = n−1 then n bytes, stored from offset 0.
// Needs MB_EN and VCC and a free mailbox (no pending host or RF message);
// 0Fh otherwise (DS §7.6.31; busy/disabled code presumed, UNCONFIRMED).
// Answered after t1, no EEPROM cycle; RF_PUT_MSG after the response EOF.
func (t *Tag) cmdWriteMsg(r *rfReq) rfResult {
	if len(r.p) < 2 || len(r.p)-1 != int(r.p[0])+1 {
		return fail(ErrCodeFormat)
	}
	if !t.mbEnabled() || t.mbBusy() {
		return fail(ErrCodeUnknown)
	}
	t.putMessage(r.p[1:], true)
	res := ok()
	t.rfEvent(gpo1RFPutMsg, itRFPutMsg, &res.p)
	return res
}

// cmdReadMsgLen: ABh / CBh returns MB_LEN_Dyn, i.e. length − 1 (DS §7.6.32, Table 20).
func (t *Tag) cmdReadMsgLen(r *rfReq) rfResult {
	if len(r.p) != 0 {
		return fail(ErrCodeFormat)
	}
	if !t.mbEnabled() {
		return fail(ErrCodeUnknown)
	}
	return ok(t.mbLen)
}

// cmdReadMsg: ACh / CCh, MBpointer and NbBytes → NbBytes+1 bytes; 00h/00h is
// the whole message (DS §7.6.33; ST community "How to receive more than 255
// bytes of data via the fast transfer mailbox using the Android ST25 SDK").
// Reading past the message is 0Fh.
// Reading the last byte of a host message releases it (43h → 41h) and raises
// RF_GET_MSG after the response (DS §5.1.2, Figure 21); RF re-reading its own
// message never releases it.
func (t *Tag) cmdReadMsg(r *rfReq) rfResult {
	if len(r.p) != 2 {
		return fail(ErrCodeFormat)
	}
	if !t.mbEnabled() {
		return fail(ErrCodeUnknown)
	}
	msgLen := t.mbMsgLen()
	ptr, nb := int(r.p[0]), int(r.p[1])
	count := nb + 1
	if ptr == 0 && nb == 0 {
		count = msgLen
	}
	if msgLen == 0 || ptr+count > msgLen {
		return fail(ErrCodeUnknown)
	}
	res := ok(t.mailbox[ptr : ptr+count]...)
	if ptr+count == msgLen && t.releaseHostMessage() {
		t.rfEvent(gpo1RFGetMsg, itRFGetMsg, &res.p)
	}
	return res
}
