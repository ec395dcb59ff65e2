package rigs_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// A firmware twin that writes the key it stores to its debug log (rig file
// faults.leak_key_to_log) is caught: the key the phone received is found in
// the rig's debug log, named by its KCV. The same rig without the fault
// logs every part at debug level — the embedded ChirpStack, the backend,
// the gateway, the twin — and holds no issued key.
func TestLeakingTwinIsCaught(t *testing.T) {
	for _, leak := range []bool{false, true} {
		f := loadRigFile(t, "rigs/emulated.yaml")
		f.Boards[0].Faults.LeakKeyToLog = leak
		var log syncBuf
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rig, err := rigs.Up(ctx, f, rigs.Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		res, err := rig.Boards[0].Phone.Provision(ctx, rig.Region, rig.Joins())
		if err != nil {
			t.Fatal(err)
		}
		if err := rig.Close(); err != nil {
			t.Error(err)
		}
		cancel()
		if len(log.Bytes()) < 1000 {
			t.Fatalf("leak %v: a %d-byte debug log", leak, len(log.Bytes()))
		}
		found := rigs.FindIssuedKeys(log.Bytes())
		switch {
		case leak && (len(found) != 1 || found[0] != res.KCV):
			t.Errorf("the leaking twin's key (KCV %s) not found in its debug log: %v", res.KCV, found)
		case !leak && len(found) != 0:
			t.Errorf("issued keys in a clean rig's debug log: %v", found)
		}
	}
}
