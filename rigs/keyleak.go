package rigs

import (
	"encoding/hex"
	"fmt"
	"os"
	"sync"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports/keyscan"
)

// issued remembers, in this process's memory only, every key the rig's phones
// received, so a run can prove its logs and reports hold none of them. Under
// a run's driver (t2jrun) each is also escrowed, sealed, for the driver's
// scan of every output of the run (reports/keyscan).
var issued struct {
	mu        sync.Mutex
	keys      [][16]byte
	escrowErr bool
}

func rememberIssued(k provproto.Keys) {
	keys := [][16]byte{k.AppKey}
	if k.NwkKey != nil {
		keys = append(keys, *k.NwkKey)
	}
	issued.mu.Lock()
	defer issued.mu.Unlock()
	issued.keys = append(issued.keys, keys...)
	if err := keyscan.Escrow(keys...); err != nil && !issued.escrowErr {
		// The driver's scan cannot look for this key: Escrow has left
		// the driver a note, which fails the run's leak check.
		issued.escrowErr = true
		fmt.Fprintf(os.Stderr, "rigs: key escrow failed, the run's leak check will miss keys: %v\n", err)
	}
}

// FindIssuedKeys returns the check values of the issued keys that appear in b
// in any encoding keyscan knows (hex either case, with separators, LSB
// first, decimal bytes, base64, raw). An empty result means no leak.
func FindIssuedKeys(b []byte) []provproto.KCV {
	issued.mu.Lock()
	keys := append([][16]byte(nil), issued.keys...)
	issued.mu.Unlock()
	var found []provproto.KCV
	seen := map[string]bool{}
	for _, h := range keyscan.New(keys).Scan("", b) {
		if seen[h.KCV] {
			continue
		}
		seen[h.KCV] = true
		// keyscan names a key by the same check value (AES(key, 0¹²⁸),
		// first 3 bytes), in hex.
		var kcv provproto.KCV
		if _, err := hex.Decode(kcv[:], []byte(h.KCV)); err == nil {
			found = append(found, kcv)
		}
	}
	return found
}
