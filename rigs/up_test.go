package rigs_test

import (
	"context"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs"
)

// Up's ctx bounds the start-up only: a rig brought up with a context that
// then ends (a start-up timeout, say) keeps running until Close. The emulated
// gateway once lived on that context, and every join after it failed.
func TestUpContextBoundsStartOnly(t *testing.T) {
	p, err := rigs.Find("rigs/emulated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := rigs.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rig, err := rigs.Up(ctx, f, rigs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	cancel()
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	res, err := rig.Boards[0].Phone.Provision(pctx, rig.Region, rig.Joins())
	if err != nil {
		t.Fatalf("provision after the start-up ctx ended: %v (%+v)", err, res.Timings)
	}
}
