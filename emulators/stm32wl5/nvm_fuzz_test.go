package stm32wl5

import "testing"

// FuzzNVMRecord: flash holding any bytes (a torn write, another firmware's
// data) is either a valid record or refused at boot, never a panic; a
// record read back marshals to a record that reads the same.
func FuzzNVMRecord(f *testing.F) {
	r := record{}
	img := r.marshal()
	f.Add(img[:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, ok := unmarshalRecord(b)
		if !ok {
			return
		}
		again := rec.marshal()
		if back, ok := unmarshalRecord(again[:]); !ok || back.state != rec.state || back.devNonce != rec.devNonce {
			t.Fatalf("record does not survive a write and a read: %+v → %+v (%v)", rec, back, ok)
		}
	})
}
