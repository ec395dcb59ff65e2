package kit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs/at"
)

// A rejection the device prints while the wait runs ends it at once; one
// queued from before the wait, or tolerated, does not.
func TestAwaitEventsEndsOnADecisiveEvent(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	during, before := start.Add(time.Millisecond), start.Add(-time.Second)
	for _, tc := range []struct {
		name     string
		lines    []string
		when     time.Time // of the first event; the others are during the wait
		tolerate []string
		want     string // error substring; "" = found
	}{
		{name: "found", lines: []string{"+EVT:RX_1, PORT 0, DR 0, RSSI -60, SNR 9", "+EVT:NFC_PROVISIONED KCV=A96DC2"}},
		{name: "rejected during the wait", lines: []string{"+EVT:NFC_REJECTED BAD_CRC", "+EVT:NFC_PROVISIONED KCV=A96DC2"},
			want: "the device said +EVT:NFC_REJECTED BAD_CRC while +EVT:NFC_PROVISIONED was awaited"},
		{name: "rejected before the wait", lines: []string{"+EVT:NFC_REJECTED ALREADY_PROVISIONED", "+EVT:NFC_PROVISIONED KCV=A96DC2"}, when: before},
		{name: "tolerated", lines: []string{"+EVT:NFC_REJECTED BAD_CRC", "+EVT:NFC_PROVISIONED KCV=A96DC2"}, tolerate: []string{"NFC_REJECTED"}},
		{name: "join attempts are not decisive", lines: []string{"+EVT:JOIN FAILED", "+EVT:NFC_PROVISIONED KCV=A96DC2"}},
		{name: "timeout", lines: []string{"+EVT:JOIN FAILED"}, want: "no +EVT:NFC_PROVISIONED on the console within 10ms; seen: +EVT:JOIN FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan at.Event, len(tc.lines))
			for i, l := range tc.lines {
				when := during
				if i == 0 && !tc.when.IsZero() {
					when = tc.when
				}
				e, ok := at.ParseEvent(l, when)
				if !ok {
					t.Fatalf("not an event: %q", l)
				}
				ch <- e
			}
			seen, err := awaitEvents(context.Background(), ch, start, 10*time.Millisecond, "+EVT:NFC_PROVISIONED", Named("NFC_PROVISIONED"), tc.tolerate)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			case tc.want == "" && seen[len(seen)-1].Name != "NFC_PROVISIONED":
				t.Fatalf("seen %v", seen)
			}
		})
	}
}
