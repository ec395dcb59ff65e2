package reports

import (
	"os"
	"testing"
)

// FuzzParseLimits: a limits file of any bytes is an error or limits, never a
// panic; the repository's limits files are the seeds.
func FuzzParseLimits(f *testing.F) {
	for _, p := range []string{"limits/emulated.yaml", "limits/emulated-st25ftm.yaml", "limits/integration.yaml", "limits/lab-nucleo-wl55.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = ParseLimits(raw)
	})
}
