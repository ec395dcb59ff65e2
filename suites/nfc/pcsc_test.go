//go:build cgo && !nopcsc

package nfc_test

import (
	. "github.com/onsi/ginkgo/v2"

	"github.com/tap2join/tap2join/suites/kit"
)

// The real PC/SC stack: pcscd + vpcd (started by the rig through
// fixtures/pcscd), the tag as a card in "Virtual PCD 00 00", the
// transparent-exchange transport. Without pcscd and vpcd installed the specs
// skip — or fail where pcscd is required (CI=true or TAP2JOIN_REQUIRE=pcscd;
// fixtures/require, through kit.NeedPCSCD).
var _ = conformance(Transport{
	Name:   "pcsc",
	Labels: Label("transport:pcsc", "needs:pcscd"),
	Rig:    "rigs/tag-pcsc.yaml",
	Setup:  func(SpecContext) { kit.NeedPCSCD() },
})
