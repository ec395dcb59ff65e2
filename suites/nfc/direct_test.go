package nfc_test

import (
	. "github.com/onsi/ginkgo/v2"
)

// The in-process transport: frames go straight to the twin's RF side.
var _ = conformance(Transport{
	Name:   "direct",
	Labels: Label("transport:direct"),
	Rig:    "rigs/tag-direct.yaml",
})
