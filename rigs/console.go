package rigs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/stm32wl5"
	"github.com/tap2join/tap2join/rigs/at"
)

// Serial says where a board's AT console is (rig file `serial:`).
//
//	serial:
//	  port: /dev/ttyACM0          # a real board: device path or /dev/serial/by-id link
//	  usb_serial: 0026003A3331…   # or find it by USB serial number (survives re-enumeration)
//	  reenumerate_on_reset: false # emulated board: its pty vanishes and returns on ATZ/AT+RFS
//
// An emulated board always gets a console: a pty the rig creates (port and
// usb_serial must then be empty).
type Serial struct {
	Port               string `yaml:"port"`
	USBSerial          string `yaml:"usb_serial"`
	ReenumerateOnReset bool   `yaml:"reenumerate_on_reset"`
}

func (s Serial) validate(emulated bool) error {
	switch {
	case emulated && (s.Port != "" || s.USBSerial != ""):
		return errors.New("serial.port/usb_serial: an emulated board's console is a pty the rig creates")
	case !emulated && s.ReenumerateOnReset:
		return errors.New("serial.reenumerate_on_reset: only for emulated boards")
	}
	return nil
}

// setupAir applies Options to the emulated air: duty cycle, capture file.
func (r *Rig) setupAir(opts Options) error {
	r.air.SetDutyCycle(radio.DutyCycle{Mode: opts.DutyCycle})
	if opts.CapturePath == "" {
		return nil
	}
	stop, err := r.air.CaptureFile(opts.CapturePath)
	if err != nil {
		return fmt.Errorf("rigs: %w", err)
	}
	r.closers = append(r.closers, stop)
	return nil
}

// startSerial gives an emulated board its pty console (before it boots, so
// the first banner reaches the port).
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

// openConsole opens a board's AT console through go.bug.st/serial — the
// same driver for a real port and an emulated board's pty.
func (r *Rig) openConsole(ctx context.Context, cfg at.Config) (at.Console, error) {
	con, err := at.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	r.closers = append(r.closers, con.Close)
	// Sync: the boot banner may still be in flight on the port (a pty or a
	// USB VCP buffers it); one AT → OK takes whatever came before, so a
	// suite's first command gets only its own lines.
	if _, err := con.Command(ctx, "AT"); err != nil {
		return nil, fmt.Errorf("console: no answer to AT on %s: %w", cfg.Port+cfg.USBSerial, err)
	}
	return con, nil
}
