package st25dv

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The paged memory reads back exactly what a flat UserSize array would
// hold after the same writes — across page borders, at the end (the excess
// dropped, as copy does), and 00h where nothing was written — and
// allocates only the pages written.
func TestEEPROMIsAFlatMemory(t *testing.T) {
	var e eeprom
	var flat [UserSize]byte
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a := rng.IntN(UserSize)
		data := make([]byte, rng.IntN(600))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if got, want := e.write(a, data), copy(flat[a:], data); got != want {
			t.Fatalf("write %d bytes at %d: %d written, want %d", len(data), a, got, want)
		}
		b := rng.IntN(UserSize)
		n := rng.IntN(UserSize - b + 1)
		if got := e.appendRange([]byte{0xAA}, b, n); !bytes.Equal(got, append([]byte{0xAA}, flat[b:b+n]...)) {
			t.Fatalf("read %d bytes at %d differs", n, b)
		}
		if c := rng.IntN(UserSize); e.at(c) != flat[c] {
			t.Fatalf("byte %d: %02X, want %02X", c, e.at(c), flat[c])
		}
	}
	var fresh eeprom
	fresh.write(eepromPage-2, []byte{1, 2, 3, 4}) // two pages
	allocated := 0
	for _, p := range fresh.pages {
		if p != nil {
			allocated++
		}
	}
	if allocated != 2 || fresh.at(0) != 0 || fresh.at(eepromPage+1) != 4 {
		t.Fatalf("%d pages allocated, want 2; at(0)=%02X at(%d)=%02X", allocated, fresh.at(0), eepromPage+1, fresh.at(eepromPage+1))
	}
	if fresh.write(UserSize, []byte{9}) != 0 || fresh.write(-1, []byte{9}) != 0 {
		t.Fatal("a write outside the memory was taken")
	}
}
