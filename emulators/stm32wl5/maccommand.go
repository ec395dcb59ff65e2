package stm32wl5

import (
	"slices"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
)

// MAC commands the twin answers, as LoRaMac-node (STM32CubeWL v1.3.1
// LoRaMac.c ProcessMacCommands) does for the ones a network server sends a
// provisioned device first:
//   - DevStatusReq → DevStatusAns{Battery, Margin} in the next uplink's FOpts:
//     Battery from GetBatteryLevel (Core/Src/sys_app.c: VDD above VDD_BAT =
//     254 "fully charged", below VDD_MIN = 0, linear in between; CubeMX's
//     defaults BAT_CR2032 3000 mV and 1800 mV — UNCONFIRMED for the AT_Slave
//     project), Margin the SNR of the downlink that carried the request as
//     the radio reports it (an integer, the value the +EVT:RX line prints),
//     clamped to the 6-bit signed range −32..31 (TS001 §5.5);
//   - LinkCheckAns (answer to AT+LINKC's LinkCheckReq) → DMODM/GWN on the
//     +EVT:RX line (lora_at.c AT_event_receive);
//   - LinkADRReq → LinkADRAns, as RegionEU868LinkAdrReq and
//     RegionCommonLinkAdrReqVerifyParams decide (linkADRLocked below).
//   - RXTimingSetupReq → the RX1 delay (0 means 1 s), RX2 a second later,
//     at once; RXTimingSetupAns repeated in every uplink until a downlink
//     is heard (LoRaMac-node ProcessMacCommands, a sticky answer);
//   - RXParamSetupReq → RX2 frequency/DR and the RX1 DR offset, with a
//     sticky RXParamSetupAns (rxParamSetupLocked);
//   - NewChannelReq → NewChannelAns, channels 3–15 (newChannelLocked);
//   - RekeyConf confirms the 1.1 session's RekeyInd.
// The ADR back-off (ADR_ACK_LIMIT 64, ADR_ACK_DELAY 32) is adrNextLocked.
// Not answered: DlChannelReq, DeviceTimeAns (no request is sent), the
// class B commands.

// Battery thresholds of GetBatteryLevel (mV).
const (
	vddBat     = 3000
	vddMin     = 1800
	maxBattery = 254 // LORAWAN_MAX_BAT
)

// batteryLevel is GetBatteryLevel for a VDD of mv millivolts.
func batteryLevel(mv int) uint8 {
	switch {
	case mv > vddBat:
		return maxBattery
	case mv < vddMin:
		return 0
	}
	return uint8((mv - vddMin) * maxBattery / (vddBat - vddMin))
}

// handleDownlinkMAC queues the answers to a downlink's MAC commands and
// returns the LinkCheckAns it carried, if any.
func (b *MCU) handleDownlinkMAC(cmds []lorawan.MACCommand, snr int) *lorawan.LinkCheckAnsPayload {
	var lc *lorawan.LinkCheckAnsPayload
	b.mu.Lock()
	defer b.mu.Unlock()
	// A downlink heard: the network has the sticky answers (LoRaMac.c
	// LoRaMacCommandsRemoveStickyAnsCmds, before the new commands).
	b.macSticky = nil
	for _, c := range cmds {
		switch c.CID {
		case lorawan.RekeyConf:
			// LoRaMac.c SRV_MAC_REKEY_CONF: the RekeyInd is confirmed when
			// the server's minor version is not above the device's (1).
			if pl, ok := c.Payload.(*lorawan.RekeyConfPayload); ok && pl.ServLoRaWANVersion.Minor <= 1 {
				b.macConfirm = slices.DeleteFunc(b.macConfirm, func(m lorawan.MACCommand) bool { return m.CID == lorawan.RekeyInd })
			}
		case lorawan.RXParamSetupReq:
			if pl, ok := c.Payload.(*lorawan.RXParamSetupReqPayload); ok {
				b.macSticky = append(b.macSticky, lorawan.MACCommand{CID: lorawan.RXParamSetupAns, Payload: b.rxParamSetupLocked(*pl)})
			}
		case lorawan.NewChannelReq:
			if pl, ok := c.Payload.(*lorawan.NewChannelReqPayload); ok {
				b.macOut = append(b.macOut, lorawan.MACCommand{CID: lorawan.NewChannelAns, Payload: b.newChannelLocked(*pl)})
			}
		case lorawan.RXTimingSetupReq:
			if pl, ok := c.Payload.(*lorawan.RXTimingSetupReqPayload); ok {
				d := time.Duration(max(pl.Delay, 1)) * time.Second
				b.ram.rx1Delay, b.ram.rx2Delay = d, d+time.Second
				b.macSticky = append(b.macSticky, lorawan.MACCommand{CID: lorawan.RXTimingSetupAns})
			}
		case lorawan.DevStatusReq:
			margin := int8(max(-32, min(31, snr)))
			b.macOut = append(b.macOut, lorawan.MACCommand{CID: lorawan.DevStatusAns, Payload: &lorawan.DevStatusAnsPayload{
				Battery: batteryLevel(b.cfg.BatteryMV), Margin: margin,
			}})
		case lorawan.LinkADRReq:
			if pl, ok := c.Payload.(*lorawan.LinkADRReqPayload); ok {
				b.macOut = append(b.macOut, lorawan.MACCommand{CID: lorawan.LinkADRAns, Payload: b.linkADRLocked(*pl)})
			}
		case lorawan.LinkCheckAns:
			if pl, ok := c.Payload.(*lorawan.LinkCheckAnsPayload); ok {
				lc = pl
			}
		}
	}
	return lc
}

// queueLinkCheck adds a LinkCheckReq to the next uplink (AT+LINKC).
func (b *MCU) queueLinkCheck() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.macOut {
		if c.CID == lorawan.LinkCheckReq {
			return
		}
	}
	b.macOut = append(b.macOut, lorawan.MACCommand{CID: lorawan.LinkCheckReq})
}

// takeMACOutLocked encodes the queued MAC commands for an uplink's FOpts (at
// most 15 bytes; what does not fit waits for the next uplink) and removes
// them. b.mu held.
func (b *MCU) takeMACOutLocked() []byte {
	repeated := b.repeatedLocked()
	out, n := fitFOpts(append(repeated, b.macOut...))
	b.macOut = b.macOut[max(n-len(repeated), 0):] // repeated ones stay
	return out
}

// repeatedLocked are the commands every uplink carries until they are
// confirmed or a downlink is heard: indications first, then sticky answers.
func (b *MCU) repeatedLocked() []lorawan.MACCommand {
	return append(append([]lorawan.MACCommand(nil), b.macConfirm...), b.macSticky...)
}

// macOutSizeLocked is the encoded size of the queued MAC commands that fit
// in FOpts (what takeMACOutLocked would take). b.mu held.
func (b *MCU) macOutSizeLocked() int {
	out, _ := fitFOpts(append(b.repeatedLocked(), b.macOut...))
	return len(out)
}

// ADR back-off (LoRaMac-node LoRaMacAdrCalcNext, LoRaWAN 1.0.4 §4.3.1.1;
// REGION_COMMON_DEFAULT_ADR_ACK_LIMIT / _DELAY).
const (
	adrAckLimit = 64
	adrAckDelay = 32
)

// adrNextLocked runs before each uplink while ADR is on: from ADR_ACK_CNT
// ≥ 64 the uplink asks for an answer (ADRACKReq); from 96 the TX power is
// the default (index 0); from 128, every 32 uplinks, the data rate steps
// down — at DR0 the default channels are enabled again and NbTrans is 1.
// b.mu held.
func (b *MCU) adrNextLocked() (adrAckReq bool) {
	if b.rec.adrOff {
		return false
	}
	n := b.adrAckCnt
	if n >= adrAckLimit {
		adrAckReq = true
	}
	if n >= adrAckLimit+adrAckDelay {
		b.ram.txPower = 0
	}
	if n >= adrAckLimit+2*adrAckDelay && (n-adrAckLimit)%adrAckDelay == 0 {
		if b.ram.dr == 0 {
			b.ram.chMask |= 0x07 // INIT_TYPE_ACTIVATE_DEFAULT_CHANNELS: 868.1/868.3/868.5 MHz
			b.ram.nbRep = 1
		} else {
			b.ram.dr--
		}
		b.ctxDirty = true
	}
	return adrAckReq
}

// fitFOpts encodes the leading commands that fit in FOpts' 15 bytes and
// says how many it consumed (a malformed one is consumed and dropped).
func fitFOpts(cmds []lorawan.MACCommand) (out []byte, n int) {
	for _, c := range cmds {
		enc, err := c.MarshalBinary()
		if err != nil {
			n++
			continue
		}
		if len(out)+len(enc) > 15 {
			break
		}
		out = append(out, enc...)
		n++
	}
	return out, n
}

// macNames lists commands by name for events ("-" for none).
func macNames(cmds []lorawan.MACCommand) string {
	if len(cmds) == 0 {
		return "-"
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.CID.String()
	}
	return strings.Join(names, ",")
}

// EU868 limits of this twin: data rates DR0..DR5 (SF12..SF7 at 125 kHz; DR6
// SF7/250 kHz and DR7 FSK are not modelled by the air) and TX power indexes
// 0..7 (RP002 EU868: max EIRP − 2·index dB).
const (
	maxADRDataRate = 5
	maxTXPowerIdx  = 7
)

// linkADRLocked answers one LinkADRReq (TS001-1.0.4 §5.3) and applies it when
// every part is acknowledged. b.mu held. UNCONFIRMED: these rules follow
// LoRaMac-node's RegionEU868LinkAdrReq / RegionCommonLinkAdrReqVerifyParams
// as remembered, not checked against the LoRaMac-node source:
//   - channel mask: ChMaskCntl 0 enables the channels whose bit is set; a bit
//     for an undefined channel, or no channel left, is a mask NACK;
//     ChMaskCntl 6 enables every defined channel; other values are RFU for
//     EU868 (NACK);
//   - with ADR off (AT+ADR=0) the data rate, TX power and NbTrans fields are
//     ignored and the current ones kept (RegionCommonLinkAdrReqVerifyParams);
//   - DR 0x0F / TXPower 0x0F keep the current value (LoRaWAN 1.0.4);
//     a data rate the twin cannot send is a DR NACK, a TX power index above
//     the region's is a power NACK;
//   - NbTrans 0 means 1.
func (b *MCU) linkADRLocked(req lorawan.LinkADRReqPayload) *lorawan.LinkADRAnsPayload {
	ans := &lorawan.LinkADRAnsPayload{ChannelMaskACK: true, DataRateACK: true, PowerACK: true}
	var mask uint16
	switch req.Redundancy.ChMaskCntl {
	case 0:
		for i, on := range req.ChMask {
			if !on {
				continue
			}
			if i >= len(b.ram.channels) || b.ram.channels[i] == 0 {
				ans.ChannelMaskACK = false // an undefined channel
			}
			mask |= 1 << i
		}
		if mask == 0 {
			ans.ChannelMaskACK = false
		}
	case 6:
		for i := range b.ram.channels {
			mask |= 1 << i
		}
	default:
		ans.ChannelMaskACK = false
	}
	dr, power, nbRep := int(req.DataRate), int(req.TXPower), int(req.Redundancy.NbRep)
	if b.rec.adrOff {
		dr, power, nbRep = b.ram.dr, b.ram.txPower, b.ram.nbRep
	}
	if dr == 0x0F {
		dr = b.ram.dr
	} else if dr > maxADRDataRate {
		ans.DataRateACK = false
	}
	if power == 0x0F {
		power = b.ram.txPower
	} else if power > maxTXPowerIdx {
		ans.PowerACK = false
	}
	if nbRep == 0 {
		nbRep = 1
	}
	if ans.ChannelMaskACK && ans.DataRateACK && ans.PowerACK {
		if b.ram.dr != dr {
			b.ctxDirty = true
		}
		b.ram.dr, b.ram.txPower, b.ram.nbRep, b.ram.chMask = dr, power, nbRep, mask
	}
	return ans
}

// EU868 band edges (RP002-1.0.3 §2.4.2): a frequency outside is refused.
const (
	eu868BandMin = 863000000
	eu868BandMax = 870000000
)

// rxParamSetupLocked answers RXParamSetupReq (TS001-1.0.4 §5.4) as
// RegionEU868RxParamSetupReq does: the RX2 frequency must be in the band,
// the RX2 data rate one the region has (DR0–7), the RX1 DR offset 0–5; all
// three acknowledged, the settings apply at once, else none. The answer is
// sticky (repeated until a downlink). b.mu held.
func (b *MCU) rxParamSetupLocked(req lorawan.RXParamSetupReqPayload) *lorawan.RXParamSetupAnsPayload {
	ans := &lorawan.RXParamSetupAnsPayload{
		ChannelACK:     req.Frequency >= eu868BandMin && req.Frequency <= eu868BandMax,
		RX2DataRateACK: req.DLSettings.RX2DataRate <= 7,
		RX1DROffsetACK: req.DLSettings.RX1DROffset <= 5,
	}
	if ans.ChannelACK && ans.RX2DataRateACK && ans.RX1DROffsetACK {
		b.ram.rx2Freq, b.ram.rx2DR, b.ram.rx1DROffset = req.Frequency, int(req.DLSettings.RX2DataRate), int(req.DLSettings.RX1DROffset)
		b.ctxDirty = true
	}
	return ans
}

// newChannelLocked answers NewChannelReq (TS001-1.0.4 §5.6) as
// RegionEU868NewChannelReq does: channels 0–2 are the band's defaults and
// cannot be changed (both NACK); index 3–15 with frequency 0 removes the
// channel; otherwise the frequency must be in the band and MinDR ≤ MaxDR
// ≤ DR7. A created channel is enabled. UNCONFIRMED: the exact NACK
// combinations of LoRaMac-node's RegionCommon/RegionEU868 checks.
func (b *MCU) newChannelLocked(req lorawan.NewChannelReqPayload) *lorawan.NewChannelAnsPayload {
	ans := &lorawan.NewChannelAnsPayload{
		ChannelFrequencyOK: req.Freq == 0 || (req.Freq >= eu868BandMin && req.Freq <= eu868BandMax),
		DataRateRangeOK:    req.MinDR <= req.MaxDR && req.MaxDR <= 7,
	}
	idx := int(req.ChIndex)
	if idx < len(eu868Channels) || idx > 15 {
		ans.ChannelFrequencyOK, ans.DataRateRangeOK = false, false
	}
	if !ans.ChannelFrequencyOK || !ans.DataRateRangeOK {
		return ans
	}
	for len(b.ram.channels) <= idx {
		b.ram.channels = append(b.ram.channels, 0)
	}
	b.ram.channels[idx] = req.Freq
	if req.Freq == 0 {
		b.ram.chMask &^= 1 << idx
	} else {
		b.ram.chMask |= 1 << idx
	}
	b.ctxDirty = true
	return ans
}
