package phone

import "testing"

// FuzzParseNDEFIdentity: the identity record a tag serves (SPEC.md §6),
// whatever bytes a foreign or damaged tag holds, is decoded or refused.
func FuzzParseNDEFIdentity(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 0x80, 0xE1, 0x15, 0, 0, 0, 1, 0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0, 0, 1, 1, 3, 1, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseNDEFIdentity(b)
	})
}
