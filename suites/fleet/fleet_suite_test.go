// Package fleet_test provisions a fleet: N emulated boards tapped, registered
// and joined concurrently through one embedded network server and one
// gateway, measuring devices per second and the tap → join latency
// distribution (p50, p99).
//
// The rig is rigs/emulated.yaml (or $TAP2JOIN_RIG) with its one board
// replicated N times in code. Boards get unique ids offset by the Ginkgo
// parallel process, so `go tool ginkgo -p ./suites/fleet` gives every process
// its own rig and its own boards (each process brings its rig up and down).
//
// The performance target (10,000 devices tap → first uplink in ≤ 10 s on a
// 2-core runner, as many devices/s as at N=100) is a benchmark, not a spec:
//
//	go test -run '^$' -bench 'Fleet/N=10000$' -benchtime 1x ./suites/fleet
package fleet_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/suites/kit"
)

func TestFleet(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Fleet")
}

// The report must never hold key material (named by KCV only if it does).
var _ = kit.NoKeysInReport()
