package st25dv

// eeprom is the tag's user memory (UserSize bytes), held a page at a time
// and allocated on the first write to a page: a fleet has 10,000 tags, and
// of each one's 8 KB the firmware writes only the first blocks (the NDEF
// identity) — 8 KB each was a fifth of the fleet's heap. What is read is
// exactly what a flat array would hold; an unwritten byte reads 00h, as the
// twin's memory always started.
type eeprom struct {
	pages [UserSize / eepromPage]*[eepromPage]byte
}

// eepromPage is the allocation unit, not a chip property.
const eepromPage = 256

// at returns the byte at address a (0 ≤ a < UserSize).
func (e *eeprom) at(a int) byte {
	if p := e.pages[a/eepromPage]; p != nil {
		return p[a%eepromPage]
	}
	return 0
}

// appendRange appends the n bytes from address a to dst (a+n ≤ UserSize).
func (e *eeprom) appendRange(dst []byte, a, n int) []byte {
	for n > 0 {
		pi, off := a/eepromPage, a%eepromPage
		k := min(n, eepromPage-off)
		if p := e.pages[pi]; p != nil {
			dst = append(dst, p[off:off+k]...)
		} else {
			for range k {
				dst = append(dst, 0)
			}
		}
		a, n = a+k, n-k
	}
	return dst
}

// write copies data to address a, as copy(mem[a:], data) would: what goes
// past the end of the memory is dropped. It returns the bytes written.
func (e *eeprom) write(a int, data []byte) int {
	if a < 0 || a >= UserSize {
		return 0
	}
	data = data[:min(len(data), UserSize-a)]
	n := len(data)
	for len(data) > 0 {
		pi, off := a/eepromPage, a%eepromPage
		p := e.pages[pi]
		if p == nil {
			p = new([eepromPage]byte)
			e.pages[pi] = p
		}
		k := copy(p[off:], data)
		a, data = a+k, data[k:]
	}
	return n
}
