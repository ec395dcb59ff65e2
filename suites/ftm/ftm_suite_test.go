// Package ftm_test measures Fast Transfer Mode against the physical model: a
// phone (the rigs/nfc driver over the board's direct transport) and the MCU
// side of an ST25DV64KC whose clock sleeps every modelled duration — the tag
// of rigs/tag-realistic.yaml, whose MCU runs no firmware so the specs play it
// (rigs.TagHost) — each mailbox exchange's time compared with the tag's
// timing model (rigs.MailboxWriteTime / MailboxReadTime; DS13519 Table 102 and
// Table 255) and with its modelled time (rigs.ModelClock); and a firmware
// image streamed through the mailbox to the STM32WL5 firmware twin of
// rigs/emulated.yaml (SPEC.md §7) at close to the RF limit, the staged image
// read back through rigs.FirmwareSlot (each capability asked for with
// kit.Need: a board without it skips the spec, with the reason).
//
// Virtual time. The whole path of these specs is in this process: phone,
// direct transport, tag twin, I2C bus, GPO line, firmware twin. So each
// timing spec runs it in a testing/synctest bubble (onVirtualTime), where
// time.Now, timers and sleeps use the bubble's fake clock: it stands still
// while any goroutine of the bubble runs and jumps to the next timer once
// all of them wait. The twins' realistic sleeps (emulators/timing, which
// sleeps on Go timers only on a virtual clock) and the phone's poll timers
// then last exactly their modelled durations. Why: on the wall clock a
// descheduled thread or a second run on a 2-core runner added milliseconds
// to an exchange (7.5 ms against a 4.06 ms model) and pulled the firmware
// transfer under 90 % of the RF limit, so the verdict depended on the
// host's load. On virtual time it does not: the measurements are the same
// on every run, loaded or not, and the 64 KiB image's ≈ 23 s take well
// under a second. The checks keep their teeth: virtual time is every
// modelled wait on the path, so an extra RF command per exchange or per
// chunk shows up (the control specs prove it). The boards come up with
// rigs.UpInProcess — no network server, backend or console, whose sockets
// and ptys would stop the bubble's clock, and which the FTM path does not
// use. Paths through real processes (pcscd, Docker) stay on the wall
// clock, in other suites.
//
// Measurements: "ftm write N B" and "ftm read N B" (ms), "ftm firmware 16 KiB
// throughput" (B/s), "… ratio" (% of the RF limit) and "… transfer" (ms,
// modelled); their limits are in reports/limits/emulated.yaml.
//
// Wall clock: a few seconds, mostly the IMAGE_MISMATCH spec's rig on the
// wall clock. The 64 KiB image carries the label "slow", which make emulate
// leaves out: go tool ginkgo --label-filter=slow ./suites/ftm
package ftm_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestFTM(t *testing.T) {
	suiteT = t // onVirtualTime makes its bubbles with it
	RegisterFailHandler(Fail)
	RunSpecs(t, "FTM timing and firmware transfer")
}
