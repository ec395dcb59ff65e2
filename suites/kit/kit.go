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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/fixtures/require"
	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/at"
)

// LoadRig loads the rig file named by TAP2JOIN_RIG (rigs/emulated.yaml by
// default).
func LoadRig() *rigs.File {
	GinkgoHelper()
	f, err := rigs.LoadFromEnv()
	Expect(err).NotTo(HaveOccurred())
	return f
}

// UpRig brings f up for the current spec and closes it when the spec ends.
// Each board's console transcript goes to the report (shown on failure)
// after a check that it holds no issued key.
func UpRig(ctx context.Context, f *rigs.File, opts rigs.Options) *rigs.Rig {
	GinkgoHelper()
	rig, err := rigs.Up(ctx, f, opts)
	Expect(err).NotTo(HaveOccurred(), "bring up rig %s", f.Name)
	recordFirmware(ctx, rig)
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
	c, err := rigs.BoardCapability[C](b)
	skipIfMissing(err)
	return c
}

// NeedOfRig returns the rig's part offering capability C, or skips the spec
// with the reason the bench lacks it.
func NeedOfRig[C any](r *rigs.Rig) C {
	GinkgoHelper()
	c, err := rigs.RigCapability[C](r)
	skipIfMissing(err)
	return c
}

// NeedFirmwareFaults skips the spec unless the rig file's board i can run a
// faulty firmware (rig file faults:); call it before changing Faults.
func NeedFirmwareFaults(f *rigs.File, i int) {
	GinkgoHelper()
	skipIfMissing(f.Boards[i].FirmwareFaults())
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

// AwaitEvents reads the console's +EVT: events until want returns true for
// one, within timeout, and returns every event seen; it fails the spec
// naming what it waited for and the events it saw otherwise.
func AwaitEvents(ctx context.Context, con at.Console, timeout time.Duration, what string, want func(at.Event) bool) []at.Event {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var seen []at.Event
	for {
		select {
		case ev, ok := <-con.Events():
			Expect(ok).To(BeTrue(), "console closed while waiting for %s", what)
			seen = append(seen, ev)
			if want(ev) {
				return seen
			}
		case <-ctx.Done():
			var lines []string
			for _, e := range seen {
				lines = append(lines, e.Line)
			}
			Fail(fmt.Sprintf("no %s on the console within %v; seen: %s", what, timeout, strings.Join(lines, " | ")))
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
