// Package provisioning_test is the end-to-end suite of the solution brief: a
// phone taps a board, reads its DevEUI, registers it over HTTPS, writes the
// AppKey through the ST25DV mailbox and the network server reports the join.
//
// The suite never asks whether a board is real or emulated: the rig file named
// by TAP2JOIN_RIG (default rigs/emulated.yaml) decides.
package provisioning_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
)

func TestProvisioning(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Provisioning")
}

// upRig loads and brings up a rig file, closing it when the current node ends.
func upRig(ctx context.Context, f *rigs.File) *rigs.Rig {
	GinkgoHelper()
	rig, err := rigs.Up(ctx, f, rigs.Options{})
	Expect(err).NotTo(HaveOccurred(), "bring up rig %s", f.Name)
	DeferCleanup(func() { Expect(rig.Close()).To(Succeed()) })
	return rig
}

func loadRig() *rigs.File {
	GinkgoHelper()
	f, err := rigs.LoadFromEnv()
	Expect(err).NotTo(HaveOccurred())
	return f
}

// The report must never hold key material: every key issued during the run
// is looked for in the whole report, in upper and lower case hex.
var _ = ReportAfterSuite("no key material in the report", func(r Report) {
	raw, err := json.Marshal(r)
	Expect(err).NotTo(HaveOccurred())
	Expect(rigs.FindIssuedKeys(raw)).To(BeEmpty(), "the report holds an issued key (named here by KCV only)")
})

var _ = BeforeSuite(func() {
	// A wall-clock guard for the whole suite lives in the Makefile's
	// -timeout; specs carry their own SpecTimeout.
	_ = time.Second
})
