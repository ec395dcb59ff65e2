// Package ftm_test measures Fast Transfer Mode against the physical model: a
// phone (the rigs/nfc driver over the board's direct transport) and the MCU
// side of an ST25DV64KC whose clock sleeps every modelled duration — the tag
// of rigs/tag-realistic.yaml, whose MCU runs no firmware so the specs play it
// (rigs.TagHost) — each mailbox exchange's wall time compared with the tag's
// timing model (rigs.MailboxWriteTime / MailboxReadTime; DS13519 Table 102 and
// Table 255) and with its modelled time (rigs.ModelClock); and a firmware
// image streamed through the mailbox to the STM32WL5 firmware twin of
// rigs/emulated.yaml (SPEC.md §7) at close to the RF limit, the staged image
// read back through rigs.FirmwareSlot (each capability asked for with
// kit.Need: a board without it skips the spec, with the reason).
//
// Measurements: "ftm write N B" and "ftm read N B" (ms), "ftm firmware 16 KiB
// throughput" (B/s) and "… ratio" (% of the RF limit); their limits are in
// reports/limits/emulated.yaml.
//
// Wall clock: about 6 s (the realistic mailbox exchanges ≈ 1 s, the 16 KiB
// image ≈ 5 s). The 64 KiB image (≈ 22 s) carries the label "slow", which
// make emulate leaves out: go tool ginkgo --label-filter=slow ./suites/ftm
package ftm_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestFTM(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "FTM timing and firmware transfer")
}
