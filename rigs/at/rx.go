package at

import (
	"fmt"
	"strconv"
	"strings"
)

// RX is a downlink reception as ST's AT firmware reports it:
// "+EVT:RX_<slot>, PORT <p>, DR <dr>, RSSI <rssi>, SNR <snr>" with
// ", DMODM <m>, GWN <n>" appended after a LinkCheckAns (lora_at.c
// AT_event_receive, STM32CubeWL v1.3.1 LoRaWAN_AT_Slave).
type RX struct {
	Slot      string // "1", "2", "C", "C_MC", "P", "P_MC"
	Port      int
	DR        int
	RSSI, SNR int
	// LinkCheck is set when the downlink carried a LinkCheckAns (AT+LINKC).
	LinkCheck *LinkCheck
}

// LinkCheck is the network's LinkCheckAns: demodulation margin of the
// LinkCheckReq uplink in dB above the floor of its data rate, and how many
// gateways received it (TS001-1.0.4 §5.2).
type LinkCheck struct {
	Margin   int
	Gateways int
}

// ParseRX reads an RX_<slot> event.
func ParseRX(ev Event) (RX, error) {
	slot, ok := strings.CutPrefix(ev.Name, "RX_")
	if !ok {
		return RX{}, fmt.Errorf("at: %q is not an RX event", ev.Line)
	}
	rx := RX{Slot: slot}
	var seen int
	var lc LinkCheck
	var haveM, haveG bool
	for _, f := range strings.Split(ev.Args, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), " ")
		if !ok {
			return RX{}, fmt.Errorf("at: RX event %q: field %q", ev.Line, f)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return RX{}, fmt.Errorf("at: RX event %q: %s: %w", ev.Line, k, err)
		}
		switch k {
		case "PORT":
			rx.Port = n
		case "DR":
			rx.DR = n
		case "RSSI":
			rx.RSSI = n
		case "SNR":
			rx.SNR = n
		case "DMODM":
			lc.Margin, haveM = n, true
			continue
		case "GWN":
			lc.Gateways, haveG = n, true
			continue
		default:
			continue // newer firmware may add fields
		}
		seen++
	}
	if seen < 4 {
		return RX{}, fmt.Errorf("at: RX event %q: want PORT, DR, RSSI and SNR", ev.Line)
	}
	if haveM != haveG {
		return RX{}, fmt.Errorf("at: RX event %q: DMODM and GWN come together", ev.Line)
	}
	if haveM {
		rx.LinkCheck = &lc
	}
	return rx, nil
}
