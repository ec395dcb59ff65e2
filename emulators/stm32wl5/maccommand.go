package stm32wl5

import (
	"strings"

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
//     +EVT:RX line (lora_at.c AT_event_receive).
// Other commands (LinkADRReq, RXParamSetupReq, …) are not answered: the
// embedded network server does not send them; a real board answers them.

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
func (b *Board) handleDownlinkMAC(cmds []lorawan.MACCommand, snr int) *lorawan.LinkCheckAnsPayload {
	var lc *lorawan.LinkCheckAnsPayload
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cmds {
		switch c.CID {
		case lorawan.DevStatusReq:
			margin := int8(max(-32, min(31, snr)))
			b.macOut = append(b.macOut, lorawan.MACCommand{CID: lorawan.DevStatusAns, Payload: &lorawan.DevStatusAnsPayload{
				Battery: batteryLevel(b.cfg.BatteryMV), Margin: margin,
			}})
		case lorawan.LinkCheckAns:
			if pl, ok := c.Payload.(*lorawan.LinkCheckAnsPayload); ok {
				lc = pl
			}
		}
	}
	return lc
}

// queueLinkCheck adds a LinkCheckReq to the next uplink (AT+LINKC).
func (b *Board) queueLinkCheck() {
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
func (b *Board) takeMACOutLocked() []byte {
	var out []byte
	n := 0
	for _, c := range b.macOut {
		enc, err := c.MarshalBinary()
		if err != nil {
			n++ // malformed: drop it
			continue
		}
		if len(out)+len(enc) > 15 {
			break
		}
		out = append(out, enc...)
		n++
	}
	b.macOut = b.macOut[n:]
	return out
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
