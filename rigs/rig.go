package rigs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/chirpstack"
	"github.com/tap2join/tap2join/emulators/gateway"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/containers"
	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/provisioning"
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

	air     *radio.Air
	closers []func() error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errMu   sync.Mutex
	bgErrs  []error
	pcsc    *pcscState // pcscd and vpcd slots of emulated PC/SC boards
	noCons  bool       // Options.NoConsoles
	detach  bool       // Options.DetachedConsoles
	log     *slog.Logger
	rxCap   time.Duration

	// Fault injection (faults.go): the embedded network server and the
	// emulated gateways, nil/empty for other kinds.
	runCtx   context.Context
	ns       *chirpstack.Server
	gateways []*rigGateway
}

// NetworkInfo says where the network server is (printed by the standalone
// emulator, used by external tools).
type NetworkInfo struct {
	API   string `json:"api"`
	Token string `json:"token"`
	MQTT  string `json:"mqtt"`
}

// Board is one board of the rig as a suite sees it: a name, its tag driver and
// a phone ready to tap it. Nothing here says whether it is real or emulated.
type Board struct {
	Name  string
	Tag   *nfc.ST25DV
	Phone *phone.Phone
	// Console is the board's AT console (rigs/at); at.None() when the
	// board has no serial port, so it is always safe to call.
	Console at.Console
	// SerialPath is the console's port path ("" without one).
	SerialPath string

	transport nfc.Transport
	events    <-chan stm32wl5.Event
	twin      *twin // the emulated parts (faults.go); nil for a real board
}

// Options tune Up beyond the rig file.
type Options struct {
	// Logger receives the rig's own log lines (never key material).
	Logger *slog.Logger
	// Phone options applied to every board's phone.
	Phone phone.Options
	// CapturePath, if set, receives every frame on the emulated air as JSON
	// lines (radio.CaptureRecord), e.g. out/emulate/air.jsonl.
	CapturePath string
	// DutyCycle is the emulated air's EU868 duty-cycle enforcement
	// (default off: accounted, not enforced).
	DutyCycle radio.DutyCycleMode
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
	// RXWindowCap bounds the wall time an emulated board's receive window
	// waits for a downlink when no gateway ends it (default 2 s, see
	// stm32wl5.Config); fault specs without a gateway shorten it.
	RXWindowCap time.Duration
}

// Up brings the rig described by f up. ctx bounds start-up only; the rig runs
// until Close.
func Up(ctx context.Context, f *File, opts Options) (_ *Rig, err error) {
	mode, err := timing.ParseMode(f.Timing)
	if err != nil {
		return nil, err
	}
	lg := opts.Logger
	if lg == nil {
		lg = envLogger()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r := &Rig{File: f, Clock: timing.NewClock(mode), cancel: cancel, Region: provproto.RegionEU868, noCons: opts.NoConsoles,
		rxCap: opts.RXWindowCap, runCtx: runCtx, detach: opts.DetachedConsoles, log: lg}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()

	// Network server.
	switch f.Network.Kind {
	case "embedded":
		cfg := chirpstack.Config{Region: f.Network.Region}
		if mode == timing.Instant {
			// ChirpStack waits network.deduplication_delay (200 ms) for
			// copies of an uplink from other gateways. Emulated gateways
			// publish within microseconds of each other, so instant timing
			// keeps the behaviour with a window sized for loopback.
			cfg.DeduplicationDelay = 5 * time.Millisecond
		}
		cfg.Logf = func(format string, a ...any) {
			lg.Debug(fmt.Sprintf(format, a...), "part", "chirpstack")
		}
		// An uplink the server will not answer ends the device's receive
		// windows at once, through the gateway that forwarded it, instead of
		// after their wall-clock cap (RXWindowCap): the modelled time is the
		// same, the wall time of every unanswered uplink drops from seconds
		// to milliseconds.
		cfg.Unanswered = r.noReply
		cs, err := chirpstack.Start(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("rigs: embedded network server: %w", err)
		}
		r.closers = append(r.closers, cs.Close)
		r.ns = cs
		r.NetworkInfo = NetworkInfo{API: cs.APIAddr(), Token: cs.APIToken(), MQTT: cs.MQTTURL()}
	case "containers":
		copts := []containers.Option{
			containers.WithRegion(f.Network.Region),
			containers.WithLogf(func(format string, a ...any) {
				lg.Debug(fmt.Sprintf(format, a...), "part", "containers")
			}),
		}
		if f.Network.ImageSet == "upstream" {
			copts = append(copts, containers.WithImageSet(containers.ImageSetUpstream))
			for _, g := range f.Gateways {
				if !g.Emulated { // its packet forwarder sends to <runner>:<port>
					copts = append(copts, containers.WithGatewayUDPPort(f.Network.GatewayUDPPort))
					break
				}
			}
		}
		if mode == timing.Instant {
			copts = append(copts, containers.WithDeduplicationDelay(5*time.Millisecond)) // as embedded
		}
		st, err := containers.Run(ctx, copts...)
		if err != nil {
			return nil, fmt.Errorf("rigs: network server in containers: %w", err)
		}
		r.closers = append(r.closers, func() error {
			tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return st.Terminate(tctx)
		})
		r.NetworkInfo = NetworkInfo{API: st.APIAddr, Token: st.Token, MQTT: st.MQTTURL}
	case "external":
		r.NetworkInfo = NetworkInfo{API: f.Network.API, Token: expandEnv(f.Network.Token), MQTT: f.Network.MQTT}
	default:
		return nil, fmt.Errorf("rigs: network kind %q is not available yet", f.Network.Kind)
	}
	client, tenant, app, profile, err := r.dialNetwork(ctx, r.NetworkInfo, lns.Profile{DeviceStatusReqInterval: f.Network.DeviceStatusReqInterval})
	if err != nil {
		return nil, fmt.Errorf("rigs: %w", err)
	}
	r.Network, r.ApplicationID, r.ProfileID = client, app, profile

	// The air and the gateways.
	r.air = radio.NewAir(r.Clock)
	if err := r.setupAir(opts); err != nil {
		return nil, err
	}
	for _, g := range f.Gateways {
		if err := client.EnsureGateway(ctx, tenant, strings.ToLower(g.ID)); err != nil {
			return nil, fmt.Errorf("rigs: %w", err)
		}
		if !g.Emulated {
			continue // a real gateway forwards to the network server itself
		}
		var id [8]byte
		_, _ = hex.Decode(id[:], []byte(g.ID)) // validated by Parse
		gcfg := gateway.Config{ID: id, MQTTURL: r.NetworkInfo.MQTT, Region: f.Network.Region, Air: r.air,
			ReportsNoReply: r.ns != nil, // the embedded server's Unanswered hook reaches it (noReply)
			Logf:           func(format string, a ...any) { lg.Debug(fmt.Sprintf(format, a...), "part", "gateway") }}
		gwy, err := gateway.Start(runCtx, gcfg) // runs until Close, not until the start-up ctx ends
		if err != nil {
			return nil, fmt.Errorf("rigs: gateway %s: %w", g.ID, err)
		}
		rg := &rigGateway{cfg: gcfg, gw: gwy}
		r.gateways = append(r.gateways, rg)
		r.closers = append(r.closers, rg.close)
	}

	// The provisioning backend.
	var joinEUI provproto.EUI64
	_, _ = hex.Decode(joinEUI[:], []byte(f.Provisioning.JoinEUI))
	switch f.Provisioning.Kind {
	case "embedded":
		be, c, err := r.startBackend(ctx, client, r.ApplicationID, r.ProfileID, r.NetworkInfo.MQTT, joinEUI, lg)
		if err != nil {
			return nil, fmt.Errorf("rigs: provisioning backend: %w", err)
		}
		r.Backend = c
		if err := shareBackendConnection(ctx, r.Backend); err != nil { // backend.go
			return nil, err
		}
		r.BackendCA = be.CA().PEM()
	case "external":
		r.Backend = provisioning.NewClient(f.Provisioning.URL, expandEnv(f.Provisioning.Token), nil)
	}

	// Boards.
	phoneOpts := opts.Phone
	phoneOpts.Wrapped = phoneOpts.Wrapped || f.Provisioning.Wrapped
	for _, bf := range f.Boards {
		var b *Board
		var err error
		if bf.Emulated {
			b, err = r.upBoard(runCtx, bf, lg, phoneOpts)
		} else {
			b, err = r.upRealBoard(ctx, bf, lg, phoneOpts) // real.go; ctx bounds the lease wait
		}
		if err != nil {
			return nil, fmt.Errorf("rigs: board %s: %w", bf.Name, err)
		}
		r.Boards = append(r.Boards, b)
	}
	return r, nil
}

// upBoard builds an emulated board: the tag twin on an I2C bus with the MCU
// twin, the MCU on the air, and the phone's driver on the NFC transport.
func (r *Rig) upBoard(ctx context.Context, bs BoardSpec, lg *slog.Logger, po phone.Options) (*Board, error) {
	var uid [8]byte
	if _, err := hex.Decode(uid[:], []byte(bs.UniqueID)); err != nil {
		return nil, fmt.Errorf("unique_id: %w", err)
	}
	// Tag UID: E0 02 51 (ISO 15693 + ST + ST25DV64KC-IE, DS13519 T243) and a
	// 40-bit serial taken from the board's unique id, so it is stable per board.
	tagUID := [8]byte{0xE0, 0x02, 0x51, uid[3], uid[4], uid[5], uid[6], uid[7]}
	tag := st25dv.New(st25dv.Config{UID: tagUID, Clock: r.Clock})
	tag.SetVCC(true)
	wires := &bus.Bus{}
	wires.Attach(tag.I2C())
	mcu, err := stm32wl5.New(stm32wl5.Config{
		UniqueID:    uid,
		I2C:         wires,
		GPO:         tag.GPO(),
		Air:         r.air,
		Clock:       r.Clock,
		Faults:      stm32wl5.Faults{StoreCorruptKey: bs.Faults.StoreCorruptKey, NVMKillAtStep: bs.Faults.NVMKillAtStep},
		KeyReadBack: bs.Faults.KeyReadBack,
		NVMPath:     bs.NVM,
		RXWindowCap: r.rxCap,
		// The firmware offers wrapped-key mode when the rig asks for it.
		Wrapped: po.Wrapped,
		Logf: func(format string, a ...any) {
			lg.Debug(fmt.Sprintf(format, a...), "board", bs.Name)
		},
	})
	if err != nil {
		return nil, err
	}
	var sp *stm32wl5.SerialPort
	if !r.noCons {
		if sp, err = r.startSerial(mcu, bs); err != nil {
			return nil, err
		}
	}
	// Wait for the firmware to boot (NDEF written, mailbox enabled) before a
	// phone may tap: a real operator also powers the board first.
	tw := &twin{name: bs.Name, tag: tag, mcu: mcu}
	if err := r.startMCU(ctx, tw); err != nil {
		return nil, err
	}
	tr, err := r.nfcTransport(ctx, bs, tag)
	if err != nil {
		return nil, err
	}
	drv := nfc.NewST25DV(tr)
	b := &Board{Name: bs.Name, Tag: drv, transport: tr, Console: at.None(), events: tw.events, twin: tw}
	if sp != nil {
		b.SerialPath = sp.Path()
		if !r.detach {
			if b.Console, err = r.openConsole(ctx, at.Config{Port: sp.Path()}); err != nil {
				return nil, err
			}
		}
	}
	b.Phone = phone.New(phone.NFCTag(drv), backendAdapter{r.Backend}, po)
	r.closers = append(r.closers, tr.Close)
	return b, nil
}

func waitBooted(ctx context.Context, events <-chan stm32wl5.Event, failed <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		select {
		case ev := <-events:
			// Ready, not Booted: the tag must hold the NDEF identity and
			// have its mailbox enabled before a phone taps.
			if ev.Kind == stm32wl5.Ready {
				return nil
			}
		case err := <-failed:
			return fmt.Errorf("firmware stopped during boot: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("firmware did not boot: %w", ctx.Err())
		}
	}
}

// backendAdapter gives the phone the backend client with phone's own types.
type backendAdapter struct{ c *provisioning.Client }

func (a backendAdapter) Register(ctx context.Context, dev, join provproto.EUI64, loc *phone.Location) (phone.Issued, error) {
	var l *provisioning.Location
	if loc != nil {
		l = &provisioning.Location{Latitude: loc.Latitude, Longitude: loc.Longitude, Altitude: loc.Altitude}
	}
	iss, err := a.c.Register(ctx, dev, join, l)
	if err != nil {
		return phone.Issued{}, err
	}
	rememberIssued(iss.Keys)
	return phone.Issued{JoinEUI: iss.JoinEUI, Keys: iss.Keys}, nil
}

// RegisterWrapped makes the phone a phone.WrappingBackend: the backend
// wraps the key to the device and the phone forwards the frame.
func (a backendAdapter) RegisterWrapped(ctx context.Context, w phone.WrapRequest) (phone.Issued, error) {
	var l *provisioning.Location
	if w.Location != nil {
		l = &provisioning.Location{Latitude: w.Location.Latitude, Longitude: w.Location.Longitude, Altitude: w.Location.Altitude}
	}
	iss, err := a.c.RegisterWrapped(ctx, provisioning.WrapRequest{
		DevEUI: w.DevEUI, JoinEUI: w.JoinEUI, Location: l, PublicKey: w.PublicKey,
		Nonce: w.Nonce, Region: w.Region, Reprovision: w.Reprovision,
	})
	if err != nil {
		return phone.Issued{}, err
	}
	return phone.Issued{JoinEUI: iss.JoinEUI, KCV: iss.KCV, Provision: iss.Provision}, nil
}

// Joins adapts the network server client to the phone's JoinWaiter.
func (r *Rig) Joins() phone.JoinWaiter { return joinAdapter{r.Network} }

type joinAdapter struct{ ns lns.NetworkServer }

func (j joinAdapter) AwaitJoin(ctx context.Context, dev provproto.EUI64) (string, error) {
	ev, err := j.ns.AwaitJoin(ctx, lorawan.EUI64(dev))
	if err != nil {
		return "", err
	}
	return ev.DevAddr.String(), nil
}

func (j joinAdapter) AwaitUplink(ctx context.Context, dev provproto.EUI64) (string, error) {
	ev, err := j.ns.AwaitUplink(ctx, lorawan.EUI64(dev))
	if err != nil {
		return "", err
	}
	return ev.DevAddr.String(), nil
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

// dialNetwork connects the network-server client (closed at Close) and
// finds or creates the rig's tenant, application and device profile
// (p.MACVersion, Region and SupportsOTAA come from the rig file), watching
// the application's integration events.
func (r *Rig) dialNetwork(ctx context.Context, info NetworkInfo, p lns.Profile) (client *lns.Client, tenant, app, profile string, err error) {
	f := r.File
	client, err = lns.Dial(ctx, lns.Config{API: info.API, Token: info.Token, MQTT: info.MQTT, Region: f.Network.Region})
	if err != nil {
		return nil, "", "", "", fmt.Errorf("network server client: %w", err)
	}
	r.closers = append(r.closers, client.Close)
	if tenant, err = client.EnsureTenant(ctx, f.Network.Tenant); err != nil {
		return nil, "", "", "", err
	}
	if app, err = client.EnsureApplication(ctx, tenant, f.Network.Application); err != nil {
		return nil, "", "", "", err
	}
	p.MACVersion, p.Region, p.SupportsOTAA = f.Network.MACVersion, f.Network.Region, true
	if profile, err = client.EnsureDeviceProfile(ctx, tenant, "tap2join "+f.Network.MACVersion, p); err != nil {
		return nil, "", "", "", err
	}
	if err := client.Watch(ctx, app); err != nil {
		return nil, "", "", "", err
	}
	return client, tenant, app, profile, nil
}

// startBackend starts an embedded provisioning backend (closed at Close)
// registering devices with ns, and returns it with the phone's client.
func (r *Rig) startBackend(ctx context.Context, ns lns.NetworkServer, app, profile, mqtt string, joinEUI provproto.EUI64, lg *slog.Logger) (*provisioning.Server, *provisioning.Client, error) {
	be, err := provisioning.Start(ctx, provisioning.Config{
		Network:        &provisioning.LNSNetwork{NS: ns, ApplicationID: app, ProfileID: profile, MACVersion: r.File.Network.MACVersion},
		DefaultJoinEUI: joinEUI,
		Logger:         lg.With("part", "provisioning"),
		// A bench registers devices back to back (benchmarks: hundreds
		// per second); the per-token limit is the backend's own concern.
		RateLimit: &provisioning.RateLimit{},
		// Notifications on the network server's broker; joins come from
		// its integration events there.
		MQTT: mqtt, WatchJoins: true,
		// Wrapped mode keeps keys off the phone; the rig still learns
		// them so runs can prove their logs and reports hold none.
		OnIssue: func(_ provproto.EUI64, k provproto.Keys) { rememberIssued(k) },
	})
	if err != nil {
		return nil, nil, err
	}
	r.closers = append(r.closers, be.Close)
	return be, provisioning.NewClient(be.URL(), be.Token(), be.CA().Pool()), nil
}

// envLogger is the rig's logger when Options.Logger is nil: silent, unless
// TAP2JOIN_LOG names a level (debug, info, warn, error) — then text lines on
// stderr, every part of the rig included (the firmware twins' traces and
// the embedded ChirpStack at debug). For a failing spec: TAP2JOIN_LOG=debug.
func envLogger() *slog.Logger {
	v := os.Getenv("TAP2JOIN_LOG")
	if v == "" {
		return slog.New(slog.DiscardHandler)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(v)); err != nil {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
