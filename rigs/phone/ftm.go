package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// Mailbox protocols (Options.MailboxProtocol).
const (
	MailboxTap2join = "tap2join" // one frame per mailbox message (SPEC.md §1)
	MailboxST25FTM  = "st25ftm"  // frames inside ST25FTM commands (SPEC.md §8)
)

// The phone's side of ST25FTM (SPEC.md §8), as ST's SDK sends a command
// (ST25FTM in the ST25 SDK; AN5512): the command's packets one per Write
// Message, each taken by the device before the next goes, each segment's
// status byte read back (a CRC error resends the segment, same parity);
// then the answer's packets, each segment's status byte written back.

// ftmOut is how a command is sent.
type ftmOut struct {
	frame int // mailbox message size (st25ftm.FrameAndroid by default)
	// noLastStatus leaves without reading the last segment's status (Post).
	noLastStatus bool
	// gap is the least time between two packet writes (a profile's
	// CommandGap), poll the interval of MB_CTRL_Dyn polls (0: back off from
	// Options.Poll to Options.PollMax).
	gap, poll time.Duration
	// progress is called after each acknowledged segment with the command
	// bytes the device has confirmed.
	progress func(confirmed int)
	// packets, if set, counts the packets written (resent ones included).
	packets *int
}

// exchangeFTM is Exchange over ST25FTM: the request as an FTMRequest
// command, the answer as an FTMAnswer command, within ReplyTimeout.
func (p *Phone) exchangeFTM(ctx context.Context, req []byte) (provproto.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
	defer cancel()
	if err := p.sendFTM(ctx, append([]byte{provproto.FTMRequest}, req...), ftmOut{}); err != nil {
		return provproto.Frame{}, p.ftmErr(ctx, "write request", err)
	}
	f, err := p.receiveFTMAnswer(ctx)
	if err != nil && !isDeviceError(err) {
		return f, p.ftmErr(ctx, "answer", err)
	}
	return f, err
}

// ftmErr names what timed out as the tap2join exchange does ("no answer
// from the device within …"), so a caller reads the same words on both
// protocols.
func (p *Phone) ftmErr(ctx context.Context, stage string, err error) error {
	if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
		return fmt.Errorf("st25ftm: %s: no answer from the device within %v: %w", stage, p.opts.ReplyTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("st25ftm: %s: %w", stage, err)
}

func isDeviceError(err error) bool {
	var pe *provproto.Error
	return errors.As(err, &pe)
}

// sendFTM sends one ST25FTM command. When the field goes (the phone
// moved: an RF command gets no answer) it waits for it to come back and
// resumes as ST's sender does: the segment again from its first packet,
// same parity — or, when the segment's last packet was already out, the
// device's status for it.
func (p *Phone) sendFTM(ctx context.Context, cmd []byte, o ftmOut) error {
	if o.frame == 0 {
		o.frame = st25ftm.FrameAndroid
	}
	segs, err := st25ftm.Segments(cmd, o.frame, st25ftm.SegmentDefault, true)
	if err != nil {
		return err
	}
	if err := p.writeFirstFTM(ctx, segs[0][0], o); err != nil {
		return err
	}
	confirmed, resumes, firstOut := 0, 0, true
	for si := 0; si < len(segs); {
		noStatus := o.noLastStatus && si == len(segs)-1
		st, err := p.sendSegment(ctx, segs[si], si, firstOut, noStatus, o)
		firstOut = false
		if err != nil {
			var fl *fieldLoss
			timedOut := errors.Is(err, errAckTimeout)
			if !errors.As(err, &fl) && !timedOut || resumes >= ftmMaxResumes {
				return err
			}
			resumes++
			p.mu.Lock()
			p.resumes++
			p.mu.Unlock()
			if timedOut {
				continue // ST's sender: no status within the ack timeout, the segment again
			}
			if st, err = p.resumeFTM(ctx, fl.mayHaveStatus && !noStatus, o); err != nil {
				return fmt.Errorf("segment %d, after the field came back: %w", si, err)
			}
			if st == 0 {
				continue // the segment again
			}
		}
		switch {
		case noStatus:
			return nil
		case st == st25ftm.StatusCRCError:
			continue // the whole segment again, same parity
		case st == st25ftm.StatusAbort:
			return fmt.Errorf("segment %d: %w", si, ErrFTMAborted)
		case st != st25ftm.StatusOK:
			return fmt.Errorf("segment %d: unknown status %02X", si, st)
		}
		for _, q := range segs[si] {
			confirmed += len(q.Data)
		}
		if o.progress != nil {
			o.progress(confirmed)
		}
		si++
	}
	return nil
}

// ftmMaxResumes bounds the field losses one command survives.
const ftmMaxResumes = 5

// fieldLoss is an RF command of a segment that got no answer: the phone
// left the field. mayHaveStatus: the segment's last packet may have
// reached the tag (written, or its write's answer lost), so the device may
// post the segment's status.
type fieldLoss struct {
	mayHaveStatus bool
	err           error
}

func (e *fieldLoss) Error() string { return e.err.Error() }
func (e *fieldLoss) Unwrap() error { return e.err }

// lost marks err a field loss when the tag did not answer.
func lost(err error, mayHaveStatus bool) error {
	if errors.Is(err, nfc.ErrNoResponse) {
		return &fieldLoss{mayHaveStatus: mayHaveStatus, err: err}
	}
	return err
}

// errAckTimeout: the segment's status did not come within the ack timeout
// (Options.FieldReturn, ST25FTM's 1 s): the sender sends the segment again
// (a packet whose header was corrupted on the air leaves the receiver
// waiting for more, and only this ends it).
var errAckTimeout = errors.New("st25ftm: no status within the ack timeout")

// sendSegment writes one segment's packets (the first already out when
// firstOut) and returns the device's status byte (0 when noStatus).
func (p *Phone) sendSegment(ctx context.Context, seg []st25ftm.Packet, si int, firstOut, noStatus bool, o ftmOut) (byte, error) {
	for pi, pk := range seg {
		if pi > 0 || !firstOut {
			if err := waitTimer(ctx, time.Until(p.lastWrite.Add(o.gap))); err != nil {
				return 0, err
			}
			p.lastWrite = time.Now()
			if err := p.tag.WriteMessage(ctx, pk.Marshal()); err != nil {
				if p.abortWaiting(ctx, err) {
					return st25ftm.StatusAbort, nil
				}
				return 0, lost(fmt.Errorf("write packet %d of segment %d: %w", pi, si, err), pk.Ctrl.EndsSegment())
			}
			if o.packets != nil {
				*o.packets++
			}
		}
		// The device's GPO wake-up and I2C read of the packet come
		// first: a poll on the air before them only delays the device
		// (the tag NACKs I2C while RF is busy, DS §5.3).
		if err := waitTimer(ctx, max(ftmDrainWait, o.poll)); err != nil {
			return 0, err
		}
		if !pk.Ctrl.EndsSegment() {
			if err := p.awaitTaken(ctx, o.poll); err != nil {
				return 0, lost(fmt.Errorf("packet %d of segment %d: %w", pi, si, err), false)
			}
			continue
		}
		if noStatus {
			return 0, nil
		}
		ack, cancel := context.WithTimeout(ctx, p.opts.FieldReturn)
		msg, err := p.awaitMessage(ack, o.poll)
		timedOut := ctx.Err() == nil && errors.Is(ack.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if timedOut {
				return 0, fmt.Errorf("segment %d: %w", si, errAckTimeout)
			}
			return 0, lost(fmt.Errorf("segment %d status: %w", si, err), true)
		}
		if !st25ftm.IsStatus(msg) {
			return 0, fmt.Errorf("segment %d: the device answered % X, not a status byte", si, msg[:min(len(msg), 4)])
		}
		return msg[0], nil
	}
	return 0, fmt.Errorf("segment %d: no packet ends it", si) // Segments always ends one
}

// resumeFTM waits for the field to come back (within FieldReturn), then
// for the device: a status byte it posts is the segment's verdict (the
// segment's last packet reached it: mayHaveStatus; or an abort); 0 means
// send the segment again — once the device has taken whatever packet is
// still in the mailbox and, when a status may come, the ack timeout passed
// without one.
func (p *Phone) resumeFTM(ctx context.Context, mayHaveStatus bool, o ftmOut) (byte, error) {
	back, cancel := context.WithTimeout(ctx, p.opts.FieldReturn)
	defer cancel()
	gone := fmt.Errorf("no answer from the tag: %w", nfc.ErrNoResponse)
	for {
		_, _, err := p.tag.MailboxPending(back)
		if err == nil {
			break
		}
		if ctx.Err() == nil && back.Err() != nil {
			// FieldReturn ran out, maybe in the middle of this poll.
			return 0, fmt.Errorf("the field did not come back within %v: %w", p.opts.FieldReturn, gone)
		}
		if !errors.Is(err, nfc.ErrNoResponse) {
			return 0, fmt.Errorf("poll mailbox: %w", err)
		}
		gone = err
		if werr := waitTimer(back, p.pollWait(o.poll)); werr != nil {
			if ctx.Err() != nil {
				return 0, werr
			}
			return 0, fmt.Errorf("the field did not come back within %v: %w", p.opts.FieldReturn, gone)
		}
	}
	ack, cancelAck := context.WithTimeout(ctx, p.opts.FieldReturn)
	defer cancelAck()
	for {
		rf, host, err := p.tag.MailboxPending(ack)
		if err != nil {
			if ctx.Err() == nil && ack.Err() != nil {
				return 0, nil // no status within the ack timeout: the segment again
			}
			return 0, fmt.Errorf("poll mailbox: %w", err)
		}
		if host && !rf {
			msg, err := p.tag.ReadMessage(ctx)
			if err != nil {
				return 0, fmt.Errorf("read the device's message: %w", err)
			}
			if !st25ftm.IsStatus(msg) {
				return 0, fmt.Errorf("the device posted % X…, not a status byte", msg[:min(len(msg), 4)])
			}
			return msg[0], nil
		}
		if !rf && !mayHaveStatus {
			return 0, nil
		}
		if err := waitTimer(ack, p.pollWait(o.poll)); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			return 0, nil
		}
	}
}

// abortWaiting says whether a packet write failed because the device's
// abort (83h) filled the mailbox first (the tag refuses a Write Message
// while a host message is pending, DS §5.3); the abort is read out.
func (p *Phone) abortWaiting(ctx context.Context, werr error) bool {
	var iso *nfc.ISOError
	if !errors.As(werr, &iso) {
		return false
	}
	_, host, err := p.tag.MailboxPending(ctx)
	if err != nil || !host {
		return false
	}
	msg, err := p.tag.ReadMessage(ctx)
	return err == nil && st25ftm.IsStatus(msg) && msg[0] == st25ftm.StatusAbort
}

// Resumes counts the segments this phone resumed after the field came back.
func (p *Phone) Resumes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resumes
}

// Command sends one ST25FTM command (cmd[0] its command byte: ST's demo
// commands, GET_BOARD_INFO 0x00 …, or tap2join's, SPEC.md §8) and returns
// the device's answer command. Only on a board speaking ST25FTM.
func (p *Phone) Command(ctx context.Context, cmd []byte) ([]byte, error) {
	if p.opts.MailboxProtocol != MailboxST25FTM {
		return nil, errors.New("phone: st25ftm command: the board speaks tap2join framing (mailbox_protocol)")
	}
	if len(cmd) == 0 {
		return nil, errors.New("phone: st25ftm command: empty")
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
	defer cancel()
	if err := p.sendFTM(ctx, cmd, ftmOut{}); err != nil {
		return nil, p.ftmErr(ctx, fmt.Sprintf("command %02X", cmd[0]), err)
	}
	ans, err := p.receiveFTM(ctx, 0)
	if err != nil {
		return nil, p.ftmErr(ctx, fmt.Sprintf("answer to %02X", cmd[0]), err)
	}
	return ans, nil
}

// ftmDrainWait is how long the phone leaves the device to read a packet
// before its first poll: 256 bytes at 1 MHz I2C take 2.35 ms (as
// FirmwareOptions.DrainWait).
const ftmDrainWait = 2500 * time.Microsecond

// ErrFTMAborted is the device's abort status (0x83): its receive buffer
// cannot hold the command.
var ErrFTMAborted = errors.New("st25ftm: the device aborted the command (status 83h: its buffer is too small)")

// writeFirstFTM writes a command's first packet, clearing the mailbox of
// what an earlier exchange left: the status byte closing the previous
// answer not yet taken by the device (waited for), or the unread status or
// answer of a request whose phone was lifted (read out and, for an answer
// segment awaiting its status, aborted with 83h; counted as one stale
// answer). A device posting at the same moment makes the write fail (the
// mailbox is busy, DS §5.3): cleared again and retried.
func (p *Phone) writeFirstFTM(ctx context.Context, first st25ftm.Packet, o ftmOut) error {
	counted := false
	for attempt := 0; ; attempt++ {
		for {
			rf, host, err := p.tag.MailboxPending(ctx)
			if err != nil {
				return fmt.Errorf("poll mailbox: %w", err)
			}
			if !rf && !host {
				break
			}
			if rf { // our last status byte, not yet taken
				if err := waitTimer(ctx, p.pollWait(o.poll)); err != nil {
					return fmt.Errorf("the device did not read the mailbox: %w", err)
				}
				continue
			}
			msg, err := p.tag.ReadMessage(ctx)
			if err != nil {
				return fmt.Errorf("read out an earlier answer: %w", err)
			}
			if !counted {
				counted = true
				p.mu.Lock()
				p.stale++
				p.mu.Unlock()
			}
			if pk, perr := st25ftm.Parse(msg); perr == nil && pk.Ctrl.EndsSegment() {
				if err := p.tag.WriteMessage(ctx, []byte{st25ftm.StatusAbort}); err != nil {
					return fmt.Errorf("abort an earlier answer: %w", err)
				}
			}
		}
		p.lastWrite = time.Now()
		err := p.tag.WriteMessage(ctx, first.Marshal())
		var iso *nfc.ISOError
		if err == nil || !errors.As(err, &iso) || attempt >= 5 {
			if err != nil {
				return fmt.Errorf("write packet 0 of segment 0: %w", err)
			}
			if o.packets != nil {
				*o.packets++
			}
			return nil
		}
		// The device posted first, or the mailbox is off for a moment (an
		// NDEF rewrite, SPEC.md §6): again, after a poll interval.
		if err := waitTimer(ctx, max(p.pollWait(o.poll), time.Millisecond)<<attempt); err != nil {
			return err
		}
	}
}

// receiveFTM receives one command from the device, writing each segment's
// status. A status byte before the first packet is the device's verdict on
// the phone's last segment (PendingAnswer): OK is passed over.
func (p *Phone) receiveFTM(ctx context.Context, poll time.Duration) ([]byte, error) {
	var rx st25ftm.Receiver
	started := false
	for {
		msg, err := p.awaitMessage(ctx, poll)
		if err != nil {
			return nil, err
		}
		if !started && st25ftm.IsStatus(msg) {
			switch msg[0] {
			case st25ftm.StatusOK:
				continue
			case st25ftm.StatusAbort:
				return nil, ErrFTMAborted
			}
			return nil, fmt.Errorf("the device asks the request again (status %02X)", msg[0])
		}
		started = true
		st, complete, ferr := rx.Feed(msg)
		if ferr != nil && st == 0 {
			return nil, ferr
		}
		if st != 0 {
			if err := p.tag.WriteMessage(ctx, []byte{st}); err != nil {
				return nil, fmt.Errorf("write status: %w", err)
			}
		}
		if ferr != nil {
			return nil, ferr // an abort, written: the answer is refused
		}
		if complete {
			return rx.Command(), nil
		}
	}
}

// receiveFTMAnswer receives the device's FTMAnswer command and decodes its
// frame.
func (p *Phone) receiveFTMAnswer(ctx context.Context) (provproto.Frame, error) {
	ans, err := p.receiveFTM(ctx, 0)
	if err != nil {
		return provproto.Frame{}, err
	}
	if len(ans) == 0 || ans[0] != provproto.FTMAnswer {
		return provproto.Frame{}, fmt.Errorf("answer command % X…, want %02X", ans[:min(len(ans), 2)], provproto.FTMAnswer)
	}
	return decodeAnswer(ans[1:])
}

// decodeAnswer decodes an answer frame; an ERROR becomes *provproto.Error.
func decodeAnswer(raw []byte) (provproto.Frame, error) {
	f, err := provproto.Unmarshal(raw)
	if err != nil {
		return provproto.Frame{}, fmt.Errorf("decode answer: %w", err)
	}
	if f.Type == provproto.TypeError {
		return f, provproto.ParseError(f.Body)
	}
	return f, nil
}

// pollWait is the next wait between two polls.
func (p *Phone) pollWait(poll time.Duration) time.Duration {
	if poll > 0 {
		return poll
	}
	return p.opts.Poll
}

// awaitTaken polls until the device has read the phone's message.
func (p *Phone) awaitTaken(ctx context.Context, poll time.Duration) error {
	wait := p.pollWait(poll)
	for {
		rf, host, err := p.tag.MailboxPending(ctx)
		if err != nil {
			return fmt.Errorf("poll mailbox: %w", err)
		}
		if host && !rf {
			// The device speaks mid-segment: only an abort may (its
			// buffer cannot hold the command announced).
			msg, err := p.tag.ReadMessage(ctx)
			if err != nil {
				return fmt.Errorf("read the device's message: %w", err)
			}
			if st25ftm.IsStatus(msg) && msg[0] == st25ftm.StatusAbort {
				return ErrFTMAborted
			}
			return fmt.Errorf("the device posted % X… mid-segment", msg[:min(len(msg), 4)])
		}
		if !rf {
			return nil
		}
		if err := waitTimer(ctx, wait); err != nil {
			return fmt.Errorf("the device did not read the packet: %w", err)
		}
		if poll == 0 {
			wait = min(wait*2, p.opts.PollMax)
		}
	}
}

// awaitMessage polls until the device has posted a message and reads it.
func (p *Phone) awaitMessage(ctx context.Context, poll time.Duration) ([]byte, error) {
	wait := p.pollWait(poll)
	for {
		_, host, err := p.tag.MailboxPending(ctx)
		if err != nil {
			return nil, fmt.Errorf("poll mailbox: %w", err)
		}
		if host {
			return p.tag.ReadMessage(ctx)
		}
		if err := waitTimer(ctx, wait); err != nil {
			return nil, fmt.Errorf("no message from the device: %w", err)
		}
		if poll == 0 {
			wait = min(wait*2, p.opts.PollMax)
		}
	}
}
