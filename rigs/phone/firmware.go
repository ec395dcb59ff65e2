package phone

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
)

// The phone side of the firmware transfer extension (SPEC.md §7): FW_BEGIN,
// raw chunks written back to back — each as soon as the device has read the
// previous one out of the mailbox, no answer per chunk — then FW_END and the
// device's SHA-256 verdict.

// MailboxPoller is the part of a Tag that reads the two PUT bits of
// MB_CTRL_Dyn in one status read, for streaming and ST25FTM's pacing.
type MailboxPoller interface {
	// MailboxPending reads MB_CTRL_Dyn: rf = the phone's message is still
	// unread by the device (RF_PUT_MSG), host = the device has posted one
	// (HOST_PUT_MSG).
	MailboxPending(ctx context.Context) (rf, host bool, err error)
}

// FirmwareOptions tune SendFirmware.
type FirmwareOptions struct {
	// Chunk is the number of image bytes per mailbox message: 256 (default,
	// a whole mailbox, what a PC/SC reader sends) or 241 for an Android
	// phone's largest addressed Write Message (SPEC.md §1).
	Chunk int
	// DrainWait is how long the phone waits after each chunk before its
	// first MB_CTRL_Dyn poll: the device's GPO wake-up plus its I2C read of
	// the chunk. A poll on the air earlier only delays the device (the tag
	// NACKs I2C while RF is busy, DS §5.3). Default 2.5 ms: 256 bytes at
	// 1 MHz I2C (Fm+) take 2.35 ms (9 SCL clocks per byte; DS13519 Table 250). At 400 kHz use ≈ 6 ms.
	DrainWait time.Duration
	// Progress, if set, is called after every chunk the device has taken.
	Progress func(FirmwareProgress)
	// Profile paces the transfer as a real phone or reader does (its poll
	// interval and the gap between commands; Chunk unless set); nil is this
	// framework's phone, as fast as the RF link allows.
	Profile *Profile
}

// FirmwareProgress is the state of a running transfer.
type FirmwareProgress struct {
	Sent, Size int           // image bytes the device has taken, of Size
	Elapsed    time.Duration // since FW_BEGIN was written
}

// FirmwareResult is the outcome of a transfer the device verified.
type FirmwareResult struct {
	Size   int
	SHA256 [32]byte
	// Resumed is the offset the device asked to resume from (0: fresh).
	Resumed int
	Chunks  int
	// Wall is the whole transfer, FW_BEGIN written to FW_RESULT read.
	Wall time.Duration
	// Polls is the number of MB_CTRL_Dyn reads while streaming.
	Polls int
}

// BytesPerSecond is the image throughput over the whole transfer.
func (r FirmwareResult) BytesPerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Size-r.Resumed) / r.Wall.Seconds()
}

// SendFirmware streams image to the device (SPEC.md §7) and returns once the
// device has confirmed the image's SHA-256. Errors name the stage and offset.
func (p *Phone) SendFirmware(ctx context.Context, image []byte, opts FirmwareOptions) (FirmwareResult, error) {
	poller := p.tag
	if opts.Profile != nil && opts.Chunk <= 0 {
		opts.Chunk = opts.Profile.Chunk
	}
	if opts.Chunk <= 0 || opts.Chunk > provproto.MaxChunk {
		opts.Chunk = provproto.MaxChunk
	}
	if opts.DrainWait <= 0 {
		opts.DrainWait = 2500 * time.Microsecond
	}
	sum := sha256.Sum256(image)
	res := FirmwareResult{Size: len(image), SHA256: sum}
	begin, err := provproto.FWBegin{Size: uint32(len(image)), SHA256: sum}.Marshal()
	if err != nil {
		return res, fmt.Errorf("phone: firmware: %w", err)
	}
	start := time.Now()
	f, err := p.Exchange(ctx, begin)
	if err != nil {
		return res, fmt.Errorf("phone: firmware: FW_BEGIN: %w", err)
	}
	if f.Type != provproto.TypeFWReady {
		return res, fmt.Errorf("phone: firmware: FW_BEGIN: device answered %s", f.Type)
	}
	off, err := provproto.ParseFWReady(f.Body)
	if err != nil {
		return res, fmt.Errorf("phone: firmware: FW_READY: %w", err)
	}
	if int(off) > len(image) {
		return res, fmt.Errorf("phone: firmware: device resumes at %d, beyond the %d-byte image", off, len(image))
	}
	res.Resumed = int(off)
	if p.opts.MailboxProtocol == MailboxST25FTM {
		if err := p.sendFirmwareFTM(ctx, image, int(off), opts, start, &res); err != nil {
			return res, err
		}
	}
	var lastWrite time.Time
	for sent := int(off); sent < len(image) && p.opts.MailboxProtocol != MailboxST25FTM; {
		n := min(opts.Chunk, len(image)-sent)
		if pr := opts.Profile; pr != nil && !lastWrite.IsZero() {
			// The app's own pacing between two commands.
			if err := waitPrecisely(ctx, time.Until(lastWrite.Add(pr.CommandGap))); err != nil {
				return res, fmt.Errorf("phone: firmware: chunk at %d: %w", sent, err)
			}
		}
		lastWrite = time.Now()
		if err := p.tag.WriteMessage(ctx, image[sent:sent+n]); err != nil {
			return res, fmt.Errorf("phone: firmware: chunk at %d: %w", sent, err)
		}
		res.Chunks++
		polls, err := p.awaitDrained(ctx, poller, opts.DrainWait, opts.Profile)
		res.Polls += polls
		if err != nil {
			return res, fmt.Errorf("phone: firmware: chunk at %d: %w", sent, err)
		}
		sent += n
		if opts.Progress != nil {
			opts.Progress(FirmwareProgress{Sent: sent, Size: len(image), Elapsed: time.Since(start)})
		}
	}
	f, err = p.Exchange(ctx, provproto.MarshalFWEnd())
	if err != nil {
		return res, fmt.Errorf("phone: firmware: FW_END: %w", err)
	}
	res.Wall = time.Since(start)
	if f.Type != provproto.TypeFWResult {
		return res, fmt.Errorf("phone: firmware: FW_END: device answered %s", f.Type)
	}
	r, err := provproto.ParseFWResult(f.Body)
	if err != nil {
		return res, fmt.Errorf("phone: firmware: FW_RESULT: %w", err)
	}
	if r.Status != provproto.OK {
		return res, fmt.Errorf("phone: firmware: device verdict %s", r)
	}
	if r.SHA256 != sum || int(r.Size) != len(image) {
		return res, fmt.Errorf("phone: firmware: device confirmed %s, sent %d bytes sha256 %x", r, len(image), sum[:8])
	}
	return res, nil
}

// sendFirmwareFTM sends image[off:] as one ST25FTM command (SPEC.md §8):
// FTMFirmware, then the data, in packets of opts.Chunk bytes; progress per
// acknowledged segment. The transfer has ReplyTimeout per segment (plus
// one), field-loss waits included; res.Chunks counts the packets written.
func (p *Phone) sendFirmwareFTM(ctx context.Context, image []byte, off int, opts FirmwareOptions, start time.Time, res *FirmwareResult) error {
	cmd := append([]byte{provproto.FTMFirmware}, image[off:]...)
	segs := (len(cmd) + st25ftm.SegmentDefault - 5) / (st25ftm.SegmentDefault - 4)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(segs+1)*p.opts.ReplyTimeout)
	defer cancel()
	o := ftmOut{frame: opts.Chunk, packets: &res.Chunks}
	if pr := opts.Profile; pr != nil {
		o.gap, o.poll = pr.CommandGap, pr.Poll
	}
	o.progress = func(confirmed int) {
		if opts.Progress != nil {
			opts.Progress(FirmwareProgress{Sent: off + max(confirmed-1, 0), Size: len(image), Elapsed: time.Since(start)})
		}
	}
	if err := p.sendFTM(ctx, cmd, o); err != nil {
		return fmt.Errorf("phone: firmware: data from %d: %w", off, p.ftmErr(ctx, "firmware data", err))
	}
	return nil
}

// awaitDrained waits until the device has read the chunk out of the
// mailbox: first DrainWait, then MB_CTRL_Dyn polls backing off from
// Options.Poll to Options.PollMax, for at most Options.ReplyTimeout. A
// message from the device instead (HOST_PUT_MSG) is its ERROR: read and
// returned.
func (p *Phone) awaitDrained(ctx context.Context, poller MailboxPoller, first time.Duration, pr *Profile) (polls int, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ReplyTimeout)
	defer cancel()
	wait := first
	if pr != nil {
		wait = max(first, pr.Poll) // an app polls on its own clock
	}
	for {
		if err := waitPrecisely(ctx, wait); err != nil {
			return polls, fmt.Errorf("device did not read the chunk within %v: %w", p.opts.ReplyTimeout, err)
		}
		rf, host, err := poller.MailboxPending(ctx)
		polls++
		if err != nil {
			return polls, fmt.Errorf("poll mailbox: %w", err)
		}
		if host {
			return polls, p.deviceError(ctx)
		}
		if !rf {
			return polls, nil
		}
		switch {
		case pr != nil:
			wait = pr.Poll
		case wait == first:
			wait = p.opts.Poll
		default:
			wait = min(wait*2, p.opts.PollMax)
		}
	}
}

// timerSlack is the granularity of Go's timers on Linux (the netpoller waits
// in whole milliseconds): a 2.5 ms timer fires after ≈ 3–3.5 ms, which would
// cost 1 ms per chunk, 1.2 % of the throughput.
const timerSlack = 1500 * time.Microsecond

// waitPrecisely waits d: a timer for all but the last timerSlack, then
// yielding on the monotonic clock. The drain wait is a poll schedule worked
// out from the device's I2C time; precision keeps it what it says. On a
// virtual clock (a testing/synctest bubble: suites/ftm) a timer waits it
// all — it fires exactly at the deadline, and a yielding loop would never
// see that clock move.
func waitPrecisely(ctx context.Context, d time.Duration) error {
	if virtualClock() {
		return waitTimer(ctx, d)
	}
	deadline, coarse := time.Now().Add(d), d-timerSlack
	if coarse > 0 {
		if err := waitTimer(ctx, coarse); err != nil {
			return err
		}
	}
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return nil
}

// virtualClock reports whether the calling goroutine runs in a
// testing/synctest bubble, whose time.Now carries no monotonic reading (as
// emulators/timing.Virtual, which this package does not import).
func virtualClock() bool {
	now := time.Now()
	return now == now.Round(0)
}

// deviceError reads the message the device posted in the middle of a stream.
func (p *Phone) deviceError(ctx context.Context) error {
	raw, err := p.tag.ReadMessage(ctx)
	if err != nil {
		return fmt.Errorf("read the device's message: %w", err)
	}
	f, err := provproto.Unmarshal(raw)
	if err != nil {
		return fmt.Errorf("decode the device's message: %w", err)
	}
	if f.Type == provproto.TypeError {
		return provproto.ParseError(f.Body)
	}
	return fmt.Errorf("device posted %s in the middle of the stream", f.Type)
}

// MailboxPending makes NFCTag a MailboxPoller.
func (t nfcTag) MailboxPending(ctx context.Context) (rf, host bool, err error) {
	st, err := t.d.MailboxStatus(ctx)
	if err != nil {
		return false, false, err
	}
	return st.RFPut, st.HostPut, nil
}

// waitTimer waits d on a timer, or until ctx ends.
func waitTimer(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
