package vpcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Default vpcd endpoints of Debian's /etc/reader.conf.d/vpcd (DEVICENAME
// /dev/null:0x8C7B; vsmartcard ifd-vpcd.c): slot n listens on 35963+n on all
// interfaces.
const (
	DefaultAddr  = "127.0.0.1:35963" // "Virtual PCD 00 00"
	DefaultAddr1 = "127.0.0.1:35964" // "Virtual PCD 00 01"
)

// ReaderName is the PC/SC reader name pcsc-lite gives vpcd slot n.
func ReaderName(slot int) string { return fmt.Sprintf("Virtual PCD 00 %02d", slot) }

// UIDOrder is the byte order of the UID in the GET DATA answer.
type UIDOrder int

const (
	LSBFirst UIDOrder = iota // inventory / Android order: … 02 E0 (default)
	MSBFirst                 // printed order: E0 02 …
)

// Option configures a Card.
type Option func(*Card)

// WithProfile selects the reader behaviour (default ProfileTransparent).
func WithProfile(p Profile) Option { return func(c *Card) { c.rd.profile = p } }

// WithUIDOrder selects the GET DATA UID byte order (default LSBFirst).
func WithUIDOrder(o UIDOrder) Option { return func(c *Card) { c.rd.uidMSB = o == MSBFirst } }

// WithCardName sets the ATR card-name bytes NN NN (default 0000h).
func WithCardName(nn uint16) Option { return func(c *Card) { c.atr = ATR(nn) } }

// WithQuickAck turns the TCP_QUICKACK re-arming off (false) — only to
// demonstrate the ~48 ms Nagle/delayed-ACK trap in a benchmark.
func WithQuickAck(on bool) Option { return func(c *Card) { c.quickAck = on } }

// WithLogf receives one line per unusual event (unknown control byte, vpcd
// closing the connection).
func WithLogf(f func(format string, a ...any)) Option { return func(c *Card) { c.logf = f } }

// Errors of Insert / Remove.
var (
	ErrInserted    = errors.New("pcsc: card already inserted")
	ErrNotAccepted = errors.New("pcsc: vpcd did not take the card")
)

// Card is a tag in a virtual reader: Insert taps it on a vpcd slot, Remove
// lifts it. One Card is in at most one slot at a time; it can be inserted
// again after Remove.
type Card struct {
	atr      []byte
	quickAck bool
	logf     func(string, ...any)

	mu sync.Mutex // serialises APDUs and insertion state
	rd reader

	ins      *insertion
	apdus    atomic.Int64
	controls atomic.Int64
}

// insertion is one TCP connection to vpcd.
type insertion struct {
	conn     *net.TCPConn
	cancel   context.CancelFunc
	done     chan struct{}
	accepted chan struct{}
	removing atomic.Bool
	err      error // why it ended, once done is closed
}

// NewCard returns a card (not inserted) whose RF side is tag.
func NewCard(tag RFTag, opts ...Option) *Card {
	c := &Card{atr: ATR(0), quickAck: true, logf: func(string, ...any) {}}
	c.rd.tag = tag
	for _, o := range opts {
		o(c)
	}
	return c
}

// ATR returns the answer-to-reset the card gives.
func (c *Card) ATR() []byte { return append([]byte(nil), c.atr...) }

// APDUs returns how many command APDUs the card has answered over vpcd.
func (c *Card) APDUs() int64 { return c.apdus.Load() }

// Insert taps the card on the vpcd slot at addr (e.g. DefaultAddr): it
// connects, switches the tag's field on, runs the reader's inventory and
// waits until vpcd takes the connection (its first message, at pcscd's next
// presence poll, ≤ 400 ms). ctx bounds only that wait; a slot that already
// holds a card never takes a second one, which ends in ErrNotAccepted.
//
// That first message is pcscd's presence probe: pcscd powers the card and
// reports it PRESENT only after Insert has returned, so a PC/SC client that
// connects at once may still be told "No smart card inserted". Such a client
// waits for the reader's state (rigs/nfc/pcsc Transport.WaitPresent), and
// after a Remove for the empty state before the next Insert (WaitEmpty): a
// card put back before pcscd has seen the last one go can be taken by vpcd
// with no removal or insertion reported at all.
func (c *Card) Insert(ctx context.Context, addr string) error {
	c.mu.Lock()
	if c.ins != nil {
		c.mu.Unlock()
		return ErrInserted
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("pcsc: insert card at vpcd %s (is pcscd running with vsmartcard-vpcd?): %w", addr, err)
	}
	conn := nc.(*net.TCPConn)
	_ = conn.SetNoDelay(true) // Go's default; said explicitly: replies must not wait
	runCtx, cancel := context.WithCancel(context.Background())
	in := &insertion{conn: conn, cancel: cancel, done: make(chan struct{}), accepted: make(chan struct{})}
	c.ins = in
	c.rd.reset()
	c.rd.uid = nil
	c.rd.tag.FieldOn()
	c.rd.inventory(runCtx)
	c.mu.Unlock()

	go c.serve(runCtx, in)
	select {
	case <-in.accepted:
		return nil
	case <-in.done:
		err := in.err
		_ = c.Remove()
		return fmt.Errorf("%w at %s: %v", ErrNotAccepted, addr, err)
	case <-ctx.Done():
		_ = c.Remove()
		return fmt.Errorf("%w at %s (slot occupied, or pcscd not polling it): %w", ErrNotAccepted, addr, ctx.Err())
	}
}

// Remove lifts the card: the connection closes (pcscd reports the card
// removed within one poll, ≤ 400 ms, later than Remove's return) and the
// tag's field goes off. Removing a card that is not inserted does nothing.
func (c *Card) Remove() error {
	c.mu.Lock()
	in := c.ins
	c.mu.Unlock()
	if in == nil {
		return nil
	}
	in.removing.Store(true)
	in.cancel()
	err := in.conn.Close()
	<-in.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Done is closed when the current insertion ends (Remove, or vpcd dropping
// the connection, e.g. pcscd stopping); nil when not inserted.
func (c *Card) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ins == nil {
		return nil
	}
	return c.ins.done
}

// Transmit answers one command APDU in-process, exactly as over vpcd (for
// unit tests and tools that do not need pcscd).
func (c *Card) Transmit(ctx context.Context, apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rd.process(ctx, apdu)
}

func (c *Card) serve(ctx context.Context, in *insertion) {
	var err error
	defer func() {
		_ = in.conn.Close()
		c.mu.Lock()
		if !in.removing.Load() {
			in.err = err
			if err != nil {
				c.logf("pcsc: card out of the reader: %v", err)
			}
		}
		c.rd.reset()
		c.rd.tag.FieldOff()
		c.ins = nil
		c.mu.Unlock()
		close(in.done)
	}()
	var rearm func()
	if c.quickAck {
		rearm = quickAck(in.conn)
	}
	var once sync.Once
	out := make([]byte, 0, 512)
	for {
		var msg []byte
		msg, err = ReadFrame(in.conn, rearm)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("vpcd closed the connection")
			}
			return
		}
		once.Do(func() { close(in.accepted) })
		var reply []byte
		switch len(msg) {
		case 0:
			// vpcd never sends an empty message; there is nothing to answer.
			c.logf("pcsc: empty vpcd message ignored")
			continue
		case 1:
			c.controls.Add(1)
			switch msg[0] {
			case CtrlGetATR:
				reply = c.atr // answered always, also "powered off" (vpcd.c vicc_present)
			case CtrlPowerOn:
				continue
			case CtrlPowerOff, CtrlReset:
				// pcsc-lite powers the slot on demand (off ~0.4 s after the
				// last client left). The RF field is the tap, not the slot
				// power, so the tag keeps its field; the reader's own state
				// (transparent session, RF-off DO) ends, as on a re-activation.
				c.mu.Lock()
				c.rd.reset()
				c.mu.Unlock()
				continue
			default:
				c.logf("pcsc: unknown vpcd control %02X ignored", msg[0])
				continue
			}
		default:
			c.apdus.Add(1)
			c.mu.Lock()
			reply = c.rd.process(ctx, msg)
			c.mu.Unlock()
		}
		out, err = AppendFrame(out[:0], reply)
		if err != nil {
			out, _ = AppendFrame(out[:0], sw(nil, SWNoDiagnosis))
		}
		if _, err = in.conn.Write(out); err != nil { // one write per reply
			err = fmt.Errorf("write to vpcd: %w", err)
			return
		}
	}
}
