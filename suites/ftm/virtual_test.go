package ftm_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
)

// suiteT is TestFTM's *testing.T: synctest.Test needs one to make a bubble.
var suiteT *testing.T

// virtualBudget bounds the virtual time of one spec's bubble: a transfer
// that stops making progress but keeps polling burns virtual time, not wall
// time, and ends here with context.DeadlineExceeded instead of spinning.
// The 64 KiB image models ≈ 23 s.
const virtualBudget = 5 * time.Minute

// bubble is a spec's stay on virtual time (onVirtualTime): its context and
// its cleanups, which run in the bubble — a rig whose goroutines and timers
// were made there must be closed there.
type bubble struct {
	ctx      context.Context
	cleanups []func()
}

// deferCleanup runs fn when the spec's virtual-time part ends, failed or
// not, last registered first (as DeferCleanup, which must not be called in
// a bubble: Ginkgo would run the cleanup outside it).
func (b *bubble) deferCleanup(fn func()) { b.cleanups = append(b.cleanups, fn) }

// onVirtualTime runs f in a testing/synctest bubble: every goroutine f
// starts — the tag twin, the firmware twin, the phone — shares the bubble's
// fake clock, which stands still while any of them runs and jumps to the
// next timer once all of them wait. Each realistic-timing sleep of the
// twins (emulators/timing) and each poll timer of the phone then lasts
// exactly its modelled duration, whatever the host's load, and a 23 s
// transfer takes well under a second of wall time. time.Now and time.Since
// inside f read that clock, so what f measures is modelled time.
//
// Gomega assertions, Skip and kit.Need work in f: a failure is recorded for
// the spec, f's cleanups run, and the spec stops when f's bubble is gone.
// Measurements are recorded (reports.Record) after onVirtualTime returns,
// so their report entries carry the wall-clock time of the run. f must use
// b.ctx, not the spec's context: a goroutine selecting on a channel made
// outside the bubble is not durably blocked, and the bubble's clock would
// stop.
func onVirtualTime(f func(b *bubble)) {
	GinkgoHelper()
	finished := false
	synctest.Test(suiteT, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), virtualBudget)
		b := &bubble{ctx: ctx}
		defer func() {
			for i := len(b.cleanups) - 1; i >= 0; i-- {
				func() {
					defer GinkgoRecover()
					b.cleanups[i]()
				}()
			}
			cancel()
		}()
		defer GinkgoRecover() // records f's failure, skip or panic for the spec
		f(b)
		finished = true
	})
	if !finished {
		// The failure (or skip) is already the spec's; this only ends it.
		Fail("the spec's virtual-time part did not finish")
	}
}

// upInProcess brings up the emulated boards of f in b's bubble, without the
// network server, backend and consoles of rigs.Up (sockets and ptys would
// stop the bubble's clock; the FTM path needs none of them), and closes them
// when b ends, checking that no part stopped on its own.
func upInProcess(b *bubble, f *rigs.File) *rigs.Board {
	GinkgoHelper()
	rig, err := rigs.UpInProcess(b.ctx, f, rigs.Options{})
	Expect(err).NotTo(HaveOccurred(), "bring up the boards of rig %s in process", f.Name)
	b.deferCleanup(func() {
		Expect(rig.Close()).To(Succeed(), "close rig %s", f.Name)
		Expect(rig.BackgroundErrors()).To(Succeed(), "rig %s", f.Name)
	})
	return rig.Boards[0]
}
