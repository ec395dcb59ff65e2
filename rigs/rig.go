package rigs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tap2join/tap2join/emulators/chirpstack"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/provisioning"
	"github.com/tap2join/tap2join/reports/progress"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
)

// Rig is a bench brought up from a rig file: the network server client, the
// provisioning backend client and one handle per board. Close releases
// everything Up started, in reverse order.
type Rig struct {
	File  *File
	Clock *timing.Clock

	// Network is the ChirpStack client (same code for every server kind).
	Network       lns.NetworkServer
	NetworkInfo   NetworkInfo
	ApplicationID string
	ProfileID     string
	// Backend is the phone's HTTPS client for the provisioning backend.
	Backend *provisioning.Client
	// BackendCA is the PEM certificate of the embedded backend's per-run CA
	// (nil for an external backend, which a system root vouches for).
	BackendCA []byte
	Region    byte

	Boards []*Board

	air      *radio.Air
	ns       *chirpstack.Server   // the embedded network server; nil for other kinds
	be       *provisioning.Server // the embedded provisioning backend; nil for an external one
	gateways []*rigGateway        // the emulated gateways
	parts    []any                // what offers rig capabilities (capabilities.go)
	pcsc     *pcscState           // pcscd and vpcd slots of emulated PC/SC boards
	noCons   bool                 // Options.NoConsoles
	detach   bool                 // Options.DetachedConsoles
	noFlash  bool                 // Options.NoFlash
	flashOut io.Writer            // Options.FlashOutput
	rxCap    time.Duration        // Options.RXWindowCap
	poll     time.Duration        // Options.FirmwarePoll
	log      *slog.Logger

	runCtx  context.Context // lives until Close: what runs beyond start-up
	cancel  context.CancelFunc
	closers []func() error
	wg      sync.WaitGroup
	errMu   sync.Mutex
	bgErrs  []error
}

// Board is one board of the rig as a suite sees it: a name, its tag driver and
// a phone ready to tap it. Nothing here says whether it is real or emulated;
// what else the bench can do to it is asked for with BoardCapability.
type Board struct {
	Name  string
	Tag   *nfc.ST25DV
	Phone *phone.Phone
	// Console is the board's AT console (rigs/at); at.None() when the board
	// has no serial port, so it is always safe to call.
	Console at.Console
	// SerialPath is the console's port path ("" without one).
	SerialPath string
	// Flash is what flashing the board left (nil: the rig file has no
	// flash part): image, tool, its output. suites/kit puts it in the
	// report.
	Flash *FlashReport
	// MailboxProtocol is how the board's firmware speaks over the FTM
	// mailbox (rig file mailbox_protocol): phone.MailboxTap2join or
	// phone.MailboxST25FTM. Phones made for the board take it from
	// PhoneOptions.
	MailboxProtocol string

	transport nfc.Transport
	parts     []any             // what offers board capabilities (capabilities.go)
	lacks     map[string]string // why the board lacks a capability none of parts offers, by name ("" for any other)
}

// Options tune Up beyond the rig file.
type Options struct {
	// Logger receives the rig's own log lines (never key material).
	Logger *slog.Logger
	// Phone options applied to every board's phone.
	Phone phone.Options
	// CapturePath, if set, receives every frame on the emulated air as JSON
	// lines (radio.CaptureRecord), e.g. $TAP2JOIN_OUT/frames.jsonl.
	CapturePath string
	// Spec names what the rig is up for (suites/kit: the spec's full text);
	// it goes into every captured frame, linking the frame to its spec in
	// the report.
	Spec string
	// DutyCycle is the emulated air's EU868 duty-cycle enforcement
	// (default off: accounted, not enforced).
	DutyCycle DutyCycleMode
	// NoConsoles gives emulated boards no AT console (no pty, no serial
	// reader; Board.Console is at.None()). For fleets: go.bug.st/serial
	// waits with select(2), which cannot watch a descriptor ≥ 1024, and each
	// console costs two.
	NoConsoles bool
	// DetachedConsoles gives emulated boards their pty but opens no console
	// on it (Board.Console is at.None(), Board.SerialPath is set): another
	// program — a lab rig, a terminal, a real-board driver — owns the port.
	// Two readers on one pty would split its lines between them.
	DetachedConsoles bool
	// NoFlash leaves real boards' flash parts alone (the image is on the
	// board already; Up still checks hardware.firmware.version, or the
	// image descriptor's version when the image file is there).
	NoFlash bool
	// FlashOutput receives a flashing tool's output as it runs (nil:
	// only the report, Board.Flash).
	FlashOutput io.Writer
	// RXWindowCap bounds the wall time an emulated board's receive window
	// waits for a downlink when no gateway ends it (default 2 s, see
	// stm32wl5.Config); fault specs without a gateway shorten it.
	RXWindowCap time.Duration
	// FirmwarePoll is how often an emulated board's firmware polls its
	// mailbox besides the tag's GPO interrupt (0: the firmware twin's own
	// default, 100 ms). The interrupt wakes it for every message; the poll
	// is a fallback that costs the host, not the device: a fleet of
	// thousands of boards sets it to seconds (suites/fleet).
	FirmwarePoll time.Duration
}

// DutyCycleMode is how the emulated air enforces the EU868 duty cycle.
type DutyCycleMode = radio.DutyCycleMode

// Duty-cycle modes of the emulated air (Options.DutyCycle).
const (
	DutyCycleOff    = radio.DutyCycleOff    // accounted, not enforced
	DutyCycleDelay  = radio.DutyCycleDelay  // a transmission waits for its sub-band (modelled time)
	DutyCycleRefuse = radio.DutyCycleRefuse // a transmission over the budget is refused
)

// Up brings the rig described by f up: the network server, the air and the
// gateways, the provisioning backend, then every board. ctx bounds start-up
// only; the rig runs until Close.
func Up(ctx context.Context, f *File, opts Options) (_ *Rig, err error) {
	// What the rig file asks (faults on a board that cannot have them) is
	// checked before the bench's parts: the answer must not depend on
	// which readers and ports this machine happens to have.
	r, lg, err := newRig(f, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	if err := realPartsMissing(f, opts.NoFlash); err != nil { // benchcheck.go
		return nil, err
	}

	var net *network
	if err := r.step("network server", func() (err error) {
		net, err = r.startNetwork(ctx, lg) // network.go
		return err
	}); err != nil {
		return nil, err
	}
	r.Network, r.NetworkInfo, r.ApplicationID, r.ProfileID = net.client, net.info, net.app, net.profile
	if err := r.setUpAir(opts); err != nil { // gateways.go
		return nil, err
	}
	if err := r.step("gateways", func() error { return r.setUpGateways(ctx, net, lg) }); err != nil {
		return nil, err
	}
	if err := r.step("provisioning backend", func() error { return r.setUpBackend(ctx, net, lg) }); err != nil { // provisioning.go
		return nil, err
	}
	if err := r.step("boards", func() error { return r.setUpBoards(ctx, opts, lg) }); err != nil {
		return nil, err
	}
	return r, nil
}

// step runs one bring-up step. One that took a second or more (containers
// starting, a lease wait, a real board's boot) says so on the console
// (reports/progress): a slow bring-up is never silent.
func (r *Rig) step(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	if d := time.Since(start); d >= time.Second {
		state := "up"
		if err != nil {
			state = "failed"
		}
		progress.Printf("rig %s: %s %s after %s", r.File.Name, what, state, d.Round(10*time.Millisecond))
	}
	return err
}

// newRig checks what the rig file asks of its boards (a suite may have asked
// for firmware faults since Load checked it) and makes the rig Up and
// UpInProcess fill, with its logger.
func newRig(f *File, opts Options) (*Rig, *slog.Logger, error) {
	mode, err := timing.ParseMode(f.Timing)
	if err != nil {
		return nil, nil, err
	}
	for _, bs := range f.Boards {
		if bs.Faults != (Faults{}) {
			if err := bs.FirmwareFaults(); err != nil {
				return nil, nil, fmt.Errorf("rigs: board %s: faults: %w", bs.Name, err)
			}
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = envLogger()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	return &Rig{File: f, Clock: timing.NewClock(mode), Region: provproto.RegionEU868, log: lg,
		noCons: opts.NoConsoles, detach: opts.DetachedConsoles, rxCap: opts.RXWindowCap, poll: opts.FirmwarePoll,
		noFlash: opts.NoFlash, flashOut: opts.FlashOutput,
		runCtx: runCtx, cancel: cancel}, lg, nil
}

// setUpBoards brings up every board of the rig file: emulated ones
// (emulatedboard.go) and real ones (realboard.go).
func (r *Rig) setUpBoards(ctx context.Context, opts Options, lg *slog.Logger) error {
	po := opts.Phone
	po.Wrapped = po.Wrapped || r.File.Provisioning.Wrapped
	for _, bs := range r.File.Boards {
		var b *Board
		var err error
		bpo := po
		bpo.MailboxProtocol = bs.MailboxProtocol
		if bs.Emulated {
			b, err = r.upEmulatedBoard(r.runCtx, bs, lg, bpo)
		} else {
			b, err = r.upRealBoard(ctx, bs, lg, bpo) // ctx bounds the lease wait
		}
		if err != nil {
			return fmt.Errorf("rigs: board %s: %w", bs.Name, err)
		}
		b.MailboxProtocol = bpo.MailboxProtocol
		r.Boards = append(r.Boards, b)
	}
	return nil
}

// backgroundError records an error of a part that stopped on its own.
func (r *Rig) backgroundError(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	r.bgErrs = append(r.bgErrs, err)
}

// BackgroundErrors returns errors of parts that stopped on their own.
func (r *Rig) BackgroundErrors() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return errors.Join(r.bgErrs...)
}

// Captured returns every LoRa frame that crossed the emulated air.
func (r *Rig) Captured() []radio.Frame {
	if r.air == nil {
		return nil
	}
	return r.air.Captured()
}

// Close stops everything Up started; it is safe to call twice.
func (r *Rig) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	r.closers = nil
	return errors.Join(errs...)
}

func expandEnv(s string) string {
	if v, ok := strings.CutPrefix(s, "$"); ok {
		return os.Getenv(v)
	}
	return s
}

// envLogger is the rig's logger when Options.Logger is nil: silent, unless
// TAP2JOIN_LOG names a level (debug, info, warn, error) — then text lines on
// stderr, every part of the rig included (the firmware twins' traces and
// the embedded ChirpStack at debug). For a failing spec: TAP2JOIN_LOG=debug.
//
// TAP2JOIN_LOG_FILE, if set, takes the lines instead of stderr (appended;
// t2jrun points it at the run folder's rig.log, which its key-leak check
// scans).
func envLogger() *slog.Logger {
	v := os.Getenv("TAP2JOIN_LOG")
	if v == "" {
		return slog.New(slog.DiscardHandler)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(v)); err != nil {
		lvl = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	if p := os.Getenv("TAP2JOIN_LOG_FILE"); p != "" {
		logFile.once.Do(func() {
			logFile.f, logFile.err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		})
		if logFile.err != nil {
			fmt.Fprintf(os.Stderr, "rigs: TAP2JOIN_LOG_FILE: %v; logging to stderr\n", logFile.err)
		} else {
			w = logFile.f
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// logFile is TAP2JOIN_LOG_FILE, opened once per process and left open for
// its life (every rig of the process appends to it).
var logFile struct {
	once sync.Once
	f    *os.File
	err  error
}

// PhoneOptions completes o for a phone talking to b: the board's mailbox
// protocol unless o names one. Specs building their own phone (a faulty
// tag, another backend) pass their options through it, so the same spec
// runs on a tap2join and an ST25FTM board.
func (b *Board) PhoneOptions(o phone.Options) phone.Options {
	if o.MailboxProtocol == "" {
		o.MailboxProtocol = b.MailboxProtocol
	}
	return o
}

// debugf logs a part's printf-style line at debug level, formatting it only
// when debug is on: the twins log every step, and a fleet of 10,000 boards
// formatted lines nobody would see.
func debugf(lg *slog.Logger, key string, value any, format string, a ...any) {
	if lg.Enabled(context.Background(), slog.LevelDebug) {
		lg.Debug(fmt.Sprintf(format, a...), key, value)
	}
}
