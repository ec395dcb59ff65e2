package rigs

import (
	"errors"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/fixtures/lns"
)

// One join-request refused for its MIC is tolerated (a device that got its
// new key a moment before the network did retries); the second is decisive.
// Other log events (DevNonce reuse) never are.
func TestJoinRefused(t *testing.T) {
	mic := lns.LogEvent{Level: "ERROR", Code: "UPLINK_MIC", Description: "MIC of join-request is invalid, make sure keys are correct"}
	nonce := lns.LogEvent{Level: "ERROR", Code: "OTAA", Description: "DevNonce has already been used"}
	for _, tc := range []struct {
		logs []lns.LogEvent
		want int // refusals in the error; 0: not decisive
	}{
		{nil, 0},
		{[]lns.LogEvent{mic}, 0},
		{[]lns.LogEvent{nonce, nonce, nonce}, 0},
		{[]lns.LogEvent{mic, nonce}, 0},
		{[]lns.LogEvent{mic, nonce, mic}, 2},
		{[]lns.LogEvent{mic, mic, mic}, 3},
	} {
		err := joinRefused(tc.logs)
		var jr *JoinRefusedError
		switch {
		case tc.want == 0 && err != nil:
			t.Errorf("%d events: %v, want no decision", len(tc.logs), err)
		case tc.want > 0 && (!errors.As(err, &jr) || jr.Refusals != tc.want || !strings.Contains(err.Error(), "MIC of join-request is invalid")):
			t.Errorf("%d events: %v, want %d refusals quoting the server", len(tc.logs), err, tc.want)
		}
	}
}
