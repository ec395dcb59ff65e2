package nfc_test

import (
	. "github.com/onsi/ginkgo/v2"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// The in-process transport: frames go straight to the twin's RF side.
var _ = conformance(Transport{
	Name:   "direct",
	Labels: Label("transport:direct"),
	New: func(ctx SpecContext, cfg st25dv.Config) *Bench {
		tag := st25dv.New(cfg)
		tag.SetVCC(true)
		tag.FieldOn()
		tr := nfc.NewDirect(tag)
		DeferCleanup(tr.Close)
		return &Bench{Tag: tag, Tr: tr, Lift: tag.FieldOff, Tap: tag.FieldOn}
	},
})
