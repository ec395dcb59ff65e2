package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/reports/keyscan"
)

// escrowAs escrows keys as a suite process does: with the environment the
// driver gave ginkgo.
func escrowAs(t *testing.T, env []string, keys ...[16]byte) {
	t.Helper()
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && (k == keyscan.EnvFile || k == keyscan.EnvKey) {
			t.Setenv(k, v)
		}
	}
	if err := keyscan.Escrow(keys...); err != nil {
		t.Fatal(err)
	}
}

var leakKey = [16]byte{0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C}

// A run whose processes printed or wrote no issued key passes and says so;
// one where a suite printed a key on its stdout (the console log) or left
// it in a file of the run folder fails, naming where by KCV only; the
// escrow is gone either way.
func TestKeyLeakCheck(t *testing.T) {
	kcv := provproto.CheckValue(leakKey).String()
	for _, tc := range []struct {
		name  string
		leak  func(w *fakeWorld, dir string)
		code  int
		where string
	}{
		{"clean", func(w *fakeWorld, dir string) { fmt.Fprintf(w.stdout, "joined, AppKey KCV %s\n", kcv) }, exitPass, ""},
		{"stdout", func(w *fakeWorld, dir string) {
			fmt.Fprintf(w.stdout, "DEBUG stm32wl5: key %s\n", strings.ToUpper(hex.EncodeToString(leakKey[:])))
		}, exitFail, consoleLog},
		{"file", func(w *fakeWorld, dir string) {
			os.WriteFile(filepath.Join(dir, "frames.jsonl"), []byte(`{"k":"`+base64.StdEncoding.EncodeToString(leakKey[:])+`"}`+"\n"), 0o644)
		}, exitFail, "frames.jsonl"},
		{"rig log", func(w *fakeWorld, dir string) {
			for _, e := range w.env {
				if f, ok := strings.CutPrefix(e, "TAP2JOIN_LOG_FILE="); ok {
					os.WriteFile(f, []byte("level=DEBUG msg=store key="+hex.EncodeToString(leakKey[:])+"\n"), 0o644)
				}
			}
		}, exitFail, rigLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, w, args, out := newTestDriver(t)
			env := d.env
			d.env = func(k string) string {
				if k == "TAP2JOIN_LOG" {
					return "debug"
				}
				if k == "TAP2JOIN_LOG_FILE" {
					return ""
				}
				return env(k)
			}
			w.onGinkgo = func(w *fakeWorld, dir string) {
				escrowAs(t, w.env, leakKey)
				tc.leak(w, dir)
				writeReport(t, dir)
				w.ginkgo.exit <- 0
			}
			code := d.main(args)
			run := filepath.Join(out, "emulate", "t1")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, w.out.String())
			}
			if _, err := os.Stat(filepath.Join(run, keyscan.EscrowFile)); !os.IsNotExist(err) {
				t.Errorf("escrow left in the run folder: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(run, leakCheckOut))
			if err != nil {
				t.Fatalf("%v\n%s", err, w.out.String())
			}
			var res keyscan.Result
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if res.Keys != 1 || res.Files < 3 {
				t.Errorf("%s: %d keys, %d files", leakCheckOut, res.Keys, res.Files)
			}
			if tc.where == "" {
				if len(res.Hits) != 0 || !strings.Contains(w.out.String(), "key-leak check: 1 issued key(s)") {
					t.Errorf("hits %v\n%s", res.Hits, w.out.String())
				}
				return
			}
			if len(res.Hits) == 0 || res.Hits[0].File != tc.where || res.Hits[0].KCV != kcv {
				t.Errorf("hits %v, want one in %s", res.Hits, tc.where)
			}
			if !strings.Contains(w.out.String(), "FAIL: issued keys in the run's outputs") {
				t.Errorf("final line:\n%s", w.out.String())
			}
			if strings.Contains(strings.ToLower(string(b)), hex.EncodeToString(leakKey[:])) {
				t.Error("leakcheck.json names the key")
			}
			console, _ := os.ReadFile(filepath.Join(run, consoleLog))
			if !strings.Contains(string(console), "t2jrun: running 1 suites") {
				t.Errorf("console.log lacks the driver's lines:\n%s", console)
			}
		})
	}
}
