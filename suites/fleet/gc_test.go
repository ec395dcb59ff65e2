package fleet_test

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's target.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// Overlapping fleets keep the raised target until the last one ends, which
// restores the process's own; a restore called twice counts once.
func TestFleetGCOverlap(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set: fleetGC leaves the target alone")
	}
	before := gcPercent()
	defer debug.SetGCPercent(before)
	debug.SetGCPercent(150) // the process's own target, not the default
	a := fleetGC()
	b := fleetGC()
	if got := gcPercent(); got != fleetGCPercent {
		t.Fatalf("two fleets running: target %d, want %d", got, fleetGCPercent)
	}
	a()
	a()
	if got := gcPercent(); got != fleetGCPercent {
		t.Errorf("one fleet still running: target %d, want %d", got, fleetGCPercent)
	}
	b()
	if got := gcPercent(); got != 150 {
		t.Errorf("no fleet running: target %d, want the process's 150", got)
	}
}
