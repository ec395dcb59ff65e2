// Package stm32wl5 is the firmware twin of the tap2join STM32WL5 board: an
// STM32WL55 running LoRaWAN 1.0.4 (modelled on STM32CubeWL v1.3.1's LoRaMac
// middleware) plus the NFC provisioning application that talks to an
// ST25DV64KC dynamic tag over I2C and its GPO line.
//
// What the twin does, in the order real firmware would:
//
//  1. Boot: load the NVM context (two-slot flash model, see nvm.go); on first
//     boot of a wrapped-key capable board generate its X25519 key pair.
//  2. Configure the tag over I2C (tag.go): I2C password, FTM.MB_MODE, GPO1,
//     close the session, write the NDEF identity (SPEC.md §6), set MB_EN.
//  3. Serve the mailbox: wake on a GPO pulse (or poll MB_CTRL_Dyn), read the
//     phone's request, answer with provproto (provision.go).
//  4. After a PROVISION: store the key atomically, acknowledge with its KCV,
//     refresh the NDEF state, and join by OTAA on the radio.Air (join.go).
//  5. Serve ST's LoRaWAN_AT_Slave command set on a serial console (a pty,
//     serial.go; the interpreter is atshell.go): identity, keys, join, send,
//     settings, ATZ/AT+RFS resets, AT+CS, and +EVT: events, including the
//     tap2join NFC events.
//
// Keys never leave the twin except inside LoRaWAN cryptography: logs,
// events and errors carry key check values (provproto.CheckValue) only.
package stm32wl5

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/brocaar/lorawan"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// Faults are fault-injection switches for negative tests.
type Faults struct {
	// StoreCorruptKey models a firmware bug: the PROVISION_ACK carries the
	// KCV of the key received, but a corrupted key is stored, so the join
	// must fail (the network rejects the JoinRequest MIC).
	StoreCorruptKey bool
	// LeakKeyToLog models a firmware (or twin) bug: the key a PROVISION
	// stores is written to the debug log in hex — what the run's key-leak
	// check (reports/keyscan) must catch.
	LeakKeyToLog bool
	// NVMKillAtStep, if > 0, cuts the power during the first NVM write after
	// that many flash steps (see SaveSteps). Run then returns ErrPowerLoss;
	// create a new Board on the same NVMPath to "power it up" again.
	NVMKillAtStep int
}

// Config configures a board.
type Config struct {
	// MailboxProtocol is how the firmware speaks over the mailbox:
	// "tap2join" ("" too: one frame per message, SPEC.md §1) or "st25ftm"
	// (frames inside ST's Fast Transfer Memory commands, SPEC.md §8).
	MailboxProtocol string
	// UniqueID is the 64-bit value STM32CubeWL's GetUniqueId (Core/Src/
	// sys_app.c) builds from the chip: ST company ID (3 bytes), device ID
	// (1 byte), UDN (4 bytes, MSB first). With LORAWAN_DEVICE_EUI all zero
	// (se-identity.h default) the firmware uses it unchanged as DevEUI, MSB
	// first — so DevEUI() == UniqueID. Use UniqueIDFrom to build one.
	UniqueID [8]byte
	I2C      bus.I2C   // bus to the tag
	GPO      *bus.Line // tag's GPO line (nil: poll only)
	Air      *radio.Air
	Clock    *timing.Clock
	NVMPath  string  // "" = in memory; else a file that survives process restarts
	Firmware [3]byte // default 1.3.1
	Wrapped  bool    // supports wrapped-key mode (SPEC.md §3.2)
	Faults   Faults
	Logf     func(string, ...any)

	// I2CPassword is the tag's I2C password (factory: all zeros, DS Table 58).
	I2CPassword [8]byte
	// AcceptFirstJoinNonceZero relaxes the LoRaMac-node 1.0.x JoinNonce
	// check (USE_10X_JOIN_NONCE_COUNTER_CHECK: JoinNonce must be strictly
	// greater than the stored one, stored starts at 0) so that ChirpStack's
	// first JoinAccept (JoinNonce 0) is accepted. Default false = faithful:
	// the first JoinAccept is dropped and the second join attempt succeeds.
	AcceptFirstJoinNonceZero bool
	// KeyReadBack lets AT+APPKEY=?, AT+NWKKEY=?, AT+APPSKEY=? and
	// AT+NWKSKEY=? print keys and the boot banner dump them, as ST's default
	// build does (KEY_EXTRACTABLE 1 in STM32CubeWL LoRaWAN_AT_Slave
	// lorawan_conf.h; banner dump in soft-se.c).
	// Off for the provisioning firmware: such a read answers AT_ERROR, which
	// is what lora_at.c AT_AppKey_get returns when LmHandlerGetKey fails (a
	// KEY_EXTRACTABLE 0 build; see atshell.go).
	KeyReadBack bool
	// StockContextPersistence models ST's AT slave, which writes the MAC
	// context (DevNonce, JoinNonce, session, frame counters) to flash only on
	// AT+CS (lora_at.c AT_store_context → LmHandler.c LmHandlerNvmDataStore,
	// its only caller in the AT app), so a reset without AT+CS makes
	// the device reuse DevNonces. Default false = the tap2join firmware,
	// which stores the DevNonce before each JoinRequest and the frame counter
	// before each uplink. NFC provisioning always stores its key (SPEC §5.2).
	StockContextPersistence bool
	// DataRate is the EU868 uplink data rate for joins and uplinks:
	// DR0 (SF12BW125) … DR5 (SF7BW125). Default DR0, CubeWL's
	// LORAWAN_DEFAULT_DATA_RATE (lora_app.h).
	DataRate int
	// JoinAttempts is how many JoinRequests one join procedure sends before
	// giving up (default 4).
	JoinAttempts int
	// JoinBackoff is the modelled wait between join attempts (default 10 s;
	// a simplification of the LoRaWAN join back-off / duty-cycle rules, which
	// are not enforced by this twin).
	JoinBackoff time.Duration
	// BatteryMV is the supply voltage AT+BAT reports and DevStatusAns
	// scales to a battery level (default 3300 mV, a NUCLEO on USB: 254).
	BatteryMV int
	// RXWindowCap bounds, in wall-clock time, how long an RX window waits for
	// a downlink (in Instant timing nothing else ends it). Default 2 s.
	RXWindowCap time.Duration
	// PollInterval is the wall-clock MB_CTRL_Dyn polling period used as a
	// fallback to the GPO interrupt (default 100 ms; 10 ms without GPO).
	PollInterval time.Duration
	// NDEFRefreshAfter: after an answer, the NDEF state is rewritten once the
	// phone has read the answer (RF_GET_MSG), or after this wall-clock time
	// (default 2 s). User EEPROM cannot be written while MB_EN=1 (DS §5.1.2).
	NDEFRefreshAfter time.Duration
}

// UniqueIDFrom builds the GetUniqueId value: company ID, device ID, UDN.
func UniqueIDFrom(companyID [3]byte, deviceID byte, udn uint32) [8]byte {
	return [8]byte{companyID[0], companyID[1], companyID[2], deviceID,
		byte(udn >> 24), byte(udn >> 16), byte(udn >> 8), byte(udn)}
}

// EventKind classifies board events.
type EventKind int

// Event kinds.
const (
	Booted EventKind = iota + 1
	Provisioned
	ProvisionRejected
	JoinRequest
	JoinAccepted
	JoinAcceptDropped
	JoinFailed
	Uplink
	Downlink
	// Reset: the MCU was reset (ATZ, AT+RFS); a Booted event follows.
	Reset
	// Ready: boot is complete — tag configured, NDEF identity written,
	// mailbox enabled — so a phone may tap. Booted comes first, as soon as
	// the firmware starts (its banner), before the tag is set up.
	Ready
)

func (k EventKind) String() string {
	switch k {
	case Booted:
		return "Booted"
	case Provisioned:
		return "Provisioned"
	case ProvisionRejected:
		return "ProvisionRejected"
	case JoinRequest:
		return "JoinRequest"
	case JoinAccepted:
		return "JoinAccepted"
	case JoinAcceptDropped:
		return "JoinAcceptDropped"
	case JoinFailed:
		return "JoinFailed"
	case Uplink:
		return "Uplink"
	case Downlink:
		return "Downlink"
	case Reset:
		return "Reset"
	case Ready:
		return "Ready"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something the board did. Detail never contains key material.
type Event struct {
	Kind   EventKind
	Detail string
	Time   time.Time
}

// MCU is one emulated board.
type MCU struct {
	cfg    Config
	devEUI [8]byte
	tag    *tagDriver
	events chan Event

	mu        sync.Mutex
	nvm       *nvm
	rec       record
	priv      *ecdh.PrivateKey
	nonce     uint32
	nonceOK   bool
	joining   bool
	log       []string
	ndefDirty bool
	answerAt  time.Time     // when the last mailbox answer was posted
	rxDelay   time.Duration // RX1 delay of the current session (JoinAccept RxDelay)

	wake   chan struct{}
	ftm    ftmState // MailboxProtocol st25ftm (ftm.go)
	joinWG sync.WaitGroup
	dead   error // set when a power loss killed the board

	// MCU state the AT shell sees (atshell.go).
	restored bool                 // a valid context was read from NVM at boot
	booted   bool                 // boot finished; the UART accepts commands
	sending  bool                 // an uplink and its receive windows are running
	ctxDirty bool                 // RAM context differs from NVM (AT+CS stores it)
	runCtx   context.Context      // context of the current boot
	ram      ramSettings          // RAM-only settings, reset by every boot
	macOut   []lorawan.MACCommand // MAC answers/requests for the next uplink (maccommand.go)
	// macSticky are answers repeated in every uplink until a downlink is
	// heard (RXTimingSetupAns: LoRaWAN 1.0.4 §5.7; LoRaMac-node sticky
	// MAC commands).
	macSticky []lorawan.MACCommand
	// macConfirm are indications repeated in every uplink until the network
	// confirms them (RekeyInd until RekeyConf: LoRaWAN 1.1 §5.10;
	// LoRaMac-node's sticky commands that need a confirmation).
	macConfirm []lorawan.MACCommand
	// adrAckCnt is ADR_ACK_CNT: uplinks since the last downlink heard in
	// RX1/RX2, counted while ADR is on (LoRaMac-node AdrAckCounter;
	// LoRaWAN 1.0.4 §4.3.1.1). Kept in RAM: UNCONFIRMED whether ST's AT
	// slave restores it from its NVM context after a reset.
	adrAckCnt uint32
	resetReq  chan resetKind
	fw        fwRx     // firmware transfer (firmware.go)
	con       *console // serial console output; nil without a serial port
	at        atLine   // the shell's line buffer (used by the serial reader only)
}

const (
	logLines = 128
	// eventQueue is how many events wait for a reader. Nobody reads them
	// while a fleet's boards work (the rig waits for the boot event only),
	// and a fleet has 10,000 boards: 1,024 per board were 48 KB each, a
	// third of the fleet's heap. A full queue drops its oldest event, so
	// the newest — Ready, which the rig waits for after a power cycle — is
	// always there.
	eventQueue = 16
)

// New creates a board and loads its NVM; nothing runs until Run.
func New(cfg Config) (*MCU, error) {
	if cfg.I2C == nil {
		return nil, errors.New("stm32wl5: Config.I2C is nil")
	}
	if cfg.Air == nil {
		return nil, errors.New("stm32wl5: Config.Air is nil")
	}
	if cfg.Firmware == ([3]byte{}) {
		cfg.Firmware = [3]byte{1, 3, 1}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.DataRate < 0 || cfg.DataRate > 5 {
		return nil, fmt.Errorf("stm32wl5: data rate DR%d not a LoRa 125 kHz EU868 rate", cfg.DataRate)
	}
	if cfg.JoinAttempts == 0 {
		cfg.JoinAttempts = 4
	}
	if cfg.JoinBackoff == 0 {
		cfg.JoinBackoff = 10 * time.Second
	}
	if cfg.BatteryMV == 0 {
		cfg.BatteryMV = 3300
	}
	if cfg.RXWindowCap == 0 {
		cfg.RXWindowCap = 2 * time.Second
	}
	if cfg.PollInterval == 0 && cfg.MailboxProtocol == "st25ftm" {
		// ST's glue retries a failed I2C access every 40 ms.
		cfg.PollInterval = 40 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
		if cfg.GPO == nil {
			cfg.PollInterval = 10 * time.Millisecond
		}
	}
	if cfg.NDEFRefreshAfter == 0 {
		cfg.NDEFRefreshAfter = 2 * time.Second
	}
	n, rec, found, err := openNVM(cfg.NVMPath)
	if err != nil {
		return nil, err
	}
	n.killAt = cfg.Faults.NVMKillAtStep
	b := &MCU{
		cfg:    cfg,
		devEUI: cfg.UniqueID,
		tag:    &tagDriver{i2c: cfg.I2C, clock: cfg.Clock, ackPollLimit: 100 * time.Millisecond},
		events: make(chan Event, eventQueue),
		nvm:    n,
		rec:    rec,
		wake:   make(chan struct{}, 1),

		restored: found,
		resetReq: make(chan resetKind, 1),
	}
	b.devEUI = b.effectiveDevEUI(rec)
	return b, nil
}

// DevEUI returns the board's DevEUI, MSB first: the chip's unique id unless
// AT+DEUI set another one.
func (b *MCU) DevEUI() [8]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devEUI
}

// effectiveDevEUI: a zero DevEUI in the context means "derive from the MCU"
// (STM32CubeWL LoRaWAN_AT_Slave se-identity.h LORAWAN_DEVICE_EUI all zero →
// Core/Src/sys_app.c GetUniqueId).
func (b *MCU) effectiveDevEUI(r record) [8]byte {
	if r.devEUI != ([8]byte{}) {
		return r.devEUI
	}
	return b.cfg.UniqueID
}

// Events returns the board's event stream (buffered: when 16 are unread, the
// oldest is dropped, and logged, for each new one).
func (b *MCU) Events() <-chan Event { return b.events }

// Log returns the device log ring, oldest first — what GET_LOG reads out.
func (b *MCU) Log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.log...)
}

// logf appends to the log ring. Callers must never pass key material.
func (b *MCU) logf(format string, a ...any) {
	line := fmt.Sprintf("[%10.3f] ", b.cfg.Clock.Modeled().Seconds()) + fmt.Sprintf(format, a...)
	b.mu.Lock()
	b.log = append(b.log, line)
	if len(b.log) > logLines {
		b.log = b.log[len(b.log)-logLines:]
	}
	b.mu.Unlock()
	b.cfg.Logf("stm32wl5 %X: %s", b.cfg.UniqueID, line)
}

func (b *MCU) emit(k EventKind, format string, a ...any) {
	e := Event{Kind: k, Detail: fmt.Sprintf(format, a...), Time: time.Now()}
	b.logf("%s %s", k, e.Detail)
	for {
		select {
		case b.events <- e:
			return
		default:
		}
		select {
		case old := <-b.events:
			b.cfg.Logf("stm32wl5 %X: event queue full, dropped the oldest (%s)", b.cfg.UniqueID, old.Kind)
		default:
		}
	}
}

// save persists a modified copy of the record; kind says what changed (a
// cut aimed at it, CutPowerInNVMWrite). Callers hold b.mu.
func (b *MCU) saveLocked(kind NVMWrite, r record) error {
	stored, err := b.nvm.save(kind, r)
	if err != nil {
		if errors.Is(err, ErrPowerLoss) {
			b.dead = ErrPowerLoss
		}
		return err
	}
	b.rec = stored
	b.ctxDirty = false
	return nil
}

// storeCountersLocked persists a record change that only the MAC makes
// (DevNonce, JoinNonce, session, frame counter): at once in the tap2join
// firmware, in RAM until AT+CS with StockContextPersistence. Callers hold b.mu.
func (b *MCU) storeCountersLocked(kind NVMWrite, r record) error {
	if b.cfg.StockContextPersistence {
		b.rec = r
		b.ctxDirty = true
		return nil
	}
	return b.saveLocked(kind, r)
}

// CutPowerInNVMWrite arms a power cut during the next NVM write of kind
// (NVMWriteAny: whichever comes first) after step of its SaveSteps flash
// steps (step ≥ SaveSteps: right after the last, before the firmware learns
// the write succeeded). Run then returns ErrPowerLoss; a new Run (power
// back) boots from what the flash holds. One cut per call.
func (b *MCU) CutPowerInNVMWrite(kind NVMWrite, step int) error {
	if kind != NVMWriteAny && !slices.Contains(NVMWrites, kind) {
		return fmt.Errorf("stm32wl5: no NVM write %q (want one of %v)", kind, NVMWrites)
	}
	if step < 1 || step > SaveSteps {
		return fmt.Errorf("stm32wl5: NVM cut at step %d: want 1..%d", step, SaveSteps)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nvm.killAt, b.nvm.killOn = step, kind
	return nil
}

func (b *MCU) isDead() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dead
}

// resetKind says what an MCU reset does to the NVM.
type resetKind int

const (
	resetMCU     resetKind = iota + 1 // ATZ: NVIC_SystemReset
	resetFactory                      // AT+RFS: erase the context page, then reset
	resetPowerOn                      // the supply (back) on: Run starts
)

// errReset ends one boot of runOnce when the MCU resets.
var errReset = errors.New("stm32wl5: MCU reset")

// Run boots the board and serves the tag mailbox until ctx ends (nil) or
// the board dies (ErrPowerLoss, or a boot failure). An MCU reset (ATZ,
// AT+RFS) reboots the firmware within Run: the RAM state is lost, the
// context is read again from NVM.
func (b *MCU) Run(ctx context.Context) error {
	// A power-on: the firmware boots from what the flash holds (the supply
	// came back after PowerOff, or after a cut in an NVM write — a record
	// completed before the cut is read, as a real boot reads it). RAM state
	// is reset by reload; a firmware image being staged and the log ring
	// (b.fw, b.log) are kept, a simplification.
	b.mu.Lock()
	b.nvm.dead, b.dead = false, nil
	b.nvm.rescan()
	b.mu.Unlock()
	if err := b.reload(resetPowerOn); err != nil {
		return err
	}
	for {
		kind, err := b.runOnce(ctx)
		if !errors.Is(err, errReset) {
			return err
		}
		if err := b.reload(kind); err != nil {
			return err
		}
	}
}

// reload is the RAM side of a reset: everything not in NVM is lost.
func (b *MCU) reload(kind resetKind) error {
	b.mu.Lock()
	if kind == resetFactory {
		if err := b.nvm.erase(); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("stm32wl5: factory reset: %w", err)
		}
	}
	rec, found := b.nvm.current()
	b.rec, b.restored = rec, found
	b.devEUI = b.effectiveDevEUI(rec)
	b.priv, b.nonceOK, b.joining, b.sending, b.ctxDirty = nil, false, false, false, false
	b.rxDelay, b.ndefDirty = 0, false
	b.mu.Unlock()
	if kind == resetPowerOn {
		return nil // a boot, not a reset: no Reset event, the console is fresh
	}
	if b.con != nil {
		b.con.reset()
	}
	b.emit(Reset, "%s", map[resetKind]string{resetMCU: "ATZ", resetFactory: "AT+RFS (context erased)"}[kind])
	return nil
}

// requestReset asks the running firmware to reset (from the AT shell).
func (b *MCU) requestReset(k resetKind) {
	b.mu.Lock()
	b.booted = false // the UART is dead until the next boot's banner
	b.mu.Unlock()
	select {
	case b.resetReq <- k:
	default:
	}
}

func (b *MCU) runOnce(parent context.Context) (resetKind, error) {
	ctx, cancel := context.WithCancel(parent)
	defer func() {
		cancel()
		b.joinWG.Wait()
		b.mu.Lock()
		b.booted = false
		b.mu.Unlock()
	}()
	b.mu.Lock()
	b.runCtx = ctx
	b.ram = defaultRAMSettings(b.cfg, b.rec)
	b.macOut, b.macSticky, b.macConfirm, b.adrAckCnt = nil, nil, nil, 0
	b.mu.Unlock()
	b.ftm = ftmState{} // RAM: an exchange in progress is lost
	if err := b.boot(ctx); err != nil {
		if parent.Err() != nil {
			return 0, nil
		}
		return 0, err
	}
	tick := time.NewTicker(b.cfg.PollInterval)
	defer tick.Stop()
	var edge <-chan struct{} // the GPO interrupt; nil: poll only
	for {
		if err := b.isDead(); err != nil {
			return 0, err
		}
		if b.cfg.GPO != nil {
			// The interrupt is a hint to look at the mailbox: every edge
			// pending now is served by the service below; one arriving
			// during it closes the new channel, and the loop comes back.
			b.cfg.GPO.Drain()
			edge = b.cfg.GPO.Edge()
		}
		if err := b.service(ctx); err != nil {
			if ctx.Err() != nil {
				return 0, nil
			}
			if errors.Is(err, ErrPowerLoss) {
				return 0, err
			}
			// An I2C hiccup (tag without VCC, RF busy too long) is logged
			// and retried on the next wake-up, as firmware would.
			b.logf("nfc: %v", err)
		}
		select {
		case <-ctx.Done():
			return 0, nil
		case k := <-b.resetReq:
			return k, errReset
		case <-edge:
		case <-b.wake:
		case <-tick.C:
		}
	}
}

func (b *MCU) boot(ctx context.Context) error {
	b.mu.Lock()
	if b.cfg.Wrapped {
		if !b.rec.hasKeyPair {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				b.mu.Unlock()
				return fmt.Errorf("stm32wl5: generate key pair: %w", err)
			}
			r := b.rec
			r.hasKeyPair = true
			copy(r.priv[:], k.Bytes())
			if err := b.saveLocked(NVMWriteKeyPair, r); err != nil {
				b.mu.Unlock()
				return fmt.Errorf("stm32wl5: store key pair: %w", err)
			}
		}
		k, err := ecdh.X25519().NewPrivateKey(b.rec.priv[:])
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("stm32wl5: load key pair: %w", err)
		}
		b.priv = k
	}
	rec := b.rec
	devEUI := b.devEUI
	b.mu.Unlock()

	b.printBanner()
	b.emit(Booted, "fw %d.%d.%d DevEUI %X state %s", b.cfg.Firmware[0], b.cfg.Firmware[1], b.cfg.Firmware[2], devEUI, rec.state)
	gpo1 := byte(gpo1Firmware)
	if b.cfg.MailboxProtocol == "st25ftm" {
		gpo1 = gpo1ST25FTM
	}
	if err := b.tag.configure(ctx, b.cfg.I2CPassword, gpo1); err != nil {
		return fmt.Errorf("stm32wl5: configure tag: %w", err)
	}
	// MB_EN may still be 1 if only the MCU was reset (the tag keeps VCC);
	// user EEPROM cannot be written while it is (DS §5.1.2).
	if err := b.tag.setMBEN(ctx, false); err != nil {
		return fmt.Errorf("stm32wl5: disable mailbox: %w", err)
	}
	if err := b.writeNDEF(ctx); err != nil {
		return err
	}
	if err := b.tag.setMBEN(ctx, true); err != nil {
		return fmt.Errorf("stm32wl5: enable mailbox: %w", err)
	}
	b.logf("nfc: mailbox enabled")
	b.mu.Lock()
	b.booted = true
	b.mu.Unlock()
	b.printReady()
	b.emit(Ready, "mailbox enabled, NDEF identity state %s", rec.state)
	switch rec.state {
	case provproto.StateProvisioned:
		b.startJoin(ctx, b.cfg.JoinAttempts, true) // provisioned but never joined: try again
	case provproto.StateJoined:
		b.logf("lorawan: session restored, DevAddr %X", rec.devAddr)
	}
	return nil
}

func (b *MCU) writeNDEF(ctx context.Context) error {
	b.mu.Lock()
	img, err := ndefIdentity(b.devEUI, b.rec.joinEUI, b.cfg.Firmware, b.rec.state)
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stm32wl5: encode NDEF: %w", err)
	}
	n, err := b.tag.writeUser(ctx, 0, img)
	if err != nil {
		return fmt.Errorf("stm32wl5: write NDEF: %w", err)
	}
	b.logf("nfc: NDEF identity %d bytes (%d rewritten)", len(img), n)
	return nil
}

// service handles one wake-up: a pending RF message, then a due NDEF refresh.
func (b *MCU) service(ctx context.Context) error {
	var it byte
	if b.cfg.MailboxProtocol == "st25ftm" {
		// ST's glue: the GPO edge only sets a flag; the process loop then
		// reads IT_STS_Dyn (clear-on-read) for what happened.
		v, err := b.tag.itSts(ctx)
		if err != nil {
			return fmt.Errorf("stm32wl5: read IT_STS_Dyn: %w", err)
		}
		it = v
	}
	ctrl, err := b.tag.mbCtrl(ctx)
	if err != nil {
		return fmt.Errorf("stm32wl5: read MB_CTRL_Dyn: %w", err)
	}
	if ctrl&mbEN == 0 {
		// Lost (tag VCC cycled or MB_EN cleared from RF): enable again.
		if err := b.tag.setMBEN(ctx, true); err != nil {
			return fmt.Errorf("stm32wl5: re-enable mailbox: %w", err)
		}
		b.logf("nfc: mailbox re-enabled")
		return nil
	}
	if b.cfg.MailboxProtocol == "st25ftm" {
		if busy, err := b.serviceFTM(ctx, ctrl, it); busy || err != nil {
			return err
		}
		return b.refreshNDEFIfDue(ctx, ctrl)
	}
	if ctrl&mbRFPut != 0 {
		msg, err := b.tag.readMessage(ctx)
		if err != nil {
			return fmt.Errorf("stm32wl5: read mailbox: %w", err)
		}
		resp := b.handle(ctx, msg)
		if err := b.isDead(); err != nil {
			return err // power lost while storing: no answer
		}
		if resp == nil {
			return nil // a firmware chunk: not answered (firmware.go)
		}
		if err := b.tag.writeMessage(ctx, resp); err != nil {
			return fmt.Errorf("stm32wl5: write mailbox: %w", err)
		}
		b.mu.Lock()
		b.answerAt = time.Now()
		b.mu.Unlock()
		return nil
	}
	return b.refreshNDEFIfDue(ctx, ctrl)
}

// refreshNDEFIfDue rewrites the NDEF identity when it changed, once the
// phone has read the answer (or gave up on it).
func (b *MCU) refreshNDEFIfDue(ctx context.Context, ctrl byte) error {
	b.mu.Lock()
	due := b.ndefDirty && (ctrl&mbHostPut == 0 || time.Since(b.answerAt) > b.cfg.NDEFRefreshAfter)
	b.mu.Unlock()
	if due {
		return b.refreshNDEF(ctx)
	}
	return nil
}

// refreshNDEF rewrites the NDEF identity: the mailbox must be off for user
// EEPROM writes (DS §5.1.2), so MB_EN 0 → write → 1. A phone writing in
// between gets an RF error and retries.
func (b *MCU) refreshNDEF(ctx context.Context) error {
	b.mu.Lock()
	b.ndefDirty = false
	b.mu.Unlock()
	if err := b.tag.setMBEN(ctx, false); err != nil {
		return fmt.Errorf("stm32wl5: disable mailbox: %w", err)
	}
	werr := b.writeNDEF(ctx)
	if err := b.tag.setMBEN(ctx, true); err != nil {
		return errors.Join(werr, fmt.Errorf("stm32wl5: enable mailbox: %w", err))
	}
	if werr != nil {
		b.mu.Lock()
		b.ndefDirty = true
		b.mu.Unlock()
	}
	return werr
}

func (b *MCU) markNDEFDirty() {
	b.mu.Lock()
	b.ndefDirty = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// logText is the log ring as GET_LOG serves it.
func (b *MCU) logText() []byte {
	return []byte(strings.Join(b.Log(), "\n"))
}
