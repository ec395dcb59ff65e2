package at

import (
	"testing"
	"time"
)

// FuzzConsoleLines: whatever a firmware prints — status lines, events,
// keys, receive reports — the console driver's parsers answer or refuse,
// never panic. Seeds are lines of ST's AT slave (lora_at.c) as the twin and
// real boards print them.
func FuzzConsoleLines(f *testing.F) {
	for _, s := range []string{"OK", "AT_ERROR", "AT_PARAM_ERROR", "AT_BUSY_ERROR", "AT_NO_NET_JOINED",
		"+EVT:JOINED", "+EVT:JOIN FAILED", "+EVT:RX_1, DR 5, RSSI -42, SNR 9", "+EVT:2:04:8DB1",
		"+EVT:NFC_REJECTED REPLAY", "2B:7E:15:16:28:AE:D2:A6:AB:F7:15:88:09:CF:4F:3C", "APPLICATION_VERSION: V1.3.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = ParseStatus(line)
		if ev, ok := ParseEvent(line, time.Unix(0, 0)); ok {
			_, _ = ParseRX(ev)
		}
		_, _ = ParseKey(line)
	})
}
