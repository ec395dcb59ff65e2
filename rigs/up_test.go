package rigs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs"
)

// loadRigFile loads a rig file of this directory by its module path.
func loadRigFile(t *testing.T, path string) *rigs.File {
	t.Helper()
	p, err := rigs.Find(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := rigs.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// upRig brings f up until the test ends.
func upRig(t *testing.T, f *rigs.File) *rigs.Rig {
	t.Helper()
	rig, err := rigs.Up(t.Context(), f, rigs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rig.Close(); err != nil {
			t.Error(err)
		}
	})
	return rig
}

// Up's ctx bounds the start-up only: a rig brought up with a context that
// then ends (a start-up timeout, say) keeps running until Close. The emulated
// gateway once lived on that context, and every join after it failed.
func TestUpContextBoundsStartOnly(t *testing.T) {
	f := loadRigFile(t, "rigs/emulated.yaml")
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

// Up registers what each part offers: the emulated board's twin, the
// embedded network server, the emulated gateways; and says why a capability
// is missing.
func TestUpRegistersCapabilities(t *testing.T) {
	rig := upRig(t, loadRigFile(t, "rigs/emulated.yaml"))
	b := rig.Boards[0]
	if _, err := rigs.BoardCapability[rigs.PhoneHand](b); err != nil {
		t.Error(err)
	}
	if _, err := rigs.BoardCapability[rigs.MCUControl](b); err != nil {
		t.Error(err)
	}
	if _, err := rigs.BoardCapability[rigs.MailboxWatchdog](b); err != nil {
		t.Error(err)
	}
	if _, err := rigs.BoardCapability[rigs.TagHost](b); !errors.Is(err, rigs.ErrMissingCapability) || !strings.Contains(err.Error(), "firmware: none") {
		t.Errorf("TagHost on a board running the firmware twin: %v", err)
	}
	if _, err := rigs.RigCapability[rigs.BrokerRestart](rig); err != nil {
		t.Error(err)
	}
	if _, err := rigs.RigCapability[rigs.NetworkServerRestart](rig); err != nil {
		t.Error(err)
	}
	if _, err := rigs.RigCapability[rigs.GatewaySwitch](rig); err != nil {
		t.Error(err)
	}
	if _, err := rigs.RigCapability[rigs.OtherNetworks](rig); err != nil {
		t.Error(err)
	}
}
