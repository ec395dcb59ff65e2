package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs/lease"
)

func TestListsFileLeases(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if rc := run([]string{"-dir", dir}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "no lease held") {
		t.Fatalf("empty: %d %q %q", rc, out.String(), errOut.String())
	}
	l, err := lease.Acquire(context.Background(), "nucleo-wl55-1", lease.Options{Dir: dir, Owner: "job 42", TTL: time.Minute, Renew: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	out.Reset()
	if rc := run([]string{"-dir", dir, "list"}, &out, &errOut); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errOut.String())
	}
	if !strings.Contains(out.String(), `nucleo-wl55-1 held by "job 42"`) || !strings.Contains(out.String(), " until ") {
		t.Errorf("output %q", out.String())
	}
	if rc := run([]string{"frob"}, &out, &errOut); rc != 2 {
		t.Errorf("bad usage: exit %d", rc)
	}
}
