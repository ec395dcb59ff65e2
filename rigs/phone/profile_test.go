package phone

import (
	"strings"
	"testing"
)

// Every profile is complete and named by its key; an unknown name lists
// the known ones.
func TestProfiles(t *testing.T) {
	for name, p := range Profiles {
		if p.Name != name || p.Poll <= 0 || (p.Chunk != 241 && p.Chunk != 256) || p.Source == "" {
			t.Errorf("profile %q: %+v", name, p)
		}
	}
	if _, err := LookupProfile("nokia-3310"); err == nil || !strings.Contains(err.Error(), "android-nfcv") {
		t.Errorf("unknown profile: %v", err)
	}
	if p, err := LookupProfile("android-nfcv"); err != nil || p.CommandGap.Milliseconds() != 100 {
		t.Errorf("android-nfcv: %+v %v (the ST25 SDK leaves ≥ 100 ms between commands)", p, err)
	}
}
