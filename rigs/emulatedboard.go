package rigs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tap2join/tap2join/emulators/bus"
	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
)

// Emulated boards (rig file `emulated: true`): the ST25DV64KC twin and the
// STM32WL5 firmware twin on one I2C bus with the tag's GPO line, the MCU on
// the emulated air, its AT console on a pty. The phone reaches the tag the
// way it reaches a real one — an ISO 15693 transport, direct or through
// pcscd + vpcd — and the console is opened through go.bug.st/serial. The
// twin offers every board capability (capabilities.go).

// upEmulatedBoard builds an emulated board and boots its firmware; ctx is
// the rig's run context (the firmware runs until Close).
func (r *Rig) upEmulatedBoard(ctx context.Context, bs BoardSpec, lg *slog.Logger, po phone.Options) (*Board, error) {
	var uid [8]byte
	if _, err := hex.Decode(uid[:], []byte(bs.UniqueID)); err != nil {
		return nil, fmt.Errorf("unique_id: %w", err)
	}
	// Tag UID: E0 02 51 (ISO 15693 + ST + ST25DV64KC-IE, DS13519 T243) and a
	// 40-bit serial taken from the board's unique id, so it is stable per board.
	tagUID := [8]byte{0xE0, 0x02, 0x51, uid[3], uid[4], uid[5], uid[6], uid[7]}
	tag := st25dv.New(st25dv.Config{UID: tagUID, Clock: r.Clock, I2CClockHz: EmulatedI2CHz})
	tag.SetVCC(true)
	if bs.Firmware == FirmwareNone {
		return r.upBareTag(ctx, bs, tag, po)
	}
	// Flashing comes first, as on a bench: the image says which version
	// the twin runs (flashpart.go).
	var flashRep *FlashReport
	var version [3]byte
	if bs.Flash != nil {
		rep, v, err := flashEmulatedBoard(bs)
		if err != nil {
			return nil, err
		}
		flashRep, version = &rep, v
		lg.Info("flashed (emulated)", "board", bs.Name, "image", rep.Image, "version", rep.Version)
	}
	wires := &bus.Bus{}
	wires.Attach(tag.I2C())
	mcu, err := stm32wl5.New(stm32wl5.Config{
		Firmware:        version, // zero: the twin's default
		MailboxProtocol: bs.MailboxProtocol,
		UniqueID:        uid,
		I2C:             wires,
		GPO:             tag.GPO(),
		Air:             r.air,
		Clock:           r.Clock,
		Faults:          stm32wl5.Faults{StoreCorruptKey: bs.Faults.StoreCorruptKey, NVMKillAtStep: bs.Faults.NVMKillAtStep, LeakKeyToLog: bs.Faults.LeakKeyToLog},
		KeyReadBack:     bs.Faults.KeyReadBack,
		NVMPath:         bs.NVM,
		RXWindowCap:     r.rxCap,
		PollInterval:    r.poll,
		// The firmware offers wrapped-key mode when the rig asks for it.
		Wrapped: po.Wrapped,
		Logf: func(format string, a ...any) {
			debugf(lg, "board", bs.Name, format, a...)
		},
	})
	if err != nil {
		return nil, err
	}
	// The pty comes before the boot, so the first banner reaches the port.
	var sp *stm32wl5.SerialPort
	if !r.noCons {
		if sp, err = r.startSerial(mcu, bs); err != nil {
			return nil, err
		}
	}
	// Wait for the firmware to boot (NDEF written, mailbox enabled) before a
	// phone may tap: a real operator also powers the board first.
	tw := &twin{name: bs.Name, rig: r, tag: tag, mcu: mcu}
	if err := tw.start(ctx); err != nil {
		return nil, err
	}
	tr, hand, err := r.tagTransport(ctx, bs, tag)
	if err != nil {
		return nil, err
	}
	tw.hand = hand
	r.closers = append(r.closers, tr.Close)
	drv := nfc.NewST25DV(tr)
	b := &Board{Name: bs.Name, Tag: drv, transport: tr, Console: at.None(), parts: []any{tw}, Flash: flashRep}
	b.lacks = map[string]string{capabilityName[TagHost](): firmwareOwnsTag}
	if sp != nil {
		b.SerialPath = sp.Path()
		if !r.detach {
			if b.Console, err = r.openConsole(ctx, at.Config{Port: sp.Path()}); err != nil {
				return nil, err
			}
			// Flash → version check, as on a bench: the board must report
			// the version the image says.
			if flashRep != nil && flashRep.Version != "" {
				if err := checkFirmware(ctx, b.Console, FirmwareSpec{Image: flashRep.Image, Version: flashRep.Version}); err != nil {
					return nil, err
				}
			}
		}
	}
	b.Phone = r.newPhone(drv, po)
	return b, nil
}

// UpInProcess brings up the emulated boards of f and nothing else: no
// network server, no gateways, no provisioning backend (Network and Backend
// are nil, the boards' radios transmit on an air nobody listens to, their
// phones have no backend) and no consoles (as Options.NoConsoles) — nothing
// that waits on a socket, a pty or another process. Every board must be
// emulated, on nfc.transport direct.
//
// It is for specs whose whole path is in this process — the phone, the tag
// twin, the firmware twin — run in a testing/synctest bubble (suites/ftm):
// there time is virtual (emulators/timing.Virtual), so a realistic-timing
// exchange takes exactly its modelled time whatever the host's load, and no
// wall time. Time in a bubble advances only while every goroutine of the
// bubble is durably blocked (a channel, a timer, a sync.Cond); one waiting
// on a socket or a file never is, and would stop it. A rig brought up in a
// bubble must also be closed in it. Outside a bubble it is an ordinary rig
// of those boards.
func UpInProcess(ctx context.Context, f *File, opts Options) (_ *Rig, err error) {
	for _, bs := range f.Boards {
		if !bs.Emulated || bs.NFC.Transport != "direct" {
			return nil, fmt.Errorf("rigs: %s: board %s: in process needs an emulated board on nfc.transport direct", f.Name, bs.Name)
		}
	}
	opts.NoConsoles, opts.DetachedConsoles = true, false // a pty is a file: it would stop a bubble's clock
	r, lg, err := newRig(f, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	if err := r.setUpAir(opts); err != nil { // gateways.go
		return nil, err
	}
	if err := r.setUpBoards(ctx, opts, lg); err != nil {
		return nil, err
	}
	po := opts.Phone
	po.Wrapped = po.Wrapped || f.Provisioning.Wrapped
	for i, b := range r.Boards {
		bpo := po
		bpo.MailboxProtocol = f.Boards[i].MailboxProtocol
		b.MailboxProtocol = bpo.MailboxProtocol
		b.Phone = phone.New(phone.NFCTag(b.Tag), nil, bpo) // no backend: an untyped nil
	}
	return r, nil
}

// startSerial gives an emulated board its pty console.
func (r *Rig) startSerial(mcu *stm32wl5.MCU, bs BoardSpec) (*stm32wl5.SerialPort, error) {
	dir, err := os.MkdirTemp("", "tap2join-serial-")
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	sp, err := mcu.StartSerial(stm32wl5.SerialOptions{Dir: dir, ReenumerateOnReset: bs.Serial.ReenumerateOnReset})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.closers = append(r.closers, func() error {
		err := sp.Close()
		return errors.Join(err, os.RemoveAll(filepath.Clean(dir)))
	})
	return sp, nil
}

// ErrPowerLoss is the background error of an emulated board whose power was
// cut during an NVM write (rig file faults.nvm_kill_at_step).
var ErrPowerLoss = stm32wl5.ErrPowerLoss

// NVMWriteSteps is how many flash steps one NVM write of the firmware twin
// takes (faults.nvm_kill_at_step counts them).
const NVMWriteSteps = stm32wl5.SaveSteps

// twin is an emulated board's parts and its firmware's run. It implements
// PhoneHand (through its NFC transport's hand), MailboxWatchdog and
// MCUControl, ModelClock, FirmwareSlot, PowerSwitch and NVMCut.
type twin struct {
	name string
	rig  *Rig
	tag  *st25dv.Tag
	mcu  *stm32wl5.MCU
	hand PhoneHand // the transport's (tagTransport): field off/on, or the vpcd card out/in

	mu   sync.Mutex
	stop context.CancelFunc // ends the current Run
	done chan struct{}      // closed when the current Run returned
	cut  chan struct{}      // an armed NVM cut (ArmNVMCut): closed when the run dies of it
}

// start runs the board's firmware until the rig closes or HaltMCU, and
// waits for it to boot.
func (tw *twin) start(ctx context.Context) error {
	r := tw.rig
	tw.mu.Lock()
	if tw.done != nil {
		select {
		case <-tw.done: // the run ended on its own (a power cut): power back on
			tw.stop()
			tw.stop, tw.done = nil, nil
		default:
			tw.mu.Unlock()
			return fmt.Errorf("board %s: firmware already running", tw.name)
		}
	}
	mctx, stop := context.WithCancel(r.runCtx)
	done := make(chan struct{})
	tw.stop, tw.done = stop, done
	events := tw.mcu.Events()
	tw.mu.Unlock()
	failed := make(chan error, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		if err := tw.mcu.Run(mctx); err != nil {
			r.backgroundError(fmt.Errorf("board %s: %w", tw.name, err))
			if errors.Is(err, ErrPowerLoss) {
				// The supply is gone: the tag loses VCC too (its dynamic
				// registers reset) until PowerOn.
				tw.tag.SetVCC(false)
				tw.mu.Lock()
				if tw.cut != nil {
					close(tw.cut)
					tw.cut = nil
				}
				tw.mu.Unlock()
			}
			select {
			case failed <- err:
			default:
			}
		}
	}()
	return waitBooted(ctx, events, failed)
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

// Lift takes the phone off the tag (PhoneHand): its RF field off on the
// direct transport; on pcsc the card out of its vpcd reader, once pcscd
// reports it gone.
func (tw *twin) Lift() error { return tw.hand.Lift() }

// Tap lays the phone on the tag again (PhoneHand): its RF field on; on pcsc
// the card back in its reader, once pcscd reports it.
func (tw *twin) Tap() error { return tw.hand.Tap() }

// ExpireMailboxWatchdog expires the tag's mailbox watchdog (MailboxWatchdog).
func (tw *twin) ExpireMailboxWatchdog() (bool, error) {
	return tw.tag.ExpireWatchdog(), nil
}

// HaltMCU stops the firmware's run (MCUControl).
func (tw *twin) HaltMCU() error {
	tw.mu.Lock()
	stop, done := tw.stop, tw.done
	tw.stop, tw.done = nil, nil
	tw.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	<-done
	return nil
}

// ResetMCU restarts the firmware and waits for it to boot (MCUControl).
func (tw *twin) ResetMCU(ctx context.Context) error {
	if err := tw.HaltMCU(); err != nil {
		return err
	}
	return tw.start(ctx)
}

// PowerOff cuts the board's supply (PowerSwitch): the firmware stops where
// it is (RAM lost) and the tag loses VCC — its dynamic registers reset, so
// the mailbox is off until the firmware enables it again at boot.
func (tw *twin) PowerOff(ctx context.Context) error {
	if err := tw.HaltMCU(); err != nil {
		return err
	}
	tw.tag.SetVCC(false)
	return nil
}

// PowerOn restores the supply and waits for the firmware to boot.
func (tw *twin) PowerOn(ctx context.Context) error {
	tw.tag.SetVCC(true)
	return tw.start(ctx)
}

// ArmNVMCut arms a power cut in the firmware's next NVM write of kind, after
// step flash steps (NVMCut).
func (tw *twin) ArmNVMCut(kind string, step int) (<-chan struct{}, error) {
	// The channel first: a write of that kind may come at once.
	cut := make(chan struct{})
	tw.mu.Lock()
	prev := tw.cut
	tw.cut = cut
	tw.mu.Unlock()
	if err := tw.mcu.CutPowerInNVMWrite(stm32wl5.NVMWrite(kind), step); err != nil {
		tw.mu.Lock()
		tw.cut = prev
		tw.mu.Unlock()
		return nil, fmt.Errorf("board %s: %w", tw.name, err)
	}
	return cut, nil
}

// ModeledTime is the tag's modelled time (ModelClock).
func (tw *twin) ModeledTime() time.Duration { return tw.tag.ModeledTime() }

// StagedFirmware is the image the firmware twin staged, or nil (FirmwareSlot).
func (tw *twin) StagedFirmware() *StagedImage {
	img := tw.mcu.StagedFirmware()
	if img == nil {
		return nil
	}
	return &StagedImage{Size: img.Size, SHA256: img.SHA256, Data: img.Data}
}

// EmulatedI2CHz is the SCL clock of an emulated board's MCU ↔ tag bus: the
// firmware clocks it at 1 MHz (Fm+, the ST25DV's maximum, DS Table 250; the
// lab wiring in the top README), so the tag twin accounts I2C bus time at
// that rate (a 256-byte mailbox read: 2.3 ms).
const EmulatedI2CHz = 1_000_000

// firmwareOwnsTag is why an emulated board running the firmware twin offers
// no TagHost.
const firmwareOwnsTag = "its firmware twin drives the tag's I2C side; rig file firmware: none leaves the MCU to the spec"

// upBareTag brings up an emulated board whose MCU runs no firmware (rig
// file firmware: none): the tag twin, powered (VCC on, factory content),
// in the phone's field through the board's NFC transport. No console, no
// radio; the spec plays the MCU through TagHost.
func (r *Rig) upBareTag(ctx context.Context, bs BoardSpec, tag *st25dv.Tag, po phone.Options) (*Board, error) {
	tr, hand, err := r.tagTransport(ctx, bs, tag)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, tr.Close)
	drv := nfc.NewST25DV(tr)
	return &Board{Name: bs.Name, Tag: drv, Phone: r.newPhone(drv, po), Console: at.None(), transport: tr,
		parts: []any{bareTag{tag: tag, hand: hand}}, lacks: map[string]string{"": "its MCU runs no firmware (rig file firmware: none)"}}, nil
}

// bareTag is the tag of an emulated board without firmware. It implements
// TagHost, PhoneHand (through its NFC transport's hand), MailboxWatchdog and
// ModelClock.
type bareTag struct {
	tag  *st25dv.Tag
	hand PhoneHand // the transport's (tagTransport): field off/on, or the vpcd card out/in
}

// TagI2C runs one transaction on the tag's I2C target (TagHost).
func (t bareTag) TagI2C(addr uint16, w, r []byte) error { return t.tag.I2C().Tx(addr, w, r) }

// Lift takes the phone off the tag (PhoneHand), as twin.Lift.
func (t bareTag) Lift() error { return t.hand.Lift() }

// Tap lays the phone on the tag again (PhoneHand), as twin.Tap.
func (t bareTag) Tap() error { return t.hand.Tap() }

// ExpireMailboxWatchdog expires the tag's mailbox watchdog (MailboxWatchdog).
func (t bareTag) ExpireMailboxWatchdog() (bool, error) { return t.tag.ExpireWatchdog(), nil }

// ModeledTime is the tag's modelled time (ModelClock).
func (t bareTag) ModeledTime() time.Duration { return t.tag.ModeledTime() }

// The tag twin's timing model (emulators/st25dv model.go; DS §7, Table 102,
// Table 255), for specs that compare measured exchanges with it: the tag
// answering at the high data rate, the reader sending 1-of-4; addressed adds
// the UID to the request.

// MailboxWriteTime is the modelled duration of a Write Message (AAh) of n
// bytes (256 non-addressed: 80.79 ms; DS Table 255: 80.7 ms typ).
func MailboxWriteTime(n int, addressed bool) time.Duration {
	return st25dv.MailboxWriteTime(n, addressed)
}

// MailboxReadTime is the modelled duration of a Read Message (ACh) returning
// n bytes (256 non-addressed: 81.09 ms; DS Table 255: 81 ms typ).
func MailboxReadTime(n int, addressed bool) time.Duration {
	return st25dv.MailboxReadTime(n, addressed)
}

// MailboxLengthTime is the modelled duration of a Read Message Length (ABh).
func MailboxLengthTime(addressed bool) time.Duration { return st25dv.MailboxLengthTime(addressed) }
