package rigs

import (
	"context"
	"fmt"

	"github.com/tap2join/tap2join/rigs/at"
)

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
