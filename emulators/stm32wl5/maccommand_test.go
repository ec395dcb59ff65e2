package stm32wl5

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
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
	b := &MCU{cfg: Config{BatteryMV: 3300}}
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

// LinkADRReq 03 | DR<<4|TXPower | ChMask (LE) | ChMaskCntl<<4|NbTrans
// (TS001-1.0.4 §5.3) → LinkADRAns 03 | RFU|PowerACK|DRACK|ChMaskACK.
func TestLinkADRReq(t *testing.T) {
	cfList := &lorawan.CFList{CFListType: lorawan.CFListChannel, Payload: &lorawan.CFListChannelPayload{
		Channels: [5]uint32{867100000, 867300000, 867500000, 867700000, 867900000}}}
	decode := func(t *testing.T, raw string) lorawan.MACCommand {
		t.Helper()
		var b []byte
		for _, f := range strings.Fields(raw) {
			v, err := strconv.ParseUint(f, 16, 8)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, byte(v))
		}
		var c lorawan.MACCommand
		if err := c.UnmarshalBinary(false, b); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		cf      *lorawan.CFList
		adrOff  bool
		req     string
		ans     byte
		dr, pow int
		mask    uint16
	}{
		{name: "DR5, power 2, channels 0-7 after a CFList", cf: cfList, req: "03 52 FF 00 01", ans: 0x07, dr: 5, pow: 2, mask: 0x00FF},
		{name: "channels 3-7 undefined without a CFList", req: "03 52 FF 00 01", ans: 0x06, dr: 0, pow: 0, mask: 0x0007},
		{name: "DR6 not modelled", cf: cfList, req: "03 62 FF 00 01", ans: 0x05, dr: 0, pow: 0, mask: 0x00FF},
		{name: "power index 8 above EU868's 7", cf: cfList, req: "03 58 FF 00 01", ans: 0x03, dr: 0, pow: 0, mask: 0x00FF},
		{name: "no channel left", cf: cfList, req: "03 52 00 00 01", ans: 0x06, dr: 0, pow: 0, mask: 0x00FF},
		{name: "ChMaskCntl 6: every defined channel", cf: cfList, req: "03 31 00 00 61", ans: 0x07, dr: 3, pow: 1, mask: 0x00FF},
		{name: "ADR off: mask applied, DR and power kept", cf: cfList, adrOff: true, req: "03 52 0F 00 01", ans: 0x07, dr: 0, pow: 0, mask: 0x000F},
		{name: "0F keeps DR and power", cf: cfList, req: "03 FF 01 00 01", ans: 0x07, dr: 0, pow: 0, mask: 0x0001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &MCU{cfg: Config{BatteryMV: 3300}}
			b.ram = defaultRAMSettings(b.cfg, b.rec)
			b.rec.adrOff = tc.adrOff
			b.ram.channels = joinChannels(tc.cf)
			b.ram.chMask = 1<<len(b.ram.channels) - 1
			b.handleDownlinkMAC([]lorawan.MACCommand{decode(t, tc.req)}, 0)
			if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x03, tc.ans}) {
				t.Fatalf("answer % X, want 03 %02X", got, tc.ans)
			}
			if b.ram.dr != tc.dr || b.ram.txPower != tc.pow || b.ram.chMask != tc.mask {
				t.Fatalf("DR %d power %d mask %04X, want %d %d %04X", b.ram.dr, b.ram.txPower, b.ram.chMask, tc.dr, tc.pow, tc.mask)
			}
		})
	}
}

// The MAC state survives a reset: a record written after a JoinAccept with
// a CFList and a LinkADRReq brings back the eight channels, the mask and
// the data rate and power ADR set (layout 4, read back by a new boot).
func TestMACStateSurvivesReset(t *testing.T) {
	r := record{state: provproto.StateJoined, macSet: true, chans: [5]uint32{867100000, 867300000, 867500000, 867700000, 867900000},
		chMask: 0x00FF, macDR: 5, macTXP: 2, macNbTrans: 1}
	slot := r.marshal()
	back, ok := unmarshalRecord(slot[:])
	if !ok {
		t.Fatal("record does not read back")
	}
	ram := defaultRAMSettings(Config{}, back)
	if len(ram.channels) != 8 || ram.channels[3] != 867100000 || ram.chMask != 0x00FF || ram.dr != 5 || ram.txPower != 2 || ram.nbRep != 1 {
		t.Fatalf("restored MAC state: channels %v mask %04X DR %d power %d nbRep %d", ram.channels, ram.chMask, ram.dr, ram.txPower, ram.nbRep)
	}
	// A LinkADRReq for channels 0..7 is then acknowledged, not refused.
	b := &MCU{cfg: Config{BatteryMV: 3300}, ram: ram, rec: back}
	b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.LinkADRReq, Payload: &lorawan.LinkADRReqPayload{DataRate: 5, TXPower: 3,
		ChMask: lorawan.ChMask{true, true, true, true, true, true, true, true}, Redundancy: lorawan.Redundancy{NbRep: 1}}}}, 0)
	if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x03, 0x07}) {
		t.Fatalf("LinkADRAns after a reset: % X, want 03 07", got)
	}
}

// The ADR back-off of LoRaMac-node's LoRaMacAdrCalcNext (src/mac/LoRaMacAdr.c,
// REGION_COMMON_DEFAULT_ADR_ACK_LIMIT 64 / _DELAY 32; LoRaWAN 1.0.4
// §4.3.1.1), by ADR_ACK_CNT before the uplink: ADRACKReq from 64, the
// default TX power from 96, one data rate lower at 128, 160, …; at DR0
// the default channels come back and NbTrans is 1.
func TestADRBackOff(t *testing.T) {
	b := &MCU{}
	b.ram.dr, b.ram.txPower, b.ram.nbRep, b.ram.chMask = 5, 3, 2, 0x01
	type state struct {
		req           bool
		dr, power, nb int
		mask          uint16
	}
	at := func(n uint32) state {
		b.adrAckCnt = n
		req := b.adrNextLocked()
		return state{req, b.ram.dr, b.ram.txPower, b.ram.nbRep, b.ram.chMask}
	}
	for _, c := range []struct {
		cnt  uint32
		want state
	}{
		{0, state{false, 5, 3, 2, 0x01}},
		{63, state{false, 5, 3, 2, 0x01}},
		{64, state{true, 5, 3, 2, 0x01}},
		{95, state{true, 5, 3, 2, 0x01}},
		{96, state{true, 5, 0, 2, 0x01}},  // TX power to the default
		{127, state{true, 5, 0, 2, 0x01}}, // not yet
		{128, state{true, 4, 0, 2, 0x01}}, // one data rate lower
		{129, state{true, 4, 0, 2, 0x01}},
		{160, state{true, 3, 0, 2, 0x01}},
		{192, state{true, 2, 0, 2, 0x01}},
		{224, state{true, 1, 0, 2, 0x01}},
		{256, state{true, 0, 0, 2, 0x01}},
		{288, state{true, 0, 0, 1, 0x07}}, // at DR0: default channels, NbTrans 1
	} {
		if got := at(c.cnt); got != c.want {
			t.Errorf("ADR_ACK_CNT %d: %+v, want %+v", c.cnt, got, c.want)
		}
	}
	b.rec.adrOff = true
	if at(300).req {
		t.Error("ADRACKReq with ADR off")
	}
}

// RXTimingSetupReq (CID 08, Delay in the low nibble, 0 = 1 s; TS001-1.0.4
// §5.7) moves RX1/RX2 at once; its answer (08) rides in every uplink until
// a downlink is heard, as LoRaMac-node's sticky answers do.
func TestRXTimingSetupReq(t *testing.T) {
	b := &MCU{}
	b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.RXTimingSetupReq, Payload: &lorawan.RXTimingSetupReqPayload{Delay: 5}}}, 0)
	if b.ram.rx1Delay != 5*time.Second || b.ram.rx2Delay != 6*time.Second {
		t.Fatalf("RX delays %v / %v, want 5 s / 6 s", b.ram.rx1Delay, b.ram.rx2Delay)
	}
	for range 2 {
		if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x08}) {
			t.Fatalf("FOpts % X, want 08 in every uplink until a downlink", got)
		}
	}
	b.handleDownlinkMAC(nil, 0) // a downlink heard
	if got := b.takeMACOutLocked(); len(got) != 0 {
		t.Fatalf("FOpts % X after a downlink, want none", got)
	}
	b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.RXTimingSetupReq, Payload: &lorawan.RXTimingSetupReqPayload{Delay: 0}}}, 0)
	if b.ram.rx1Delay != time.Second {
		t.Fatalf("Delay 0: RX1 %v, want 1 s", b.ram.rx1Delay)
	}
}

// RekeyInd (0B, minor 1) rides in every uplink of a 1.1 session until the
// network's RekeyConf — a downlink without it does not confirm it
// (LoRaMac.c SRV_MAC_REKEY_CONF; LoRaWAN 1.1 §5.10).
func TestRekeyIndUntilRekeyConf(t *testing.T) {
	b := &MCU{}
	b.macConfirm = []lorawan.MACCommand{{CID: lorawan.RekeyInd, Payload: &lorawan.RekeyIndPayload{DevLoRaWANVersion: lorawan.Version{Minor: 1}}}}
	for range 2 {
		if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x0B, 0x01}) {
			t.Fatalf("FOpts % X, want 0B 01", got)
		}
	}
	b.handleDownlinkMAC(nil, 0) // a downlink, no RekeyConf
	if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x0B, 0x01}) {
		t.Fatalf("FOpts % X after a downlink without RekeyConf, want 0B 01", got)
	}
	b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.RekeyConf, Payload: &lorawan.RekeyConfPayload{ServLoRaWANVersion: lorawan.Version{Minor: 1}}}}, 0)
	if got := b.takeMACOutLocked(); len(got) != 0 {
		t.Fatalf("FOpts % X after RekeyConf, want none", got)
	}
}

// RXParamSetupReq (05, TS001-1.0.4 §5.4): applied when all three parts are
// acceptable, answered 05 <status> (bit 0 channel, 1 RX2 DR, 2 RX1 DR
// offset) in every uplink until a downlink is heard.
func TestRXParamSetupReq(t *testing.T) {
	b := &MCU{}
	b.ram.rx2Freq, b.ram.rx2DR = 869525000, 0
	req := func(freq uint32, rx2DR, off uint8) lorawan.MACCommand {
		return lorawan.MACCommand{CID: lorawan.RXParamSetupReq, Payload: &lorawan.RXParamSetupReqPayload{
			Frequency: freq, DLSettings: lorawan.DLSettings{RX2DataRate: rx2DR, RX1DROffset: off}}}
	}
	b.handleDownlinkMAC([]lorawan.MACCommand{req(868525000, 3, 1)}, 0)
	if b.ram.rx2Freq != 868525000 || b.ram.rx2DR != 3 || b.ram.rx1DROffset != 1 {
		t.Fatalf("not applied: %d Hz DR%d offset %d", b.ram.rx2Freq, b.ram.rx2DR, b.ram.rx1DROffset)
	}
	for range 2 {
		if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x05, 0x07}) {
			t.Fatalf("FOpts % X, want 05 07 until a downlink", got)
		}
	}
	// Out of the band: channel NACK, nothing applied.
	b.handleDownlinkMAC([]lorawan.MACCommand{req(915000000, 0, 0)}, 0)
	if got := b.takeMACOutLocked(); !bytes.Equal(got, []byte{0x05, 0x06}) {
		t.Fatalf("FOpts % X, want 05 06", got)
	}
	if b.ram.rx2Freq != 868525000 || b.ram.rx2DR != 3 {
		t.Errorf("a refused request changed RX2: %d Hz DR%d", b.ram.rx2Freq, b.ram.rx2DR)
	}
}

// NewChannelReq (07, §5.6): the default channels 0–2 are refused (07 00);
// a channel 3–15 in the band with MinDR ≤ MaxDR is created and enabled
// (07 03); frequency 0 removes it.
func TestNewChannelReq(t *testing.T) {
	b := &MCU{}
	b.ram.channels, b.ram.chMask = []uint32{868100000, 868300000, 868500000}, 0b111
	newCh := func(i uint8, f uint32, minDR, maxDR uint8) []byte {
		b.handleDownlinkMAC([]lorawan.MACCommand{{CID: lorawan.NewChannelReq, Payload: &lorawan.NewChannelReqPayload{ChIndex: i, Freq: f, MinDR: minDR, MaxDR: maxDR}}}, 0)
		return b.takeMACOutLocked()
	}
	if got := newCh(1, 867100000, 0, 5); !bytes.Equal(got, []byte{0x07, 0x00}) {
		t.Errorf("default channel: % X, want 07 00", got)
	}
	if got := newCh(3, 867100000, 0, 5); !bytes.Equal(got, []byte{0x07, 0x03}) || b.ram.channels[3] != 867100000 || b.ram.chMask&(1<<3) == 0 {
		t.Errorf("channel 3: % X, channels %v mask %b", got, b.ram.channels, b.ram.chMask)
	}
	if got := newCh(4, 867300000, 5, 0); !bytes.Equal(got, []byte{0x07, 0x01}) {
		t.Errorf("MinDR > MaxDR: % X, want 07 01", got)
	}
	if got := newCh(3, 0, 0, 0); !bytes.Equal(got, []byte{0x07, 0x03}) || b.ram.chMask&(1<<3) != 0 {
		t.Errorf("remove channel 3: % X, mask %b", got, b.ram.chMask)
	}
}
