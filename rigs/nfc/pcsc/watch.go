package pcsc

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// SCardCancel, and each call is bounded (statePoll) because a cancel that
// comes while no call is blocked is lost: the next call would wait for a
// change that may never come, and the goroutine with it. The event counter
// pcsc-lite keeps in the upper 16 bits of the state is passed back, so a
// quick lift + re-tap between two calls still shows up as a change (pcsc-lite 1.9.9 src/winscard_clnt.c
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
			err := sc.GetStatusChange(rs, statePoll)
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

// statePoll bounds one SCardGetStatusChange of Watch, WaitPresent and
// WaitEmpty: ctx's end cancels a blocked call at once (SCardCancel), but a
// cancel between two calls is lost (pcsc-lite src/winscard_clnt.c
// SCardCancel only wakes a call in progress); the bound is how late ctx's
// end is noticed then.
const statePoll = 500 * time.Millisecond

// WaitPresent returns the ATR once pcscd reports a card in the reader that it
// has powered up: SCARD_STATE_PRESENT with an ATR, and neither MUTE (power-up
// failed), EMPTY nor UNAVAILABLE. It waits for the reader's state, not for
// time: a card put into a reader (a vpcd.Card's Insert returning, a tag laid
// on a USB reader) is only usable once pcscd's next presence poll (every
// 400 ms, PCSCLITE_STATUS_POLL_RATE) has found and powered it; until then
// SCardConnect fails with "No smart card inserted" (scard.ErrNoSmartcard).
//
// A card taken out is reported gone at that same poll at the earliest, so
// right after a removal the reader still shows the old card PRESENT: call
// WaitEmpty after taking a card out and before putting the next one in, or
// WaitPresent may return at once on the card that was removed. With vpcd a
// quick swap can even go unreported: when pcscd powers an unused card down
// (≈ 0.4 s after power-up or its last client), pcsc-lite's IFDPowerICC
// probes presence first (src/ifdwrapper.c), vpcd drops the dead socket, and
// the event thread ignores that result (src/eventhandler.c); a new card
// already waiting on vpcd's port is then taken at the next poll with no
// removal, no insertion and no change of pcsc-lite's event counter (seen
// with pcsc-lite 1.9.9 and vsmartcard-vpcd 0.8 under strace). Waiting for
// EMPTY before the next insertion rules that out.
func (t *Transport) WaitPresent(ctx context.Context) ([]byte, error) {
	var atr []byte
	err := t.waitState(ctx, "a card", func(rs scard.ReaderState) bool {
		if !cardPresent(rs) {
			return false
		}
		atr = append([]byte(nil), rs.Atr...)
		return true
	})
	return atr, err
}

// WaitEmpty returns once pcscd reports no card in the reader
// (SCARD_STATE_EMPTY): after a card is taken out, before the next one goes
// in (see WaitPresent).
func (t *Transport) WaitEmpty(ctx context.Context) error {
	return t.waitState(ctx, "no card", func(rs scard.ReaderState) bool {
		return rs.EventState&scard.StateEmpty != 0
	})
}

// cardPresent: pcsc-lite marks a card it could not power up MUTE
// (SCARD_SWALLOWED) and gives it no ATR; such a card cannot be connected.
func cardPresent(rs scard.ReaderState) bool {
	ev := rs.EventState
	return ev&scard.StatePresent != 0 && ev&(scard.StateMute|scard.StateEmpty|scard.StateUnavailable) == 0 && len(rs.Atr) > 0
}

// waitState loops on SCardGetStatusChange until done accepts the reader's
// state or ctx ends. Like Watch it uses its own PC/SC context and passes the
// last EventState back, event counter included (upper 16 bits), so each call
// returns on the next change.
func (t *Transport) waitState(ctx context.Context, want string, done func(scard.ReaderState) bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pcsc: wait for %s in %q: %w", want, t.reader, err)
	}
	sc, err := scard.EstablishContext()
	if err != nil {
		return fmt.Errorf("pcsc: wait for %s in %q: establish context: %w", want, t.reader, err)
	}
	defer sc.Release()
	stop := context.AfterFunc(ctx, func() { _ = sc.Cancel() })
	defer stop()

	rs := []scard.ReaderState{{Reader: t.reader, CurrentState: scard.StateUnaware}}
	var last scard.StateFlag
	for {
		err := sc.GetStatusChange(rs, statePoll)
		if ctx.Err() != nil {
			return fmt.Errorf("pcsc: wait for %s in %q (last state %s): %w", want, t.reader, stateText(last), ctx.Err())
		}
		switch {
		case errors.Is(err, scard.ErrTimeout) || errors.Is(err, scard.ErrCancelled):
			continue
		case err != nil:
			return fmt.Errorf("pcsc: wait for %s in %q: %w", want, t.reader, err)
		}
		last = rs[0].EventState
		if done(rs[0]) {
			return nil
		}
		rs[0].CurrentState = last &^ scard.StateChanged
	}
}

// stateText names the flags of an SCARD_STATE value and its event counter,
// for error messages.
func stateText(s scard.StateFlag) string {
	var names []string
	for _, f := range []struct {
		flag scard.StateFlag
		name string
	}{
		{scard.StateUnknown, "UNKNOWN"}, {scard.StateUnavailable, "UNAVAILABLE"},
		{scard.StateEmpty, "EMPTY"}, {scard.StatePresent, "PRESENT"},
		{scard.StateExclusive, "EXCLUSIVE"}, {scard.StateInuse, "INUSE"},
		{scard.StateMute, "MUTE"}, {scard.StateUnpowered, "UNPOWERED"},
	} {
		if s&f.flag != 0 {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		names = append(names, "none")
	}
	return fmt.Sprintf("%s, event %d", strings.Join(names, "|"), s>>16)
}
