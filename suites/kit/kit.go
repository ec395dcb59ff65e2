// Package kit is what every suite does the same way: load the rig file,
// bring a rig up for a spec and close it when the spec ends (its console
// transcripts in the report, checked for key material first), prove the
// report holds no issued key, wait for console events, and ask the rig for a
// capability — skipping, with the reason, when the bench lacks it.
//
// Specs stay ignorant of whether a board is real or emulated: they ask for
// what they need and the rig answers.
package kit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/fixtures/require"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/phone"
)

// LoadRig loads the rig file named by TAP2JOIN_RIG (rigs/emulated.yaml by
// default).
func LoadRig() *rigs.File {
	GinkgoHelper()
	f, err := rigs.LoadFromEnv()
	if err != nil {
		// A rig file that does not load fails every spec the same way.
		AbortSuite(err.Error())
	}
	return f
}

// UpRig brings f up for the current spec and closes it when the spec ends.
// Every spec gets a fresh rig (as a function-scoped fixture), so no spec
// sees another's device state; a bench part that is missing (a real
// board's serial port or reader) aborts the whole suite at the first spec
// instead, in one line naming the part.
// Each board's console transcript goes to the report (shown on failure)
// after a check that it holds no issued key.
func UpRig(ctx context.Context, f *rigs.File, opts rigs.Options) *rigs.Rig {
	GinkgoHelper()
	if opts.Spec == "" {
		opts.Spec = CurrentSpecReport().FullText()
	}
	rig, err := rigs.Up(ctx, f, opts)
	if errors.Is(err, rigs.ErrPartMissing) {
		// No spec on this rig can run: stop the suite in one line rather
		// than let every spec fail the same way (the other suites of the
		// run go on: t2jrun runs ginkgo --keep-going).
		AbortSuite(fmt.Sprintf("rig %s cannot come up: %v", f.Name, err))
	}
	Expect(err).NotTo(HaveOccurred(), "bring up rig %s", f.Name)
	recordFirmware(ctx, rig)
	for _, b := range rig.Boards {
		if b.Flash != nil {
			// The flashing tool's output: shown when a spec fails or -v.
			AddReportEntry("flash "+b.Name, b.Flash.String(), ReportEntryVisibilityFailureOrVerbose)
		}
	}
	// Cleanups run last-registered first: the transcripts are checked and
	// kept, then the rig closes — also when the check failed.
	DeferCleanup(func() { Expect(rig.Close()).To(Succeed()) })
	DeferCleanup(func() {
		for _, b := range rig.Boards {
			tr := at.FormatTranscript(b.Console.Transcript())
			ExpectNoIssuedKeys(tr, "console transcript of "+b.Name)
			AddReportEntry("console transcript "+b.Name, tr, ReportEntryVisibilityFailureOrVerbose)
		}
	})
	return rig
}

// FirmwareEntry is the name of the report entry holding a board's firmware
// version ("firmware <board>"), which reports/ shows in the run's metadata.
func FirmwareEntry(board string) string { return "firmware " + board }

// recordFirmware puts each board's firmware version (AT+VER=?) in the
// report, so a verdict says which firmware it judged. A board without a
// console has none to report; one that does not answer is noted as such.
func recordFirmware(ctx context.Context, rig *rigs.Rig) {
	for _, b := range rig.Boards {
		v, err := b.FirmwareVersion(ctx)
		switch {
		case errors.Is(err, at.ErrNoConsole):
			continue
		case err != nil:
			v = "unknown (" + err.Error() + ")"
		}
		AddReportEntry(FirmwareEntry(b.Name), v)
	}
}

// MailboxProtocol is what the run's rig (TAP2JOIN_RIG) has its first board
// speak over the mailbox: phone.MailboxTap2join (also when the rig does not
// load: LoadRig reports that) or phone.MailboxST25FTM. Safe while the spec
// tree is built, so specs only one protocol has are declared for it alone.
func MailboxProtocol() string {
	f, err := rigs.LoadFromEnv()
	if err != nil || len(f.Boards) == 0 || f.Boards[0].MailboxProtocol == "" {
		return phone.MailboxTap2join
	}
	return f.Boards[0].MailboxProtocol
}

// LoadRigFile loads a rig file by its path from the module root (as
// rigs.Find resolves it), e.g. "rigs/emulated-pcsc.yaml".
func LoadRigFile(path string) *rigs.File {
	GinkgoHelper()
	p, err := rigs.Find(path)
	Expect(err).NotTo(HaveOccurred())
	f, err := rigs.Load(p)
	Expect(err).NotTo(HaveOccurred())
	return f
}

// ContainersRigPath is the rig of the needs:docker specs: $TAP2JOIN_CONTAINERS_RIG,
// else rigs/emulated-containers.yaml (the network server in containers).
func ContainersRigPath() string {
	if p := os.Getenv("TAP2JOIN_CONTAINERS_RIG"); p != "" {
		return p
	}
	return "rigs/emulated-containers.yaml"
}

// ExpectNoIssuedKeys fails the spec when text holds a key the rig issued in
// this process (hex in either case, or raw). The failure names the keys by
// check value only.
func ExpectNoIssuedKeys(text, what string) {
	GinkgoHelper()
	Expect(rigs.FindIssuedKeys([]byte(text))).To(BeEmpty(), "%s holds an issued key (named here by KCV only)", what)
}

// NoKeysInReport declares the suite's check that its whole report holds no
// issued key: `var _ = kit.NoKeysInReport()` in the suite file.
func NoKeysInReport() bool {
	return ReportAfterSuite("no key material in the report", func(r Report) {
		raw, err := json.Marshal(r)
		Expect(err).NotTo(HaveOccurred())
		ExpectNoIssuedKeys(string(raw), "the report")
	})
}

// Need returns board b's part offering capability C, or skips the spec with
// the reason the bench lacks it.
func Need[C any](b *rigs.Board) C {
	GinkgoHelper()
	requireCapabilityLabel(reflect.TypeFor[C]().Name())
	c, err := rigs.BoardCapability[C](b)
	skipIfMissing(err)
	return c
}

// NeedOwn is Need for a spec on a rig file of its own (suites/nfc's and
// suites/ftm's tag and firmware rigs), not the bench's: what it needs does
// not depend on the bench, so it declares no capability label.
func NeedOwn[C any](b *rigs.Board) C {
	GinkgoHelper()
	c, err := rigs.BoardCapability[C](b)
	skipIfMissing(err)
	return c
}

// NeedOfRig returns the rig's part offering capability C, or skips the spec
// with the reason the bench lacks it.
func NeedOfRig[C any](r *rigs.Rig) C {
	GinkgoHelper()
	requireCapabilityLabel(reflect.TypeFor[C]().Name())
	c, err := rigs.RigCapability[C](r)
	skipIfMissing(err)
	return c
}

// NeedFirmwareFaults skips the spec unless the rig file's board i can run a
// faulty firmware (rig file faults:); call it before changing Faults.
func NeedFirmwareFaults(f *rigs.File, i int) {
	GinkgoHelper()
	requireCapabilityLabel(rigs.CapFirmwareFaults)
	skipIfMissing(f.Boards[i].FirmwareFaults())
}

// NeedCopies skips the spec unless the rig file's board i can be copied
// into a fleet (emulated boards).
func NeedCopies(f *rigs.File, i int) {
	GinkgoHelper()
	requireCapabilityLabel(rigs.CapCopies)
	skipIfMissing(f.Boards[i].Replicable())
}

// requireCapabilityLabel fails a spec that asks for a capability without
// declaring it (Label(rigs.CapabilityLabel(name)), here or on a container):
// `rigcheck -plan` reads the labels to say which specs a bench will skip.
func requireCapabilityLabel(name string) {
	GinkgoHelper()
	want := rigs.CapabilityLabel(name)
	if !slices.Contains(CurrentSpecReport().Labels(), want) {
		Fail(fmt.Sprintf("the spec needs capability %s but has no Label(%q): rigcheck -plan would not know", name, want))
	}
}

// SkipIfMissing skips the spec when err says the bench lacks a capability
// and fails it on any other error.
func SkipIfMissing(err error) {
	GinkgoHelper()
	skipIfMissing(err)
	Expect(err).NotTo(HaveOccurred())
}

func skipIfMissing(err error) {
	GinkgoHelper()
	if errors.Is(err, rigs.ErrMissingCapability) {
		Skip(err.Error())
	}
}

// NeedPCSCD skips the spec on a machine without pcscd and vpcd — or fails
// it where they are required (CI, TAP2JOIN_REQUIRE=pcscd; fixtures/require).
func NeedPCSCD() {
	GinkgoHelper()
	if _, err := pcscd.Check(); err != nil {
		require.Missing(GinkgoT(), require.PCSCD, err)
	}
}

// Decisive names the console events that end a wait for anything else at
// once: the device has said the awaited thing will not come ("+EVT:NFC_REJECTED
// <status>" after a mailbox message it refused). Waiting out the timeout
// would only delay the verdict. "+EVT:JOIN FAILED" is not one: it ends one
// join attempt, and the firmware makes several (the first JoinAccept of a
// LoRaWAN 1.0.4 device is dropped, JoinNonce 0); a join that will not come
// is told by the network server's MIC and DevNonce events instead
// (rigs.JoinRefusedError).
var Decisive = []string{"NFC_REJECTED"}

// AwaitEvents reads the console's +EVT: events until want returns true for
// one, within timeout, and returns every event seen. It fails the spec
// naming what it waited for and the events it saw when the timeout passes —
// or at once when the device says a Decisive event during the wait that
// want does not match,
// unless the event's name is in tolerate (a spec that provokes a rejection
// on the way to what it waits for).
func AwaitEvents(ctx context.Context, con at.Console, timeout time.Duration, what string, want func(at.Event) bool, tolerate ...string) []at.Event {
	GinkgoHelper()
	seen, err := awaitEvents(ctx, con.Events(), time.Now(), timeout, what, want, tolerate)
	if err != nil {
		Fail(err.Error())
	}
	return seen
}

// awaitEvents is AwaitEvents returning its failure; the wait began at start.
func awaitEvents(ctx context.Context, events <-chan at.Event, start time.Time, timeout time.Duration, what string, want func(at.Event) bool, tolerate []string) ([]at.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var seen []at.Event
	lines := func() string {
		var l []string
		for _, e := range seen {
			l = append(l, e.Line)
		}
		return strings.Join(l, " | ")
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return seen, fmt.Errorf("console closed while waiting for %s; seen: %s", what, lines())
			}
			seen = append(seen, ev)
			if want(ev) {
				return seen, nil
			}
			// Only what the device said during the wait: an earlier
			// rejection, still queued, was the answer to something the
			// spec did before (and has judged).
			if ev.Time.After(start) && slices.Contains(Decisive, ev.Name) && !slices.Contains(tolerate, ev.Name) {
				return seen, fmt.Errorf("the device said %s while %s was awaited; seen: %s", ev.Line, what, lines())
			}
		case <-ctx.Done():
			return seen, fmt.Errorf("no %s on the console within %v; seen: %s", what, timeout, lines())
		}
	}
}

// Named matches events by name (the word after +EVT:).
func Named(names ...string) func(at.Event) bool {
	return func(e at.Event) bool {
		for _, n := range names {
			if e.Name == n {
				return true
			}
		}
		return false
	}
}

// AwaitMailbox waits until the board's firmware has finished booting: its
// mailbox is on and empty. (The firmware's boot event comes before it
// configures the tag, so a rig or a reset can return a little earlier.)
func AwaitMailbox(ctx context.Context, b *rigs.Board) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		st, err := b.Tag.MailboxStatus(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(st.Free()).To(BeTrue(), "mailbox %s", st)
	}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(time.Millisecond).Should(Succeed(), "%s: mailbox on", b.Name)
}
