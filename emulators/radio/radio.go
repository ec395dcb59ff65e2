// Package radio is the air between emulated LoRa end devices and gateways.
//
// A transmitter hands a Frame to Air.Transmit; the air computes the frame's
// time on air with the Semtech LoRa formula (brocaar/lorawan/airtime, the same
// formula as the SX126x/SX1302 design guides), accounts it on the timing.Clock
// (sleeping it only in Realistic mode) and then delivers the frame to every
// listener of that direction: gateways listen to uplinks, end devices to
// downlinks. Every frame is also captured for reports.
//
// What is modelled: airtime, direction, frequency/SF/BW/CR as metadata, a
// configurable RSSI/SNR (per air: SetPathLoss; per transmitter:
// SetLinkBudget), the EU868 duty-cycle limits per transmitter and sub-band
// (dutycycle.go; refused or delayed, configurable), a JSON-lines capture of
// every frame (capture.go) and, opt-in (SetCollisions, collision.go),
// collisions of uplinks: overlapping frames on one channel are lost unless
// the capture effect saves one (same SF: 6 dB stronger) or their spreading
// factors are far enough apart for their powers (the SIR table of Goursaud
// & Gorce 2015, as the ns-3 lorawan module tabulates it), and each gateway
// demodulates at most 8 frames at once (SX1301/SX1302's 8 paths) — the
// 6 dB and the 8 are UNCONFIRMED against a Semtech figure (collision.go). The
// collision model needs time to pass: it runs on the Realistic clock (wall
// time, or a testing/synctest bubble's virtual time); in Instant timing
// nothing overlaps and every frame is delivered. What is not: downlink
// collisions, adjacent-channel interference, a received power per gateway,
// frequency or SF filtering (receivers check those themselves, as a real
// radio only demodulates what it was tuned to).
package radio

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/brocaar/lorawan/airtime"

	"github.com/tap2join/tap2join/emulators/timing"
)

// Frame is one LoRa frame on the air.
type Frame struct {
	Time       time.Time // wall-clock start of transmission (set by Transmit when zero)
	Uplink     bool      // true: device → gateway; false: gateway → device
	Frequency  uint32    // Hz
	SF         int       // spreading factor 5..12
	Bandwidth  int       // kHz (125, 250, 500)
	CodeRate   string    // "4/5" … "4/8"; "" means 4/5
	PHYPayload []byte
	RSSI       float64 // dBm at the receiver
	SNR        float64 // dB at the receiver
	Airtime    time.Duration
	// PowerBackoff is how many dB below its maximum the transmitter sends
	// (EU868 TXPower index n: max EIRP − 2n dB, RP002 §2.4.3). The air
	// lowers its default RSSI and SNR by it, so a network's ADR sees the
	// link budget shrink as it turns the power down.
	PowerBackoff float64
	Sender       string // free-form name of the transmitter, for reports
	// DutyCycleDelay is how long the transmission was held back to respect
	// the sub-band's duty cycle (DutyCycleDelay mode; modelled time).
	DutyCycleDelay time.Duration
	// Seq numbers every frame put on this air (set by Send, from 1).
	Seq uint64
	// ReplyTo is, for a downlink, the Seq of the uplink it answers (0 when
	// the transmitter does not know).
	ReplyTo uint64
	// EndOfReply marks a notice, not a frame: the gateway that handled the
	// network's answer to uplink ReplyTo will transmit nothing more for it.
	// See Air.EndReply.
	EndOfReply bool
	// Collision is the collision model's verdict on an uplink
	// (collision.go): CollisionLost, CollisionCaptured, or "" when nothing
	// overlapped it or it was not judged (model off, Instant timing,
	// downlink).
	Collision string
	// NoDemodulator counts the gateways that missed the frame because all
	// their demodulators were busy when it began (collision.go).
	NoDemodulator int
}

// String renders the frame for reports: time, direction, frequency, SF and the
// PHYPayload in hex (PHYPayloads are ciphertext or public join frames; they
// carry no root keys).
func (f Frame) String() string {
	dir := "down"
	if f.Uplink {
		dir = "up"
	}
	return fmt.Sprintf("%s %-4s %.3fMHz SF%dBW%d %s rssi=%.0f snr=%.1f airtime=%s from=%s %s",
		f.Time.Format("15:04:05.000000"), dir, float64(f.Frequency)/1e6, f.SF, f.Bandwidth, f.codeRate(),
		f.RSSI, f.SNR, f.Airtime, f.Sender, hex.EncodeToString(f.PHYPayload))
}

func (f Frame) codeRate() string {
	if f.CodeRate == "" {
		return "4/5"
	}
	return f.CodeRate
}

// Path-loss defaults: a device a few metres from the gateway on a bench.
const (
	DefaultRSSI = -60.0
	DefaultSNR  = 9.0
	// Preamble is the LoRaWAN preamble length in symbols (8 symbols for all
	// LoRa data rates, RP002-1.0.3; section not recorded).
	Preamble = 8
	// listenerBuffer is how many undelivered frames a listener may have
	// queued before the air drops frames for it (a receiver that does not
	// demodulate misses frames, as on a real channel).
	listenerBuffer = 256
	// gatewayListenerBuffer is the same for an uplink listener (a gateway):
	// in instant timing a fleet's JoinRequests arrive as one burst (10,000
	// within seconds), and a gateway's demodulator capacity is not modelled
	// there (nor collisions: collision.go needs Realistic timing), so the
	// wall-clock queue must not drop them. Few gateways listen, so the
	// memory (a few MB each) is bearable.
	gatewayListenerBuffer = 1 << 15
	// replyListenerBuffer is the queue of a receiver opened by SendListen:
	// it hears the answers to one uplink (a network sends one per uplink,
	// in RX1 or RX2; then the EndReply notice) and downlinks of unknown
	// origin (ReplyTo 0: a UDP forwarder's, a class-C command's), which
	// may not take its last replyReserve places, so its own answer and
	// notice always fit. Smaller than a listener's, because a fleet opens
	// one per uplink (a Frame is ~230 bytes: 256 of them per uplink were
	// the fleet's largest allocation).
	replyListenerBuffer = 16
	replyReserve        = 3
)

type listener struct {
	id      int
	uplink  bool
	gateway bool // ListenGateway: calls EndReply for every uplink it receives
	reply   int  // SendListen's receiver: places kept for its own answer (replyReserve)
	ch      chan Frame
	seq     uint64   // Bind: the uplink whose receive windows this receiver follows (0: all)
	rx      receiver // uplink listener: its demodulators (collision.go)
}

// Air is a shared LoRa medium. It is safe for concurrent use.
type Air struct {
	clock *timing.Clock
	start time.Time

	mu        sync.Mutex
	dc        DutyCycle
	offUntil  map[dcKey]time.Duration // end of the off-time per transmitter and sub-band, on the duty-cycle timeline
	capture   *captureSink
	rssi, snr float64
	next      int
	seq       uint64
	// The listeners, indexed so a frame costs the receivers it reaches,
	// not every receiver on the air (a fleet has 10,000 devices, each
	// listening for the answer to its own uplink only: bind.go).
	ups     map[int]*listener            // uplink listeners (gateways)
	unbound map[int]*listener            // downlink listeners hearing every downlink
	bound   map[uint64]map[int]*listener // downlink listeners by the uplink they follow
	byCh    map[<-chan Frame]*listener   // every listener, by its channel
	// awaiting counts, per uplink, the gateways that received it and have
	// not yet said their network's answer is complete (EndReply).
	awaiting map[uint64]int
	captured []Frame
	dropped  int
	coll     *medium               // collision model (collision.go); nil until SetCollisions
	links    map[string][2]float64 // SetLinkBudget: RSSI, SNR per sender
}

// NewAir returns an empty air whose airtime is accounted on clock (nil = instant).
func NewAir(clock *timing.Clock) *Air {
	return &Air{clock: clock, start: time.Now(), rssi: DefaultRSSI, snr: DefaultSNR,
		ups: map[int]*listener{}, unbound: map[int]*listener{}, bound: map[uint64]map[int]*listener{}, byCh: map[<-chan Frame]*listener{},
		offUntil: map[dcKey]time.Duration{}, awaiting: map[uint64]int{}}
}

// SetPathLoss sets the RSSI and SNR given to frames that do not carry their own.
func (a *Air) SetPathLoss(rssi, snr float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rssi, a.snr = rssi, snr
}

// Airtime computes the LoRa time on air of f (explicit header, CRC on, 8-symbol
// preamble, low-data-rate optimisation when the symbol time exceeds 16 ms as
// SX126x requires — SF11/SF12 at 125 kHz).
func Airtime(f Frame) (time.Duration, error) {
	cr, err := parseCodeRate(f.codeRate())
	if err != nil {
		return 0, err
	}
	if f.SF < 5 || f.SF > 12 {
		return 0, fmt.Errorf("radio: spreading factor %d out of range", f.SF)
	}
	if f.Bandwidth <= 0 {
		return 0, fmt.Errorf("radio: bandwidth %d kHz invalid", f.Bandwidth)
	}
	ldro := airtime.CalculateLoRaSymbolDuration(f.SF, f.Bandwidth) > 16*time.Millisecond
	d, err := airtime.CalculateLoRaAirtime(len(f.PHYPayload), f.SF, f.Bandwidth, Preamble, cr, true, ldro)
	if err != nil {
		return 0, fmt.Errorf("radio: airtime: %w", err)
	}
	return d, nil
}

func parseCodeRate(s string) (airtime.CodingRate, error) {
	switch s {
	case "4/5":
		return airtime.CodingRate45, nil
	case "4/6":
		return airtime.CodingRate46, nil
	case "4/7":
		return airtime.CodingRate47, nil
	case "4/8":
		return airtime.CodingRate48, nil
	}
	return 0, fmt.Errorf("radio: unknown code rate %q", s)
}

// Transmit puts f on the air: it checks the transmitter's duty cycle (and,
// per the Air's DutyCycle policy, refuses the frame with a *DutyCycleError or
// holds it back), computes the airtime, spends it on the clock (the frame is
// received when its last symbol is), records the frame and delivers it to the
// listeners of f's direction.
func (a *Air) Transmit(ctx context.Context, f Frame) error {
	_, err := a.Send(ctx, f)
	return err
}

// Send is Transmit returning the frame as it went on the air (with its Seq,
// airtime and time), so a device can match the answers to its uplink.
func (a *Air) Send(ctx context.Context, f Frame) (Frame, error) {
	f, _, err := a.send(ctx, f, false)
	return f, err
}

// SendListen is Send for a class-A transmitter: with the frame it opens a
// receiver bound to it (bind.go) — the answers to this uplink, downlinks of
// unknown origin and the EndReply notice, nothing else. The receiver exists
// from the instant the frame has its Seq, before any gateway hears it, so
// no answer can come before it; stop detaches it (safe to call more than
// once). On error there is no receiver and stop does nothing.
func (a *Air) SendListen(ctx context.Context, f Frame) (sent Frame, frames <-chan Frame, stop func(), err error) {
	sent, l, err := a.send(ctx, f, true)
	if err != nil {
		return sent, nil, func() {}, err
	}
	return sent, l.ch, a.stopper(l), nil
}

func (a *Air) send(ctx context.Context, f Frame, listen bool) (Frame, *listener, error) {
	d, err := Airtime(f)
	if err != nil {
		return f, nil, err
	}
	if err := a.admit(ctx, &f); err != nil {
		return f, nil, err
	}
	f.Airtime = d
	f.PHYPayload = append([]byte(nil), f.PHYPayload...)
	if f.CodeRate == "" {
		f.CodeRate = "4/5"
	}
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	a.mu.Lock()
	if f.RSSI == 0 && f.SNR == 0 {
		rssi, snr := a.linkLocked(f.Sender)
		f.RSSI, f.SNR = rssi-f.PowerBackoff, snr-f.PowerBackoff
	}
	tx := a.beginLocked(f, d) // nil unless collisions are modelled for f
	a.mu.Unlock()
	if err := a.clock.Spend(ctx, d); err != nil {
		a.abortTransmission(tx)
		return f, nil, fmt.Errorf("radio: transmit: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	f.Seq = a.seq
	var rx *listener
	if listen {
		rx = a.listenLocked(false, false, replyListenerBuffer)
		rx.reply = replyReserve
		a.bindLocked(rx.ch, f.Seq)
	}
	a.judgeLocked(tx, &f)
	a.accountLocked(f)
	a.captured = append(a.captured, f)
	a.capture.write(f)
	if !f.Uplink {
		a.deliverDownLocked(f)
		return f, rx, nil
	}
	gateways := 0
	for _, l := range a.ups {
		if !tx.reaches(&l.rx) {
			continue
		}
		select {
		case l.ch <- f:
			if l.gateway {
				gateways++
			}
		default:
			a.dropped++
		}
	}
	if gateways > 1 {
		a.awaiting[f.Seq] = gateways
		for s := range a.awaiting { // bounded: answers come within seconds
			if s+maxAwaiting < f.Seq {
				delete(a.awaiting, s)
			}
		}
	}
	return f, rx, nil
}

// deliverDownLocked hands a downlink (or an EndReply notice) to the
// receivers that hear it: every unbound one, and those bound to the uplink
// it answers — or every bound one when it answers none known (ReplyTo 0).
// Callers hold a.mu.
func (a *Air) deliverDownLocked(f Frame) {
	put := func(l *listener) {
		select {
		case l.ch <- f:
		default:
			a.dropped++
		}
	}
	for _, l := range a.unbound {
		put(l)
	}
	if f.ReplyTo != 0 {
		for _, l := range a.bound[f.ReplyTo] {
			put(l)
		}
		return
	}
	for _, ls := range a.bound {
		for _, l := range ls {
			if len(l.ch) >= cap(l.ch)-l.reply {
				a.dropped++ // the last places are for the receiver's own answer
				continue
			}
			put(l)
		}
	}
}

// maxAwaiting is how many uplinks back EndReply bookkeeping is kept.
const maxAwaiting = 4096

// EndReply tells the devices listening for downlinks that the answer to
// uplink seq is complete: the gateway that got the network's downlink command
// for it has sent (or given up on) every item, and a network server sends one
// command per uplink (to the best gateway). A device may close its receive
// windows for that uplink at once instead of waiting them out — which, in
// Instant timing, is the only way to know "nothing more will come" short of a
// wall-clock cap. Nothing goes on the air and nothing is captured.
//
// When several gateways received the uplink (each possibly serving its own
// network server), the notice goes out when the last of them has called
// EndReply: one network being done says nothing of the others.
func (a *Air) EndReply(seq uint64) {
	if seq == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := a.awaiting[seq]; ok {
		if n > 1 {
			a.awaiting[seq] = n - 1
			return
		}
		delete(a.awaiting, seq)
	}
	a.deliverDownLocked(Frame{EndOfReply: true, ReplyTo: seq})
}

// Listen returns the frames of one direction (uplink=true: what a gateway
// hears; false: what devices hear) transmitted from now on. stop detaches the
// listener and closes the channel; it is safe to call more than once.
func (a *Air) Listen(uplink bool) (frames <-chan Frame, stop func()) {
	return a.listen(uplink, false)
}

// ListenGateway is Listen(true) for a gateway: it promises to call EndReply
// for every uplink it receives once its network's answer is complete (sent,
// or none coming), so devices wait for every gateway that heard them.
func (a *Air) ListenGateway() (frames <-chan Frame, stop func()) {
	return a.listen(true, true)
}

func (a *Air) listen(uplink, gateway bool) (frames <-chan Frame, stop func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	size := listenerBuffer
	if uplink {
		size = gatewayListenerBuffer
	}
	l := a.listenLocked(uplink, gateway, size)
	return l.ch, a.stopper(l)
}

// listenLocked adds an unbound listener. Callers hold a.mu.
func (a *Air) listenLocked(uplink, gateway bool, size int) *listener {
	id := a.next
	a.next++
	l := &listener{id: id, uplink: uplink, gateway: gateway, ch: make(chan Frame, size)}
	if uplink {
		a.ups[id] = l
	} else {
		a.unbound[id] = l
	}
	a.byCh[l.ch] = l
	return l
}

// stopper returns l's stop: detach it and close its channel, once.
func (a *Air) stopper(l *listener) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.unlistenLocked(l)
			close(l.ch)
			a.mu.Unlock()
		})
	}
}

// unlistenLocked removes l from every index. Callers hold a.mu.
func (a *Air) unlistenLocked(l *listener) {
	delete(a.byCh, l.ch)
	if l.uplink {
		delete(a.ups, l.id)
		return
	}
	if l.seq == 0 {
		delete(a.unbound, l.id)
		return
	}
	if ls := a.bound[l.seq]; ls != nil {
		delete(ls, l.id)
		if len(ls) == 0 {
			delete(a.bound, l.seq)
		}
	}
}

// Captured returns every frame transmitted so far, in order.
func (a *Air) Captured() []Frame {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Frame, len(a.captured))
	for i, f := range a.captured {
		f.PHYPayload = append([]byte(nil), f.PHYPayload...)
		out[i] = f
	}
	return out
}

// Receivers returns how many receivers are open: uplink ones (gateways) and
// downlink ones (devices, bound to an uplink or not). A receiver nobody
// reads still takes a copy of every frame until its queue fills, so tests
// use this to see that what opens receivers closes them.
func (a *Air) Receivers() (uplink, downlink int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ups), len(a.byCh) - len(a.ups)
}

// Dropped returns how many deliveries were dropped because a listener's queue
// was full.
func (a *Air) Dropped() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropped
}
