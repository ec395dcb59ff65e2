// Package provisioning_test is the end-to-end suite of the solution brief: a
// phone taps a board, reads its DevEUI, registers it over HTTPS, writes the
// AppKey through the ST25DV mailbox and the network server reports the join.
//
// The suite never asks whether a board is real or emulated: the rig file named
// by TAP2JOIN_RIG (default rigs/emulated.yaml) decides.
package provisioning_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/suites/kit"
)

func TestProvisioning(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Provisioning")
}

// upRig brings up a rig for the current spec (kit.UpRig).
func upRig(ctx context.Context, f *rigs.File) *rigs.Rig {
	GinkgoHelper()
	return kit.UpRig(ctx, f, rigs.Options{})
}

func loadRig() *rigs.File {
	GinkgoHelper()
	return kit.LoadRig()
}

// The report must never hold key material: every key issued during the run
// is looked for in the whole report, in upper and lower case hex.
var _ = kit.NoKeysInReport()
