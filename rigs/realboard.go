package rigs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tap2join/tap2join/reports/progress"
	"github.com/tap2join/tap2join/rigs/at"
	"github.com/tap2join/tap2join/rigs/lease"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
)

// Real boards (rig file `emulated: false`): the rig reaches them only the
// way a lab bench does — the AT console on a serial port (by path or by the
// ST-LINK's USB serial number), the tag through a PC/SC reader — and holds
// the board's lease (rigs/lease) while it runs, so two jobs never share a
// board and a job that dies frees it within the lease's TTL. Nothing here
// knows whether the other end is silicon or a twin behind a pty and vpcd;
// suites/provisioning proves the path with the twin exactly that way.
//
// Flashing: a board with a flash part (rig file `flash:`, flashpart.go) is
// flashed first — once per run — then Up checks the version the board
// reports (hardware.firmware.version, else the image's descriptor, vs
// AT+VER).

// upRealBoard connects to a real board.
func (r *Rig) upRealBoard(ctx context.Context, bs BoardSpec, lg *slog.Logger, po phone.Options) (*Board, error) {
	if bs.Lease != nil {
		if err := r.takeLease(ctx, bs, lg); err != nil {
			return nil, err
		}
	}
	b := &Board{Name: bs.Name, Console: at.None(), lacks: realBoardLacks}
	// Flash before anything talks to the firmware (the MCU resets after).
	if bs.Flash != nil && !r.noFlash {
		rep, err := FlashRealBoard(ctx, bs, r.flashOut, lg)
		if err != nil {
			return nil, err
		}
		b.Flash = &rep
	} else if bs.Flash != nil {
		// Not flashed: the version the image says is still the one wanted.
		if img, err := bs.openFlashImage(); err == nil && img.Descriptor != nil {
			if rep, err := imageReport(img, bs.Flash.Tool); err == nil {
				rep.Skipped = "Options.NoFlash"
				b.Flash = &rep
			}
		}
	}
	if bs.Serial.Port != "" || bs.Serial.USBSerial != "" {
		con, err := r.openRealConsole(ctx, bs.Serial) // benchcheck.go
		if err != nil {
			return nil, err
		}
		b.Console, b.SerialPath = con, bs.Serial.Port
		want := FirmwareSpec{}
		if bs.Hardware != nil {
			want = bs.Hardware.Firmware
		}
		if b.Flash != nil && want.Version == "" {
			want.Version, want.Image = b.Flash.Version, b.Flash.Image // the image's descriptor
		}
		if want.Version != "" {
			if err := checkFirmware(ctx, con, want); err != nil {
				return nil, err
			}
		}
	}
	r.benchPowerParts(bs, b) // powerpart.go
	tr, hand, err := r.tagTransport(ctx, bs, nil)
	if err != nil {
		return nil, err
	}
	if hand != nil {
		b.parts = append(b.parts, hand) // a reader that switches its field (nfc.field_control)
		b.lacks = map[string]string{"": realBoardLacks[""]}
	}
	r.closers = append(r.closers, tr.Close)
	b.transport = tr
	b.Tag = nfc.NewST25DV(tr)
	b.Phone = r.newPhone(b.Tag, po)
	lg.Info("real board connected", "board", bs.Name, "reader", b.Reader(), "serial", bs.Serial.Port+bs.Serial.USBSerial)
	return b, nil
}

// takeLease holds the board's lease until Close; losing it (a renewal came
// too late and another job took the board) is a background error.
func (r *Rig) takeLease(ctx context.Context, bs BoardSpec, lg *slog.Logger) error {
	lg.Info("taking lease", "board", bs.Name, "resource", bs.Lease.Resource)
	l, err := acquireBoardLease(ctx, bs, func(h lease.Info) {
		// On the console whatever the log level: a job waiting on another
		// job's board must say so, not sit silent.
		progress.Printf("rig %s: board %s: waiting for lease %s", r.File.Name, bs.Name, h)
		lg.Info("waiting for lease", "board", bs.Name, "holder", h.String())
	})
	if err != nil {
		return err
	}
	r.closers = append(r.closers, l.Release)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-l.Lost():
			r.backgroundError(fmt.Errorf("board %s: %w", bs.Name, l.Err()))
		case <-r.runCtx.Done():
		}
	}()
	return nil
}

// HoldBoardLease takes a board's lease (none: nothing to take) for a tool
// that acts on the board outside a rig (rigs/cmd/flash); release gives it
// back. waiting is told who holds it while it waits.
func HoldBoardLease(ctx context.Context, bs BoardSpec, waiting func(holder string)) (release func(), err error) {
	if bs.Lease == nil {
		return func() {}, nil
	}
	l, err := acquireBoardLease(ctx, bs, func(h lease.Info) { waiting(h.String()) })
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release() }, nil
}

// acquireBoardLease takes the lease the rig file names for a board, on its
// backend (file, or etcd: lease.endpoints or $TAP2JOIN_ETCD_ENDPOINTS).
func acquireBoardLease(ctx context.Context, bs BoardSpec, waiting func(lease.Info)) (*lease.Lease, error) {
	ttl := 30 * time.Second
	if bs.Lease.TTL != "" {
		d, err := time.ParseDuration(bs.Lease.TTL)
		if err != nil {
			return nil, fmt.Errorf("lease.ttl: %w", err) // validated by Parse; kept for safety
		}
		ttl = d
	}
	var etcd *lease.Etcd
	if bs.Lease.Backend == "etcd" {
		eps := bs.Lease.Endpoints
		if len(eps) == 0 {
			eps = strings.FieldsFunc(os.Getenv(lease.EndpointsEnv), func(r rune) bool { return r == ',' || r == ' ' })
		}
		if len(eps) == 0 {
			return nil, fmt.Errorf("lease %s: backend etcd needs lease.endpoints or $%s", bs.Lease.Resource, lease.EndpointsEnv)
		}
		etcd = &lease.Etcd{Endpoints: eps}
	}
	l, err := lease.Acquire(ctx, bs.Lease.Resource, lease.Options{Dir: bs.Lease.Dir, Etcd: etcd, TTL: ttl, Waiting: waiting})
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", bs.Lease.Resource, err)
	}
	return l, nil
}

// appVersion finds "V1.3.1" in the APPLICATION_VERSION line of AT+VER=?
// (lora_at.c AT_version_get; older builds print APP_VERSION).
var appVersion = regexp.MustCompile(`^APP(?:LICATION)?_VERSION:\s*V?([0-9]+\.[0-9]+\.[0-9]+)`)

// firmwareVersion asks the board's console for its application version
// (AT+VER=?, e.g. "1.3.1").
func firmwareVersion(ctx context.Context, con at.Console) (string, error) {
	lines, err := con.Command(ctx, "AT+VER=?")
	if err != nil {
		return "", fmt.Errorf("firmware version: AT+VER=?: %w", err)
	}
	for _, l := range lines {
		if m := appVersion.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("firmware version: no APPLICATION_VERSION line in AT+VER=? (%q)", lines)
}

// FirmwareVersion is the application version the board's firmware reports
// on its console (AT+VER=?); at.ErrNoConsole for a board without one.
func (b *Board) FirmwareVersion(ctx context.Context) (string, error) {
	return firmwareVersion(ctx, b.Console)
}

// checkFirmware compares the version the board reports with the rig's.
func checkFirmware(ctx context.Context, con at.Console, fw FirmwareSpec) error {
	got, err := firmwareVersion(ctx, con)
	if err != nil {
		return err
	}
	if got != fw.Version {
		what := "the firmware under test"
		if fw.Image != "" {
			what = fw.Image
		}
		return fmt.Errorf("firmware version: the board runs %s, %s wants %s (hardware.firmware.version, or the image's descriptor): flash %s, or check that the image is the build you meant", got, what, fw.Version, what)
	}
	return nil
}
