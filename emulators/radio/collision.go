package radio

import (
	"math"
	"slices"
	"time"

	"github.com/tap2join/tap2join/emulators/timing"
)

// Collisions (opt-in: Air.SetCollisions).
//
// Two uplinks on the same channel that overlap in time interfere. Whether
// one of them is still demodulated depends on its signal-to-interference
// ratio (SIR, dB) and on the spreading factors of the pair:
//
//   - Same SF: a frame survives only if it is stronger than the interference
//     by at least the co-channel capture threshold, 6 dB (the diagonal of the
//     table below). Two frames of equal power are both lost; of two frames
//     7 dB apart the stronger survives; 5 dB apart, both are lost.
//   - Different SFs are quasi-orthogonal: Semtech calls them orthogonal
//     (SX1276/77/78/79 datasheet Rev. 4, §4.1.1.2, under Table 13: "different
//     spreading factors are orthogonal to each other"), but the rejection is
//     finite: the weaker frame survives unless the interferer exceeds it by
//     more than the inter-SF rejection of that (wanted, interferer) pair.
//
// The thresholds are Goursaud & Gorce's ("Dedicated networks for IoT:
// PHY/MAC state of the art and challenges", EAI Endorsed Transactions on
// Internet of Things, 2015), as the ns-3 lorawan module tabulates them
// (signetlabdei/lorawan, doc/lorawan.rst "Link model", and
// model/lora-interference-helper.cc collisionSnirGoursaud: rows are the
// wanted frame's SF, columns the interferer's; a frame is received if its
// SIR is at least the entry — the paper's co-channel rejection figures with
// the sign inverted). Goursaud & Gorce derive them from Semtech SX1272
// datasheet figures (UNCONFIRMED: the paper itself was not read here).
//
// Each gateway demodulates a bounded number of frames at once: the SX1301
// "scans the 8 channels (IF0 to IF7) for preambles of all data rates at all
// times. The chip is able to demodulate simul[taneously] …" (SX1301
// datasheet, IF0–IF7 section, as quoted in the RAKwireless forum thread
// "Gateway Capacity Question"; the copy read here breaks off before the
// number — UNCONFIRMED there — but the ns-3 lorawan module documents the
// SX1301's "8 parallel receive paths", citing the same datasheet); the
// SX1302 has "8 x SF5-SF12" plus "8 x SF5-SF10" LoRa demodulators, of which
// "the 8 others are still taking care of the SF7-SF12 traffic" (SX1302
// datasheet, General Description) — 8 again for LoRaWAN's SF7–SF12. As in
// ns-3, a demodulator locks on a frame when it starts and stays busy until
// the frame ends, whatever becomes of the frame; a frame that starts while
// all of a gateway's demodulators are busy is lost for that gateway (and
// still interferes with the others).
//
// How the air decides. Every uplink is registered when it starts (its
// start is the clock's now, its end start + airtime) and judged when it
// ends, under the Air's lock: by then every frame that started before its
// end is registered, so the verdict needs no look-ahead and does not depend
// on which goroutine wakes first at a shared instant (intervals are
// half-open: a frame starting exactly when another ends does not overlap
// it). Demodulator occupancy is counted the same way, from the intervals, so
// a frame starting at the instant another ends finds that demodulator free.
// This works on the Realistic clock, on wall time or on the virtual time of
// a testing/synctest bubble (timing.Virtual), where it is exact. In Instant
// timing no time passes — every frame would overlap every other — so
// collisions are not modelled there and every frame is delivered as before.
//
// Interferers are summed per spreading factor (linear power, mW) before the
// SIR is compared with the table, as ns-3 groups them; but where ns-3 sums
// energy weighted by the overlapping time, this air sums power, as if the
// overlapping interferers of one SF were on at once: any overlap counts in
// full. That is exact for the two-frame case the thresholds describe, errs
// on the side of losses for three and more, and gives pure ALOHA
// (S = G·e^(−2G), checked by TestPureALOHAThroughput) when every frame has
// the same SF and power.
//
// Not modelled: downlink collisions (downlinks are delivered as without the
// model, and do not occupy or deafen a gateway's receiver, though a real
// half-duplex gateway hears nothing while it transmits); interference
// between adjacent channels or between different bandwidths on one channel
// (the table is for one bandwidth; frames of different bandwidths are taken
// not to interfere); SF5/SF6 against other SFs (outside the table: taken as
// orthogonal; same SF uses CaptureThresholdDB); a received power per
// gateway (every gateway hears a frame at its Frame.RSSI); which channels a
// gateway is tuned to (every uplink occupies a demodulator of every uplink
// listener, which filters frequencies itself afterwards).

// DefaultDemodulators is how many frames a gateway demodulates at once
// (SX1301/SX1302, see above).
const DefaultDemodulators = 8

// CaptureThresholdDB is the co-channel capture threshold for two frames of
// the same SF: the wanted frame must be this much stronger than the
// interference. Goursaud & Gorce's diagonal; a Semtech datasheet figure for
// LoRa-on-LoRa co-channel rejection was not found (UNCONFIRMED: the SX1272/73
// datasheet Rev. 2 §2.5.5 lists CCR_LCW for a single CW tone, not a LoRa
// interferer; the SX1301 datasheet V2.4 advertises "CCR up to 9 dB" without
// conditions).
const CaptureThresholdDB = 6.0

// SIRTable gives, for a wanted frame of SF 7+i and an interferer of SF 7+j,
// the SIR (dB) at or above which the wanted frame survives: [i][j].
type SIRTable [6][6]float64

// GoursaudSIR is the default SIRTable (Goursaud & Gorce 2015, as tabulated
// by ns-3 lorawan; see above). Rows: wanted SF7..SF12; columns: interferer
// SF7..SF12. E.g. [0][5] = −20: an SF7 frame survives an SF12 interferer up
// to 20 dB stronger than itself; [5][0] = −36: an SF12 frame survives an
// SF7 interferer up to 36 dB stronger.
var GoursaudSIR = SIRTable{
	// interferer: SF7, SF8, SF9, SF10, SF11, SF12
	{6, -16, -18, -19, -19, -20}, // wanted SF7
	{-24, 6, -20, -22, -22, -22}, // SF8
	{-27, -27, 6, -23, -25, -25}, // SF9
	{-30, -30, -30, 6, -26, -28}, // SF10
	{-33, -33, -33, -33, 6, -29}, // SF11
	{-36, -36, -36, -36, -36, 6}, // SF12
}

// threshold returns the SIR a frame of SF wanted needs against interferers
// of SF interferer, and false when they do not interfere (different SFs
// outside SF7–SF12, which the table does not cover).
func (t *SIRTable) threshold(wanted, interferer int) (float64, bool) {
	in := func(sf int) bool { return sf >= 7 && sf <= 12 }
	if in(wanted) && in(interferer) {
		return t[wanted-7][interferer-7], true
	}
	if wanted == interferer {
		return CaptureThresholdDB, true
	}
	return 0, false
}

// Collisions configures the collision model (Air.SetCollisions).
type Collisions struct {
	// Enabled turns the model on. Off (the zero value), every frame reaches
	// every listener of its direction, as an Air always did.
	Enabled bool
	// Demodulators is how many frames each uplink listener (gateway)
	// demodulates at once; 0 means DefaultDemodulators. Air.SetDemodulators
	// overrides it for one listener.
	Demodulators int
	// SIR replaces GoursaudSIR when set.
	SIR *SIRTable
}

// Verdicts of the collision model (Frame.Collision, CaptureRecord.Collision).
const (
	// CollisionLost: the frame overlapped a frame it could not reject and
	// reached no gateway.
	CollisionLost = "lost"
	// CollisionCaptured: the frame overlapped others and survived them.
	CollisionCaptured = "captured"
)

// CollisionCounts counts the uplinks the collision model judged.
type CollisionCounts struct {
	Uplinks  int // judged (ended while the model was on, Realistic timing)
	Collided int // lost to interference
	Captured int // overlapped by others, and survived
	// NoDemodulator counts (frame, gateway) pairs: a frame that started
	// while all of that gateway's demodulators were busy.
	NoDemodulator int
}

func (c *CollisionCounts) add(tx *transmission) {
	c.Uplinks++
	switch tx.verdict {
	case CollisionLost:
		c.Collided++
	case CollisionCaptured:
		c.Captured++
	}
	c.NoDemodulator += tx.noDemod
}

// CollisionStats is what the collision model has counted on an Air.
type CollisionStats struct {
	Total CollisionCounts
	BySF  map[int]CollisionCounts // per spreading factor of the judged frame
}

// receiver is one uplink listener's demodulators.
type receiver struct {
	demodulators int             // 0: the air's
	locked       []*transmission // frames it locked on, pruned as they end
}

// transmission is one uplink on the air, from its start until no frame
// still on the air overlaps it.
type transmission struct {
	freq       uint32
	sf, bw     int
	mw         float64 // received power, mW
	start, end time.Time
	done       bool        // judged (or aborted)
	heard      []*receiver // gateways that locked a demodulator on it
	noDemod    int         // gateways that had none free
	verdict    string      // "", CollisionLost, CollisionCaptured
}

// reaches reports whether the frame is delivered to r; a nil transmission
// (not modelled) reaches everyone.
func (tx *transmission) reaches(r *receiver) bool {
	return tx == nil || (tx.verdict != CollisionLost && slices.Contains(tx.heard, r))
}

// medium is the collision model's state. The Air's lock guards it.
type medium struct {
	cfg   Collisions
	onAir []*transmission
	stats CollisionStats
}

func dBmToMW(dBm float64) float64 { return math.Pow(10, dBm/10) }

// sirEpsilonDB absorbs the rounding of the dBm → mW → dB round trip, so a
// frame exactly at a threshold (−74 against −80 dBm: 6 dB) meets it.
const sirEpsilonDB = 1e-9

// begin registers an uplink starting at at with the given airtime and
// received power, locking a demodulator of each receiver that has one free.
func (m *medium) begin(at time.Time, f Frame, airtime time.Duration, rxs []*receiver) *transmission {
	tx := &transmission{freq: f.Frequency, sf: f.SF, bw: f.Bandwidth, mw: dBmToMW(f.RSSI), start: at, end: at.Add(airtime)}
	for _, r := range rxs {
		r.locked = slices.DeleteFunc(r.locked, func(o *transmission) bool { return !o.end.After(at) })
		n := r.demodulators
		if n <= 0 {
			n = m.cfg.Demodulators
		}
		if n <= 0 {
			n = DefaultDemodulators
		}
		if len(r.locked) < n {
			r.locked = append(r.locked, tx)
			tx.heard = append(tx.heard, r)
		} else {
			tx.noDemod++
		}
	}
	m.onAir = append(m.onAir, tx)
	return tx
}

// end judges tx at its end: against every frame on the same channel and
// bandwidth whose interval overlaps its own, summed per SF.
func (m *medium) end(tx *transmission) {
	sir := m.cfg.SIR
	if sir == nil {
		sir = &GoursaudSIR
	}
	var interference [13]float64 // mW per interferer SF (index = SF)
	overlapped := false
	for _, o := range m.onAir {
		if o == tx || o.freq != tx.freq || o.bw != tx.bw || !o.start.Before(tx.end) || !tx.start.Before(o.end) {
			continue
		}
		overlapped = true
		if o.sf >= 0 && o.sf < len(interference) {
			interference[o.sf] += o.mw
		}
	}
	if overlapped {
		tx.verdict = CollisionCaptured
		for sf, mw := range interference {
			th, ok := sir.threshold(tx.sf, sf)
			if mw == 0 || !ok {
				continue
			}
			if 10*math.Log10(tx.mw/mw) < th-sirEpsilonDB {
				tx.verdict = CollisionLost
				break
			}
		}
	}
	tx.done = true
	m.stats.Total.add(tx)
	if m.stats.BySF == nil {
		m.stats.BySF = map[int]CollisionCounts{}
	}
	c := m.stats.BySF[tx.sf]
	c.add(tx)
	m.stats.BySF[tx.sf] = c
	m.prune()
}

// abort ends tx at at without a verdict (its transmitter gave up, e.g. its
// context ended): it interfered until then.
func (m *medium) abort(tx *transmission, at time.Time) {
	if at.Before(tx.end) {
		tx.end = at
	}
	tx.done = true
	m.prune()
}

// prune forgets judged frames no frame still on the air can overlap: a
// frame starts at the clock's now, after every judged frame has ended, so
// only the frames already on the air can overlap a judged one.
func (m *medium) prune() {
	var earliest time.Time
	for _, o := range m.onAir {
		if !o.done && (earliest.IsZero() || o.start.Before(earliest)) {
			earliest = o.start
		}
	}
	m.onAir = slices.DeleteFunc(m.onAir, func(o *transmission) bool {
		return o.done && (earliest.IsZero() || !o.end.After(earliest))
	})
}

// SetCollisions sets the collision model. A frame that started while the
// model was on is judged when it ends (by the setting then); one that
// started while it was off is delivered as without the model. The counts
// are kept across changes.
func (a *Air) SetCollisions(c Collisions) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.coll == nil {
		a.coll = &medium{}
	}
	a.coll.cfg = c
}

// SetDemodulators sets how many frames the uplink listener frames (a
// channel from Listen(true) or ListenGateway) demodulates at once; n ≤ 0
// restores the air's setting (Collisions.Demodulators).
func (a *Air) SetDemodulators(frames <-chan Frame, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.byCh[frames]; ok && l.uplink {
		l.rx.demodulators = max(n, 0)
	}
}

// CollisionStats returns what the collision model has counted so far.
func (a *Air) CollisionStats() CollisionStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.coll == nil {
		return CollisionStats{BySF: map[int]CollisionCounts{}}
	}
	s := a.coll.stats
	s.BySF = make(map[int]CollisionCounts, len(a.coll.stats.BySF))
	for sf, c := range a.coll.stats.BySF {
		s.BySF[sf] = c
	}
	return s
}

// SetLinkBudget gives the frames of one transmitter (Frame.Sender) the RSSI
// and SNR they arrive with, in place of the air's SetPathLoss default, when
// the frame carries none (Frame.RSSI and SNR both 0); PowerBackoff still
// lowers both. Devices at different distances from the gateway can then
// capture each other's frames.
func (a *Air) SetLinkBudget(sender string, rssi, snr float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.links == nil {
		a.links = map[string][2]float64{}
	}
	a.links[sender] = [2]float64{rssi, snr}
}

// linkLocked returns the RSSI and SNR a frame from sender arrives with when
// it carries none. Callers hold a.mu.
func (a *Air) linkLocked(sender string) (rssi, snr float64) {
	if l, ok := a.links[sender]; ok {
		return l[0], l[1]
	}
	return a.rssi, a.snr
}

// beginLocked registers f with the collision model when the model applies
// to it (on, uplink, Realistic timing); nil otherwise. Callers hold a.mu.
func (a *Air) beginLocked(f Frame, airtime time.Duration) *transmission {
	if a.coll == nil || !a.coll.cfg.Enabled || !f.Uplink || a.clock.Mode() != timing.Realistic {
		return nil
	}
	rxs := make([]*receiver, 0, len(a.ups))
	for _, l := range a.ups {
		rxs = append(rxs, &l.rx)
	}
	return a.coll.begin(time.Now(), f, airtime, rxs)
}

// judgeLocked judges tx at its end and records the verdict on f. Callers
// hold a.mu.
func (a *Air) judgeLocked(tx *transmission, f *Frame) {
	if tx == nil {
		return
	}
	a.coll.end(tx)
	f.Collision, f.NoDemodulator = tx.verdict, tx.noDemod
}

// abortTransmission ends tx early (its Spend failed).
func (a *Air) abortTransmission(tx *transmission) {
	if tx == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.coll.abort(tx, time.Now())
}
