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
	tr, err := r.nfcTransport(ctx, bs, tag)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, tr.Close)
	drv := nfc.NewST25DV(tr)
	b := &Board{Name: bs.Name, Tag: drv, transport: tr, Console: at.None(), parts: []any{tw}}
	if sp != nil {
		b.SerialPath = sp.Path()
		if !r.detach {
			if b.Console, err = r.openConsole(ctx, at.Config{Port: sp.Path()}); err != nil {
				return nil, err
			}
		}
	}
	b.Phone = r.newPhone(drv, po)
	return b, nil
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
// PhoneHand, MailboxWatchdog and MCUControl.
type twin struct {
	name string
	rig  *Rig
	tag  *st25dv.Tag
	mcu  *stm32wl5.MCU

	mu   sync.Mutex
	stop context.CancelFunc // ends the current Run
	done chan struct{}      // closed when the current Run returned
}

// start runs the board's firmware until the rig closes or HaltMCU, and
// waits for it to boot.
func (tw *twin) start(ctx context.Context) error {
	r := tw.rig
	tw.mu.Lock()
	if tw.done != nil {
		tw.mu.Unlock()
		return fmt.Errorf("board %s: firmware already running", tw.name)
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

// Lift switches the tag's RF field off (PhoneHand).
func (tw *twin) Lift() error {
	tw.tag.FieldOff()
	return nil
}

// Tap switches the tag's RF field on (PhoneHand).
func (tw *twin) Tap() error {
	tw.tag.FieldOn()
	return nil
}

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
