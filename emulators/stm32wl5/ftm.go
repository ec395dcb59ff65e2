package stm32wl5

import (
	"context"
	"fmt"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/proto/st25ftm"
)

// The firmware over ST25FTM (SPEC.md §8), as ST's glue drives the
// middleware (fp-sns-smartag2 st25ftm_process.c): each GPO wake-up reads
// what the phone wrote — a packet of a command, or the status byte of a
// segment the firmware sent — and writes the next thing due: a status byte,
// the next packet of the answer (once the phone has read the previous
// one), nothing while a segment awaits its status. A write the tag refuses
// (the phone wrote first: the mailbox is busy) is kept and retried on the
// next wake-up, as the glue retries a failed I2C access.

// ftmState is the exchange in progress (RAM: a reset loses it).
type ftmState struct {
	rx          st25ftm.Receiver
	out         [][]st25ftm.Packet // the answer's segments
	seg, pkt    int
	awaitStatus bool // the segment's last packet is out: the phone's status byte is next
	busy        bool // between a command's first packet and its answer's last status
	// status is a status byte the tag refused; written on the next wake-up.
	status byte
	// statusEnds: that status closes an exchange with no answer.
	statusEnds bool
}

// FTMBufferSize is the twin's ST25FTM receive buffer: a command byte and
// the largest firmware image (FirmwareSlotSize). A command announcing more
// is aborted with status 83h at its first packet. UNCONFIRMED: ST sizes
// ST25FTM_BUFFER_LENGTH per application; this is the twin's choice.
const FTMBufferSize = 1 + FirmwareSlotSize

// GET_BOARD_INFO (0x00) of ST's demo applications: answered code | 0x80,
// status OK (0x81), then the firmware's name and version, so ST's app can
// identify the board (UNCONFIRMED: the demos' exact info layout).
const (
	ftmGetBoardInfo = 0x00
	ftmStatusOK     = 0x81
	ftmStatusUnkn   = 0x84
)

// serviceFTM handles one wake-up in st25ftm mode; busy says an exchange is
// under way (the NDEF identity must not be rewritten then: it disables the
// mailbox).
func (b *MCU) serviceFTM(ctx context.Context, ctrl, it byte) (busy bool, err error) {
	f := &b.ftm
	if it&itFieldFalling != 0 && f.busy {
		// The phone left mid-exchange: ST's receiver keeps the segment
		// and its sender the answer; the phone resumes when it is back.
		b.logf("st25ftm: field lost mid-exchange (IT_STS_Dyn %02X)", it)
	}
	if f.rx.Max == 0 {
		f.rx.Max = FTMBufferSize
	}
	if ctrl&mbRFPut != 0 {
		msg, err := b.tag.readMessage(ctx)
		if err != nil {
			return true, fmt.Errorf("stm32wl5: read mailbox: %w", err)
		}
		if st25ftm.IsStatus(msg) {
			return b.ftmStatusFromPhone(ctx, msg[0])
		}
		f.busy = true
		b.fwTouch()
		if pk, err := st25ftm.Parse(msg); err == nil && (pk.Ctrl.Position == st25ftm.First || pk.Ctrl.Position == st25ftm.Single) {
			// A new command: what is left of the old exchange — a refused
			// status, an answer the phone never finished — is moot.
			f.status, f.statusEnds, f.out, f.seg, f.pkt, f.awaitStatus = 0, false, nil, 0, 0, false
		}
		st, complete, ferr := f.rx.Feed(msg)
		if ferr != nil {
			b.logf("st25ftm: %v", ferr)
		}
		// A status the tag refuses is kept and written on a later wake-up
		// (ftmWriteStatus); the command is handled all the same, its answer
		// held back until the status is out.
		var werr error
		if st != 0 {
			werr = b.ftmWriteStatus(ctx, st)
		}
		if st == st25ftm.StatusAbort && werr == nil {
			f.busy = false
		}
		if !complete {
			return f.busy, werr
		}
		b.logf("st25ftm: command %d bytes in %d segment(s)", len(f.rx.Command()), f.rx.Segments())
		ans := b.ftmAnswer(ctx, f.rx.Command())
		if err := b.isDead(); err != nil {
			return true, err
		}
		if ans == nil {
			// No answer: the exchange ends with the status (pending or out).
			f.busy, f.statusEnds = f.status != 0, f.status != 0
			return f.busy, werr
		}
		if f.out, err = st25ftm.Segments(ans, st25ftm.FrameDevice, st25ftm.SegmentDefault, true); err != nil {
			f.busy = false
			return false, fmt.Errorf("stm32wl5: st25ftm answer: %w", err)
		}
		f.seg, f.pkt, f.awaitStatus = 0, 0, false
		if st == 0 && f.status == 0 {
			return true, b.ftmWriteNext(ctx)
		}
		return true, werr // the status byte first: the answer once the phone has read it
	}
	if ctrl&mbHostPut != 0 {
		return f.busy, nil // the phone has not read our last message yet
	}
	if f.status != 0 {
		st := f.status
		if err := b.ftmWriteStatus(ctx, st); err != nil {
			return true, err
		}
		if st == st25ftm.StatusAbort || f.statusEnds {
			f.busy, f.statusEnds = false, false // nothing follows the status
		}
		return f.busy, nil
	}
	if len(f.out) > 0 && !f.awaitStatus {
		return true, b.ftmWriteNext(ctx)
	}
	return f.busy, nil
}

// ftmStatusFromPhone takes a status byte the phone wrote: its verdict on
// the answer segment just sent (OK: the next; CRC error: the segment
// again), or an abort, which drops the answer whenever it comes (a phone
// clearing the mailbox of a stale answer, SPEC.md §8).
func (b *MCU) ftmStatusFromPhone(ctx context.Context, st byte) (busy bool, err error) {
	f := &b.ftm
	switch {
	case st == st25ftm.StatusAbort || st != st25ftm.StatusOK && st != st25ftm.StatusCRCError:
		if len(f.out) > 0 {
			b.logf("st25ftm: the phone aborted the answer (%02X)", st)
		}
		f.out, f.busy, f.awaitStatus = nil, false, false
		return false, nil
	case !f.awaitStatus:
		b.logf("st25ftm: status %02X from the phone with no segment awaiting it: ignored", st)
		return f.busy, nil
	}
	f.awaitStatus = false
	if st == st25ftm.StatusCRCError {
		f.pkt = 0 // the whole segment again
		b.logf("st25ftm: the phone asks segment %d again", f.seg)
		return true, b.ftmWriteNext(ctx)
	}
	f.seg, f.pkt = f.seg+1, 0
	if f.seg >= len(f.out) {
		f.out, f.busy = nil, false
		b.mu.Lock()
		b.answerAt = time.Now()
		b.mu.Unlock()
		return false, nil
	}
	return true, b.ftmWriteNext(ctx)
}

// ftmWriteStatus writes a status byte, keeping it for the next wake-up if
// the tag refuses it.
func (b *MCU) ftmWriteStatus(ctx context.Context, st byte) error {
	if err := b.tag.writeMessage(ctx, []byte{st}); err != nil {
		b.ftm.status = st
		return fmt.Errorf("stm32wl5: write st25ftm status %02X (retried): %w", st, err)
	}
	b.ftm.status = 0
	return nil
}

// ftmWriteNext writes the answer's next packet.
func (b *MCU) ftmWriteNext(ctx context.Context) error {
	f := &b.ftm
	p := f.out[f.seg][f.pkt]
	if err := b.tag.writeMessage(ctx, p.Marshal()); err != nil {
		return fmt.Errorf("stm32wl5: write st25ftm packet (retried): %w", err)
	}
	f.pkt++
	if p.Ctrl.EndsSegment() {
		f.awaitStatus = true
	}
	return nil
}

// ftmAnswer answers one ST25FTM command: a tap2join frame (§8), firmware
// data, ST's GET_BOARD_INFO, or "unknown command". nil: no answer.
func (b *MCU) ftmAnswer(ctx context.Context, cmd []byte) []byte {
	if len(cmd) == 0 {
		return nil
	}
	switch cmd[0] {
	case provproto.FTMRequest:
		resp := b.handleFrame(ctx, cmd[1:])
		if resp == nil {
			return nil
		}
		return append([]byte{provproto.FTMAnswer}, resp...)
	case provproto.FTMFirmware:
		// Image data has no answer (§8): FW_END gives the verdict, which
		// counts what arrived.
		if resp, consumed := b.fwData(cmd[1:]); !consumed {
			b.logf("st25ftm: %d bytes of firmware data with no transfer open: dropped", len(cmd)-1)
		} else if resp != nil {
			b.logf("st25ftm: firmware data refused: FW_END will say so")
		}
		return nil
	case ftmGetBoardInfo:
		return fmt.Appendf([]byte{0x80, ftmStatusOK}, "tap2join %d.%d.%d", b.cfg.Firmware[0], b.cfg.Firmware[1], b.cfg.Firmware[2])
	}
	return []byte{cmd[0] | 0x80, ftmStatusUnkn}
}
