package at

import (
	"testing"
	"time"
)

func TestParseRX(t *testing.T) {
	for _, tc := range []struct {
		line string
		want RX
		lc   *LinkCheck
		bad  bool
	}{
		{line: "+EVT:RX_1, PORT 0, DR 0, RSSI -48, SNR 9", want: RX{Slot: "1", DR: 0, RSSI: -48, SNR: 9}},
		{line: "+EVT:RX_2, PORT 3, DR 0, RSSI -110, SNR -7, DMODM 13, GWN 2", want: RX{Slot: "2", Port: 3, RSSI: -110, SNR: -7}, lc: &LinkCheck{Margin: 13, Gateways: 2}},
		{line: "+EVT:RX_C, PORT 0, DR 3, RSSI -60, SNR 5", want: RX{Slot: "C", DR: 3, RSSI: -60, SNR: 5}},
		{line: "+EVT:RX_1, PORT 0, DR 0", bad: true},
		{line: "+EVT:RX_1, PORT x, DR 0, RSSI -48, SNR 9", bad: true},
		{line: "+EVT:RX_1, PORT 0, DR 0, RSSI -48, SNR 9, DMODM 3", bad: true},
		{line: "+EVT:JOINED", bad: true},
	} {
		ev, ok := ParseEvent(tc.line, time.Now())
		if !ok {
			t.Fatalf("ParseEvent(%q) failed", tc.line)
		}
		got, err := ParseRX(ev)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRX(%q) = %+v, want an error", tc.line, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRX(%q): %v", tc.line, err)
			continue
		}
		lc := got.LinkCheck
		got.LinkCheck = nil
		if got != tc.want || (lc == nil) != (tc.lc == nil) || (lc != nil && *lc != *tc.lc) {
			t.Errorf("ParseRX(%q) = %+v %+v, want %+v %+v", tc.line, got, lc, tc.want, tc.lc)
		}
	}
}
