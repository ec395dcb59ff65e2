package rigs

import (
	"os"
	"testing"
)

// FuzzParse: a rig file of any bytes is refused with an error or loaded,
// never a panic; the repository's rig files are the seeds.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"emulated.yaml", "emulated-st25ftm.yaml", "emulated-pcsc.yaml", "lab-nucleo-wl55.yaml", "lab-nucleo-wl55-shared.yaml", "tag-direct.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("boards: [{emulated: true, unique_id: 0080E11500000001, flash: {image: x.bin}, power: {kind: gpio}}]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		f, err := Parse(raw)
		if err == nil && len(f.Boards) == 0 {
			t.Fatal("a rig without boards loaded")
		}
		if err == nil {
			for _, c := range BoardCapabilities {
				_, _ = f.PlannedCapability(c)
			}
		}
	})
}
