package stm32wl5

import (
	"bytes"
	"testing"

	"github.com/brocaar/lorawan"
)

// GetBatteryLevel (sys_app.c): above VDD_BAT 254, below VDD_MIN 0, linear.
func TestBatteryLevel(t *testing.T) {
	for mv, want := range map[int]uint8{3300: 254, 3001: 254, 3000: 254, 2400: 127, 1800: 0, 1799: 0, 0: 0} {
		if got := batteryLevel(mv); got != want {
			t.Errorf("batteryLevel(%d mV) = %d, want %d", mv, got, want)
		}
	}
}

// DevStatusReq (CID 06) is answered in the next uplink's FOpts as
// 06 <battery> <margin: 6-bit two's complement> (TS001-1.0.4 §5.5); a
// LinkCheckReq from AT+LINKC is the single byte 02 (§5.2); FOpts hold at most
// 15 bytes and what is sent is gone.
func TestMACAnswersInFOpts(t *testing.T) {
	b := &Board{cfg: Config{BatteryMV: 3300}}
	if lc := b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.DevStatusReq}}, -5); lc != nil {
		t.Fatalf("LinkCheckAns from a DevStatusReq: %+v", lc)
	}
	b.queueLinkCheck()
	b.queueLinkCheck()                                                         // once is enough
	b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.DevStatusReq}}, 40) // margin clamps to 31
	got := b.takeMACOutLocked()
	if want := []byte{0x06, 0xFE, 0x3B, 0x02, 0x06, 0xFE, 0x1F}; !bytes.Equal(got, want) {
		t.Fatalf("FOpts = % X, want % X", got, want)
	}
	if again := b.takeMACOutLocked(); len(again) != 0 {
		t.Fatalf("FOpts sent twice: % X", again)
	}
	for range 6 { // 6 × 3 bytes > 15: the sixth waits
		b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.DevStatusReq}}, 0)
	}
	if n := len(b.takeMACOutLocked()); n != 15 {
		t.Fatalf("first uplink FOpts %d bytes, want 15", n)
	}
	if n := len(b.takeMACOutLocked()); n != 3 {
		t.Fatalf("second uplink FOpts %d bytes, want the 3 that waited", n)
	}
	lc := b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.LinkCheckAns, Payload: &lorawan.LinkCheckAnsPayload{Margin: 20, GwCnt: 2}}}, 0)
	if lc == nil || lc.Margin != 20 || lc.GwCnt != 2 {
		t.Fatalf("LinkCheckAns = %+v", lc)
	}
}
