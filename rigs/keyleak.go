package rigs

import (
	"bytes"
	"encoding/hex"
	"sync"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// issued remembers, in this process's memory only, every key the rig's phones
// received, so a run can prove its logs and reports hold none of them.
var issued struct {
	mu   sync.Mutex
	keys [][16]byte
}

func rememberIssued(k provproto.Keys) {
	issued.mu.Lock()
	defer issued.mu.Unlock()
	issued.keys = append(issued.keys, k.AppKey)
	if k.NwkKey != nil {
		issued.keys = append(issued.keys, *k.NwkKey)
	}
}

// FindIssuedKeys returns the check values of the issued keys that appear in b
// as hex (either case) or raw bytes. An empty result means no leak.
func FindIssuedKeys(b []byte) []provproto.KCV {
	issued.mu.Lock()
	defer issued.mu.Unlock()
	lower := bytes.ToLower(b)
	var found []provproto.KCV
	for _, k := range issued.keys {
		h := []byte(hex.EncodeToString(k[:]))
		if bytes.Contains(lower, h) || bytes.Contains(b, k[:]) {
			found = append(found, provproto.CheckValue(k))
		}
	}
	return found
}
