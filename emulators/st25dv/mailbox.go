package st25dv

import "time"

// Fast Transfer Mode mailbox (DS §5.1, state machine DS Figure 12, register
// bits DS Table 17/18). All methods run with t.mu held.
//
//	FTM disabled 00h --MB_EN←1 (MB_MODE=1, VCC)--> empty 01h
//	empty/free --I2C write at 2008h + STOP--> 43h  --RF reads last byte--> 41h  (watchdog: 61h)
//	empty/free --RF Write Message-->           85h  --I2C reads last byte + STOP--> 81h (watchdog: 91h)
//	any --MB_EN←0 | MB_MODE←0 | VCC off--> 00h
//
// 47h (both PUT bits) is never produced: a new message is accepted only when
// neither side has one pending (ST called 47h abnormal in the ST community
// thread "MB_CTRL_Dyn=0x47 what is happening?").

// setMBEN writes MB_CTRL_Dyn.MB_EN. Enabling needs MB_MODE=1 and VCC (DS
// §5.1.2; ST answers in the ST community threads "ST25DV04kc enable mailbox
// via i2c" and "About the value of MB_MODE of ST25DV64K at power-on"); it
// reports false when refused. Enabling an already enabled mailbox changes
// nothing; ST's example toggles MB_EN 0→1 to empty it
// (stm32-hotspot/stm32cubemx2_st25dvxxkc_mailbox_i2c example.c).
func (t *Tag) setMBEN(on bool) bool {
	if !on {
		t.mbCtrl = 0
		t.mbLen = 0
		t.stopWatchdog()
		return true
	}
	if t.sys[regFTM]&1 == 0 || !t.vcc {
		return false
	}
	if t.mbCtrl&mbEN == 0 {
		// Whether the RAM is zeroed is UNCONFIRMED (the DS does not say); the data
		// is unreachable anyway until the next message (no CURRENT bit).
		t.mbCtrl = mbEN
		t.mbLen = 0
	}
	return true
}

func (t *Tag) mbEnabled() bool { return t.mbCtrl&mbEN != 0 && t.vcc }

// mbBusy: a new message is refused while either side's message is pending.
func (t *Tag) mbBusy() bool { return t.mbCtrl&(mbHostPut|mbRFPut) != 0 }

// mbMsgLen returns the length of the message in the buffer, 0 if none.
func (t *Tag) mbMsgLen() int {
	if t.mbCtrl&(mbHostCurrent|mbRFCurrent) == 0 {
		return 0
	}
	return int(t.mbLen) + 1
}

// putMessage stores a message posted by the host (I2C) or RF side. The MISS
// bits of an earlier message are cleared: DS Figure 12 labels the posted
// states exactly 43h / 85h (whether MISS bits clear is otherwise UNCONFIRMED).
func (t *Tag) putMessage(data []byte, fromRF bool) {
	copy(t.mailbox[:], data)
	t.mbLen = byte(len(data) - 1) // MB_LEN_Dyn = length − 1 (DS Table 20)
	if fromRF {
		t.mbCtrl = mbEN | mbRFPut | mbRFCurrent // 85h
	} else {
		t.mbCtrl = mbEN | mbHostPut | mbHostCurrent // 43h
	}
	t.startWatchdog()
}

// releaseRFMessage: the I2C host read the last byte of the RF message and
// sent STOP → 81h (DS §5.1.2).
func (t *Tag) releaseRFMessage() {
	if t.mbCtrl&mbRFPut != 0 {
		t.mbCtrl &^= mbRFPut
		t.stopWatchdog()
	}
}

// releaseHostMessage: RF read the last byte of the host message → 41h.
// Reports whether a message was released (then RF_GET_MSG fires).
func (t *Tag) releaseHostMessage() bool {
	if t.mbCtrl&mbHostPut == 0 {
		return false
	}
	t.mbCtrl &^= mbHostPut
	t.stopWatchdog()
	return true
}

// watchdogDuration implements DS Table 16: 2^(MB_WDG−1) × 30 ms, MB_WDG=0 →
// no watchdog. ST's driver comment (x-cube-nfc7 st25dvxxkc.c
// ST25DVxxKC_WriteMBWDG) gives MB_WDG × 30 ms instead (CONFLICT); the
// datasheet formula is used here.
func (t *Tag) watchdogDuration() time.Duration {
	w := (t.sys[regFTM] >> 1) & 7
	if w == 0 {
		return 0
	}
	return (time.Duration(1) << (w - 1)) * 30 * time.Millisecond
}

// startWatchdog arms the watchdog when a message is posted (the start point is
// UNCONFIRMED; we use the moment the message becomes pending). Only in
// realistic mode does a real timer run; in instant mode nothing fires by
// itself (modelled time does not pass between operations), tests call
// ExpireWatchdog instead.
func (t *Tag) startWatchdog() {
	t.stopWatchdog()
	d := t.watchdogDuration()
	if d == 0 || !t.realistic() {
		return
	}
	gen := t.wdgGen
	t.wdgTimer = time.AfterFunc(d, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.wdgGen == gen {
			t.expireWatchdog()
		}
	})
}

func (t *Tag) stopWatchdog() {
	t.wdgGen++
	if t.wdgTimer != nil {
		t.wdgTimer.Stop()
		t.wdgTimer = nil
	}
}

// expireWatchdog: the pending message is dropped from ownership, the PUT bit
// cleared, the MISS bit of the side that failed to read it set; data and
// CURRENT bit stay (DS §5.1.2; Figure 12 values 61h / 91h).
func (t *Tag) expireWatchdog() bool {
	switch {
	case t.mbCtrl&mbHostPut != 0:
		t.mbCtrl = t.mbCtrl&^mbHostPut | mbRFMiss // 43h → 61h
	case t.mbCtrl&mbRFPut != 0:
		t.mbCtrl = t.mbCtrl&^mbRFPut | mbHostMiss // 85h → 91h
	default:
		return false
	}
	t.stopWatchdog()
	return true
}

// ExpireWatchdog makes the mailbox watchdog expire now, as if MB_WDG's time
// had passed. It is the instant-mode stand-in for waiting: it does nothing
// and returns false when MB_WDG = 0 (watchdog off) or no message is pending.
func (t *Tag) ExpireWatchdog() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watchdogDuration() == 0 {
		return false
	}
	return t.expireWatchdog()
}
