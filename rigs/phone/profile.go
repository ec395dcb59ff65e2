package phone

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Profile is how a phone app or a reader paces the mailbox: how often it
// polls MB_CTRL_Dyn while it waits, and the least time it leaves between
// two mailbox commands (messages or firmware chunks) it writes. Real apps
// are far slower than the RF link allows; a firmware team that sizes its
// transfers on the "ideal" figure is surprised in the field.
type Profile struct {
	Name string
	// Poll is the interval between MB_CTRL_Dyn polls while the app waits
	// (for the device's answer, or for it to take a chunk).
	Poll time.Duration
	// CommandGap is the least time between the starts of two mailbox
	// writes.
	CommandGap time.Duration
	// Chunk is the largest Write Message the phone sends (241: Android's
	// largest addressed one; 256: a whole mailbox, PC/SC readers).
	Chunk int
	// Source says where the figures come from.
	Source string
}

// Profiles are the phones and readers the suites time the mailbox for.
var Profiles = map[string]Profile{
	"ideal": {Name: "ideal", Poll: 50 * time.Microsecond, Chunk: 256,
		Source: "this framework's phone: polls as fast as the RF link allows, no gap between commands (the RF limit's best case)"},
	"android-nfcv": {Name: "android-nfcv", Poll: 10 * time.Millisecond, CommandGap: 100 * time.Millisecond, Chunk: 241,
		Source: "ST25 SDK FTM (Android NfcV): ≥ 10 ms between MB_CTRL_Dyn polls, ≥ 100 ms between commands, 241-byte addressed Write Message"},
	"st25-tap-android": {Name: "st25-tap-android", Poll: 10 * time.Millisecond, CommandGap: 80 * time.Millisecond, Chunk: 241,
		Source: "ST25 NFC Tap app on Android: the SDK's pacing with 80 ms between commands"},
	"ios-corenfc": {Name: "ios-corenfc", Poll: 5 * time.Millisecond, CommandGap: 80 * time.Millisecond, Chunk: 241,
		Source: "ST25 SDK on iOS (Core NFC): 5 ms between polls, 80 ms between commands; chunk as Android (UNCONFIRMED)"},
	"pcsc-acr1552u": {Name: "pcsc-acr1552u", Poll: 6 * time.Millisecond, Chunk: 256,
		Source: "ACS ACR1552U through PC/SC: a whole-mailbox Write Message, a poll every ≈ 6 ms (one USB transaction + the RF command; UNCONFIRMED, measure on the bench)"},
}

// ProfileNames lists the profiles in a stable order.
func ProfileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupProfile returns the named profile, or an error listing the names.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("phone: unknown profile %q (have %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}
