package pcsc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebfe/scard"
)

// Presence is a tap (Present) or a lift (!Present) seen on the reader, or the
// end of watching (Err set, last value on the channel).
type Presence struct {
	Reader  string
	Present bool
	ATR     []byte // when Present
	At      time.Time
	Err     error
}

// Watch reports the reader's card presence: first the current state, then
// every change, until ctx ends (the channel closes) or PC/SC fails (a final
// Presence with Err, then close). It uses its own PC/SC context so a blocked
// SCardGetStatusChange never holds up Transceive; ctx's end cancels it with
// SCardCancel. The event counter pcsc-lite keeps in the upper 16 bits of the
// state is passed back, so a quick lift + re-tap between two calls still
// shows up as a change (pcsc-lite 1.9.9 src/winscard_clnt.c
// SCardGetStatusChange). Presence polling of vpcd runs every 400 ms in pcscd
// (PCSCLITE_STATUS_POLL_RATE, src/pcscd.h.in): taps are seen ≲ 0.5 s late.
func (t *Transport) Watch(ctx context.Context) <-chan Presence {
	out := make(chan Presence, 4)
	go func() {
		defer close(out)
		send := func(p Presence) bool {
			p.Reader, p.At = t.reader, time.Now()
			select {
			case out <- p:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sc, err := scard.EstablishContext()
		if err != nil {
			send(Presence{Err: fmt.Errorf("pcsc: watch %q: establish context: %w", t.reader, err)})
			return
		}
		defer sc.Release()
		stop := context.AfterFunc(ctx, func() { _ = sc.Cancel() })
		defer stop()

		rs := []scard.ReaderState{{Reader: t.reader, CurrentState: scard.StateUnaware}}
		first, last := true, false
		for {
			err := sc.GetStatusChange(rs, -1)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if errors.Is(err, scard.ErrCancelled) || errors.Is(err, scard.ErrTimeout) {
					continue
				}
				send(Presence{Err: fmt.Errorf("pcsc: watch %q: %w", t.reader, err)})
				return
			}
			ev := rs[0].EventState
			present := ev&scard.StatePresent != 0 && ev&scard.StateMute == 0
			// A lift and a re-tap between two calls: the counter moved while
			// the flags look the same; report both edges.
			moved := !first && (ev>>16) != (rs[0].CurrentState>>16) && present == last && present
			rs[0].CurrentState = ev &^ scard.StateChanged
			if moved {
				if !send(Presence{Present: false}) {
					return
				}
			}
			if first || present != last || moved {
				p := Presence{Present: present}
				if present {
					p.ATR = append([]byte(nil), rs[0].Atr...)
				}
				if !send(p) {
					return
				}
			}
			first, last = false, present
		}
	}()
	return out
}
