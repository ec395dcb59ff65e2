package onboarding

// Onboarding day (issue 15, part 3): an installer taps N devices, one after
// the other, and every one of them joins through ONE gateway on EU868 — how
// long until all are on the network, how many JoinRequests each sends, what
// collides, what the duty-cycle rules cost. Hours of air, so time is
// virtual: the devices and the gateway run as goroutines in a
// testing/synctest bubble on the emulated air (RunOnAir: emulators/radio,
// collision model on), or — for a suite or a benchmark, which get no
// bubble — as a discrete-event loop over the same model (Run), whose
// collision verdicts come from the same code (radio.Medium).
// TestOnboardingDay checks that both give the same figures to the last
// count.
//
// Why not the firmware twin (emulators/stm32wl5): its join (join.go) sends
// at most Config.JoinAttempts JoinRequests 10 s apart (JoinBackoff, "a
// simplification … not enforced by this twin"), at one data rate, on the
// channel DevNonce picks, and answers come from the network server over
// MQTT on real TCP, which a bubble cannot hold (a goroutine blocked on a
// socket is not durably blocked). So the device's join behaviour is
// modelled here, after LoRaMac-node (github.com/Lora-net/LoRaMac-node,
// read at dcbcfb329b4a, Feb 2024, and at tag v4.4.0), and the network as
// ChirpStack + a concentrator would answer.
//
// The device (dayDevice), two firmware generations:
//
//   - LMN470: LoRaMac-node v4.7.0 (Dec 2022) and master (LoRaWAN 1.0.4,
//     RP002; the two agree on all that follows). Data rate: fixed. RegionEU868.c RegionEU868AlternateDr
//     returns currentDr — EU868 has not alternated since v4.4.1 (commit
//     bec887dd "Started to remove the automatic JoinReq trials handling by
//     the MAC layer") — and LoRaMac.c LoRaMacMlmeRequest(MLME_JOIN) takes
//     the application's data rate (LmHandler.c LmHandlerJoinRequest:
//     LmHandlerParams->TxDatarate; periodic-uplink-lpp main.c
//     LORAWAN_DEFAULT_DATARATE DR_0; STM32CubeWL lora_app.h
//     LORAWAN_DEFAULT_DATA_RATE DR_0 per emulators/stm32wl5 mcu.go, the
//     twin's default). Retry: the example applications call LmHandlerJoin
//     again from OnJoinRequest on a failed join (periodic-uplink-lpp
//     main.c), i.e. at once, when RX2 has closed empty or a JoinAccept in
//     RX1 was refused (LoRaMac.c ProcessRadioRxDone stops the RX2 timer on
//     any frame in RX1). No random back-off: LoRaWAN 1.0.3 §7 wants the
//     interval after RX2 random; the only randomness left is the channel.
//     Duty cycle: the time-credit scheme of RegionCommon.c
//     (UpdateTimeCredits, SetMaxTimeCredits, GetDutyCycle,
//     RegionCommonSetBandTxDone, RegionCommonUpdateBandTimeOff). Before the
//     join every band uses duty cycle max(band, BACKOFF_DC_1_HOUR = 100)
//     = 1/100 — the EU868 sub-band g1 limit (EU868_BAND1, 1 %) and the
//     join back-off at once — and holds credits for 3 600 000 ms·100 =
//     36 s of airtime, refilled when its observation period has passed
//     since the last refill or when the period changes: 1 h until 1 h
//     after power-up, 11 h until 11 h, then 8.7 s of airtime
//     (DUTY_CYCLE_TIME_PERIOD_JOIN_BACKOFF_24H = 870 000) per 35 h
//     (BACKOFF_DUTY_CYCLE_24_HOURS_IN_S = 11 h + 24 h: LoRaMac-node
//     compares it with the time since the last refill, so the "24 h"
//     budget comes back every 35 h — more restrictive than LoRaWAN 1.0.3
//     §7 / TR007-1.1 §4.8, "< 8.7 s per 24 h"). A transmission needs credits >
//     airtime·100 (strictly), airtimes in whole ms rounded up
//     (src/radio/sx126x/radio.c RadioTimeOnAir). Without credits a JOIN
//     request fails with LORAMAC_STATUS_DUTYCYCLE_RESTRICTED (LoRaMac.c
//     SendReJoinReq: allowDelayedTx = false for JOIN_REQ), and the join is
//     retried by the application's next uplink tick (LmHandler.c
//     LmHandlerSend: not joined → LmHandlerJoinRequest; periodic-uplink-lpp
//     APP_TX_DUTYCYCLE 5000 ms ± APP_TX_DUTYCYCLE_RND 1000 ms, drawn once
//     at start-up): here, the first tick at or after the refill.
//     (v4.4.1 … v4.6.0 had other credit rules — SetMaxTimeCredits with
//     duty cycles 1/100, 1/1000, 1/10000 by period — not modelled.)
//   - LMN440: LoRaMac-node v4.4.0 and older (LoRaWAN 1.0.2). Data rate by
//     trial (RegionEU868.c RegionEU868AlternateDr(NbTrials) at v4.4.0,
//     NbTrials = JoinRequestTrials + 1, LoRaMac.c OnTxDelayedTimerEvent):
//     DR0 every 48th, DR1 every 32nd, DR2 every 24th, DR3 every 16th, DR4
//     every 8th, else DR5 — 42 of 48 at SF7. The MAC retries by itself
//     (up to NbTrials, EU868 at least 48: the pattern repeats with period
//     48, so a new MLME_JOIN continues it; modelled as one sequence), as
//     soon as the band's time-off allows: TimeOff = airtime·dc − airtime
//     from the last JoinRequest's end (RegionCommon.c v4.4.0
//     RegionCommonCalcBackOff, RegionCommonUpdateBandTimeOff), dc =
//     max(band 100, RegionCommonGetJoinDc: 100 for the first hour, 1000
//     until 11 h, 10000 after), recomputed at each scheduling
//     (CalculateBackOff runs in ScheduleTx).
//
// Both: the channel is drawn uniformly among the three default join
// channels 868.1/868.3/868.5 MHz (RegionEU868NextChannel: randr over the
// enabled channels — all three are in band 1, so all are free or none);
// the JoinRequest is 23 bytes (TS001-1.0.4 §6.2.4); JoinAccept delays 5 s
// and 6 s (RegionCommon.h REGION_COMMON_DEFAULT_JOIN_ACCEPT_DELAY1/2) from
// the end of the uplink; RX2 869.525 MHz DR0 (RegionEU868.h); an empty RX2
// closes after its symbol timeout (RegionCommonComputeRxWindowParameters,
// MinRxSymbols 6, SystemMaxRxError 10 ms: 6 symbols, 196.6 ms at SF12). A
// JoinAccept with JoinNonce 0 is refused when spec.DropJoinNonceZero: the
// stored JoinNonce starts at 0 and must be exceeded
// (USE_10X_JOIN_NONCE_COUNTER_CHECK, which the twin applies — mcu.go
// AcceptFirstJoinNonceZero — though upstream LoRaMacCrypto.h defaults it
// to 0), and ChirpStack gives a fresh device JoinNonce 0 first
// (emulators/chirpstack join.go), so every device needs two JoinRequests
// answered: the fleet suite sees the same (suites/fleet fleet_test.go, fleetStats).
// Each device draws from its own seeded stream (its link budget, its tick
// period, its channels), so what it does does not depend on the order in
// which goroutines wake.
//
// The air: radio's collision model (collision.go; opt-in, Air.SetCollisions)
// — same SF on one channel: lost unless 6 dB stronger; across SFs the
// Goursaud & Gorce SIR table; the gateway demodulates 8 frames at once.
// Each device has its own link budget (Air.SetLinkBudget), drawn uniformly
// in [RSSIMin, RSSIMax] dBm, so captures happen.
//
// The network (dayNetwork): a JoinRequest the gateway demodulated without
// collision, and not while it was transmitting (half-duplex: a
// concentrator receives nothing while it sends — those losses are counted
// as "deaf"), is accepted by the network server, which increments the
// device's JoinNonce (emulators/chirpstack join.go, after ChirpStack's
// join.rs: the counter moves on every accepted JoinRequest, answer sent or
// not) and asks the gateway for a JoinAccept (33 bytes: CFList of
// the five chirpstack-docker extra channels) in RX1 — 5 s after the
// uplink's end, on its channel and data rate (RX1DROffset 0) — or, if the
// gateway refuses that, in RX2 — 6 s, 869.525 MHz SF12 — as ChirpStack's
// rx_window = 0 plans two DownlinkFrame items and the gateway tries them in
// order (emulators/gateway, emulators/chirpstack downlink.go). The gateway
// refuses an item that overlaps one already scheduled, margins included
// (COLLISION_PACKET: chirpstack-concentratord libconcentratord/src/
// jitqueue.rs collision_test, tx_start_delay 1.5 ms + tx_jit_delay 30 ms +
// tx_margin_delay 1 ms — the Semtech packet forwarder's jitqueue.c values
// as remembered, UNCONFIRMED), or one its duty cycle forbids
// (DUTY_CYCLE_OVERFLOW: concentratord regulation/dutycycle.rs Tracker —
// the airtime in the sliding hour before the item's end, plus the item, at
// most the band's limit, for the item and for those scheduled after it;
// etsi_en_300_220.rs: band M 868.0–868.6 MHz 1 % = 36 s/h for RX1, band P
// 869.4–869.65 MHz 10 % = 360 s/h for RX2). Newer concentratord versions
// (regulation/engine/tracker.rs) keep a leaky-bucket load instead — same
// budget and long-run rate, smoother recovery after a burst; which one a
// deployed gateway runs, and which check comes first (here the queue's),
// is UNCONFIRMED. Downlinks are not put on the emulated air
// (no device listens to another's answer; radio does not model downlink
// collisions, and the half-duplex queue never schedules two at once).
//
// Simplifications (state of the model, not of the products):
//   - A tap is the instant the device starts its join: NFC provisioning,
//     HTTPS registration and the key write (seconds; BenchmarkFleet
//     measures them) are folded into the installer's 10–30 s pace.
//   - The MAC starts (LoRaMacInitialization: the join back-off's T0) at the
//     tap unless spec.PoweredBefore says how long before — a device powered
//     at the factory and initialised at boot starts its joins in the 0.01 %
//     period (UNCONFIRMED whether ST's firmware re-initialises the MAC when
//     a key arrives).
//   - One gateway, every device in range at every SF (no sensitivity
//     limit); no other traffic on the band; downlinks always reach the
//     device; the network server answers at once (no deduplication delay,
//     never TOO_LATE); MAC processing takes no time (a retry starts the
//     instant the previous attempt failed; v4.4.0's 1 s MAC state-check
//     tick is not modelled); RX windows open exactly on time.
//   - LMN440's application-level re-join after 48 trials is folded into
//     one sequence (see above).
//   - LoRaMac-node's randr is replaced by a seeded PCG stream per device.
//
// Sources: LoRaMac-node src/mac/region/RegionEU868.c (RegionEU868AlternateDr,
// RegionEU868NextChannel), src/mac/region/RegionCommon.c (as above; v4.4.0:
// RegionCommonGetJoinDc, RegionCommonCalcBackOff,
// RegionCommonUpdateBandTimeOff), src/mac/LoRaMac.c (LoRaMacMlmeRequest,
// SendReJoinReq, ScheduleTx, ProcessRadioRxDone), src/apps/LoRaMac/
// periodic-uplink-lpp/B-L072Z-LRWAN1/main.c (OnJoinRequest,
// APP_TX_DUTYCYCLE); LoRaWAN 1.0.3 §7 / TR007-1.1 §4.8 "Retransmissions
// back-off" (36 s in the first hour, 36 s in the next 10, 8.7 s per 24 h;
// that TS001-1.0.4 §7 says the same is UNCONFIRMED: not read here);
// chirpstack-concentratord libconcentratord (jitqueue.rs,
// regulation/dutycycle.rs, regulation/standard/etsi_en_300_220.rs);
// shared/reference/lorawan-chirpstack.md §2.4 (airtimes: JoinRequest SF7
// 61.696 ms, SF12 1.482752 s; JoinAccept 33 B SF12 1.810432 s).

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
)

// Firmware is the join behaviour of a device (see the file comment).
type Firmware int

const (
	LMN470 Firmware = iota // LoRaMac-node v4.7.0 / master: fixed DR, time credits
	LMN440                 // LoRaMac-node ≤ v4.4.0: DR by trial, time-off
)

func (f Firmware) String() string {
	if f == LMN440 {
		return "lmn-4.4.0"
	}
	return "lmn-4.7.0"
}

// Spec is one onboarding day.
type Spec struct {
	N    int
	Seed uint64
	// TapGapMin and TapGapMax bound the installer's pace: the gap between
	// two taps is uniform in [min, max]. The first tap is at 0.
	TapGapMin, TapGapMax time.Duration
	// TapWindow, when set, replaces the pace: every device is tapped at a
	// uniform instant in [0, TapWindow) — a crew tapping a pallet at once.
	TapWindow time.Duration
	Firmware  Firmware
	// JoinDR is LMN470's join data rate (DR0 = SF12 … DR5 = SF7).
	JoinDR int
	// DropJoinNonceZero: the device refuses a JoinAccept with JoinNonce 0.
	DropJoinNonceZero bool
	// PoweredBefore is how long before its tap the device's MAC started.
	PoweredBefore time.Duration
	// RSSIMin and RSSIMax bound the devices' power at the gateway (dBm).
	RSSIMin, RSSIMax float64
	// Demodulators of the gateway (radio.Collisions.Demodulators).
	Demodulators int
	// Horizon: a device still not joined when an attempt ends after it
	// gives up (and is reported as not joined).
	Horizon time.Duration
}

// Day is the default day: an installer tapping one device every
// 10–30 s, devices as the twin (LoRaMac-node 4.7.0 at DR0, JoinNonce 0
// refused), between −120 and −80 dBm at the gateway (a building or a
// street around one gateway; all above SF7 sensitivity — SX126x
// datasheets give about −124 dBm at SF7/125 kHz, as remembered:
// UNCONFIRMED — so every frame is demodulable at every SF; an assumption,
// not a measurement).
func Day(n int, seed uint64) Spec {
	return Spec{N: n, Seed: seed, TapGapMin: 10 * time.Second, TapGapMax: 30 * time.Second,
		Firmware: LMN470, JoinDR: 0, DropJoinNonceZero: true, RSSIMin: -120, RSSIMax: -80,
		Demodulators: radio.DefaultDemodulators, Horizon: 7 * 24 * time.Hour}
}

// The bounds of a day the model runs: a site's devices, and spans short
// enough that no sum of them (taps, back-offs, the horizon) overflows a
// time.Duration (292 years).
const (
	MaxDevices = 1_000_000
	MaxSpan    = 10 * 365 * 24 * time.Hour
)

// NamedDay is a day with a name for reports.
type NamedDay struct {
	Name string
	Spec Spec
}

// Days are the five days of n devices (seed) that the benchmark and the
// fleet suite play: the default (LoRaMac-node 4.7.0 at DR0, as the twin),
// the same at DR5, LoRaMac-node 4.4.0's data rate by trial, devices whose
// MAC started 12 h before their tap, and a crew tapping all of them within
// 10 minutes.
func Days(n int, seed uint64) []NamedDay {
	dr5 := Day(n, seed)
	dr5.JoinDR = 5
	old := Day(n, seed)
	old.Firmware = LMN440
	powered := Day(n, seed)
	powered.PoweredBefore = 12 * time.Hour
	crew := Day(n, seed)
	crew.TapWindow = 10 * time.Minute
	return []NamedDay{
		{"lmn-4.7.0/DR0", Day(n, seed)},
		{"lmn-4.7.0/DR5", dr5},
		{"lmn-4.4.0/DR-by-trial", old},
		{"lmn-4.7.0/DR0/powered-12h-before", powered},
		{"lmn-4.7.0/DR0/crew-10min", crew},
	}
}

// check refuses a day the model cannot run, before it runs.
func (s Spec) check() error {
	if _, err := airtimes(); err != nil {
		return err
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case s.N < 1 || s.N > MaxDevices:
		return fmt.Errorf("onboarding: %d devices: from 1 to %d", s.N, MaxDevices)
	case s.TapWindow < 0 || s.TapGapMin < 0 || s.TapGapMax < s.TapGapMin:
		return fmt.Errorf("onboarding: pace: gap %v…%v, window %v (gaps from ≥ 0 to ≥ the least, window ≥ 0)", s.TapGapMin, s.TapGapMax, s.TapWindow)
	case s.TapWindow > MaxSpan || s.TapGapMax > MaxSpan/time.Duration(s.N):
		return fmt.Errorf("onboarding: pace: %d taps %v apart at most, or within %v, span more than %v", s.N, s.TapGapMax, s.TapWindow, MaxSpan)
	case s.PoweredBefore > MaxSpan || s.Horizon > MaxSpan:
		return fmt.Errorf("onboarding: powered %v before, horizon %v: each at most %v", s.PoweredBefore, s.Horizon, MaxSpan)
	case !finite(s.RSSIMin) || !finite(s.RSSIMax):
		return fmt.Errorf("onboarding: RSSI %v…%v dBm: numbers, please", s.RSSIMin, s.RSSIMax)
	case s.Firmware != LMN470 && s.Firmware != LMN440:
		return fmt.Errorf("onboarding: firmware %d unknown (LMN470 or LMN440)", int(s.Firmware))
	case s.JoinDR < 0 || s.JoinDR > 5:
		return fmt.Errorf("onboarding: join data rate DR%d: EU868 joins at DR0…DR5", s.JoinDR)
	case s.PoweredBefore < 0:
		return fmt.Errorf("onboarding: powered %v before the tap: not after it", s.PoweredBefore)
	case s.RSSIMin > s.RSSIMax:
		return fmt.Errorf("onboarding: RSSI %v…%v dBm: the least first", s.RSSIMin, s.RSSIMax)
	case s.Demodulators < 1:
		return fmt.Errorf("onboarding: %d demodulators: the gateway needs one", s.Demodulators)
	case s.Horizon <= 0:
		return fmt.Errorf("onboarding: horizon %v: a day must end", s.Horizon)
	}
	return nil
}

func (s Spec) String() string {
	pace := fmt.Sprintf("a tap every %v–%v", s.TapGapMin, s.TapGapMax)
	if s.TapWindow > 0 {
		pace = fmt.Sprintf("all tapped within %v", s.TapWindow)
	}
	dr := fmt.Sprintf("DR%d", s.JoinDR)
	if s.Firmware == LMN440 {
		dr = "DR by trial"
	}
	return fmt.Sprintf("%d devices, %s, %s %s, seed %d", s.N, pace, s.Firmware, dr, s.Seed)
}

// EU868 and LoRaMac-node constants (file comment for sources).
var joinChannels = [...]uint32{868100000, 868300000, 868500000}

const (
	joinRequestBytes = 23
	joinAcceptBytes  = 33
	joinAcceptDelay1 = 5 * time.Second
	joinAcceptDelay2 = 6 * time.Second
	rx2Frequency     = 869525000
	rx2SF            = 12
	minRxSymbols     = 6
	systemMaxRxError = 10 * time.Millisecond
	// Concentrator TX queue: an item needs this much air around the others.
	jitGuard = 1500*time.Microsecond + 30*time.Millisecond + time.Millisecond
	// Gateway duty cycle: a sliding hour per band.
	dutyWindow = time.Hour
	// periodic-uplink-lpp's application timer.
	appTxDutyCycle    = 5000 * time.Millisecond
	appTxDutyCycleRnd = 1000 // ms
	// lmnJoinDC is the pre-join duty cycle of LMN470's band 1:
	// max(EU868_BAND1 100, BACKOFF_DC_1_HOUR 100).
	lmnJoinDC = 100
)

func sfOfDR(dr int) int { return 12 - dr }

// airtimes are the JoinRequest's and the JoinAccept's LoRa time on air at
// SF7…SF12, BW125, CR4/5 (radio.Airtime), computed once; Run and RunOnAir
// return its error before anything else reads them.
var airtimes = sync.OnceValues(func() (t [2][13]time.Duration, err error) {
	for i, n := range [2]int{joinRequestBytes, joinAcceptBytes} {
		for sf := 7; sf <= 12; sf++ {
			if t[i][sf], err = radio.Airtime(radio.Frame{SF: sf, Bandwidth: 125, PHYPayload: make([]byte, n)}); err != nil {
				return t, fmt.Errorf("onboarding: airtime of %d bytes at SF%d: %w", n, sf, err)
			}
		}
	}
	return t, nil
})

// jrAirtime and jaAirtime are the JoinRequest's and the JoinAccept's
// airtime at sf (airtimes: checked by Run and RunOnAir).
func jrAirtime(sf int) time.Duration { t, _ := airtimes(); return t[0][sf] }
func jaAirtime(sf int) time.Duration { t, _ := airtimes(); return t[1][sf] }

// ceilMs is a duration in whole ms rounded up, as LoRaMac-node's
// Radio.TimeOnAir returns it (TimerTime_t).
func ceilMs(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// rx2Timeout is how long an empty RX window at sf stays open: LoRaMac-node
// RegionCommonComputeRxWindowParameters' symbol timeout.
func rx2Timeout(sf int) time.Duration {
	tSym := int64(1<<sf) * 1000000 / 125000 // µs
	n := ((2*minRxSymbols-8)*tSym + 2*systemMaxRxError.Microseconds() + tSym - 1) / tSym
	return time.Duration(max(n, minRxSymbols)*tSym) * time.Microsecond
}

// lmnBand is LMN470's band 1 (868.0–868.6 MHz) before the join: its time
// credits (RegionCommon.c UpdateTimeCredits and friends), in ms × duty
// cycle divisor as there.
type lmnBand struct {
	credits    int64
	lastUpdate time.Duration // LastBandUpdateTime
	lastObs    time.Duration // LastMaxCreditAssignTime
	used       bool          // LastBandUpdateTime != 0
}

// lmnObservation is the join observation period and the credits it grants
// at sinceStart after power-up (whole seconds, elapsedTimeSinceStartup.Seconds).
func lmnObservation(sinceStart time.Duration) (obs time.Duration, maxCredits int64) {
	switch s := sinceStart / time.Second; {
	case s < 3600:
		return 3600 * time.Second, 3600000
	case s < 39600:
		return 39600 * time.Second, 3600000
	default:
		return 126000 * time.Second, 870000
	}
}

// update is UpdateTimeCredits at now.
func (b *lmnBand) update(now, sinceStart time.Duration) {
	obs, maxCredits := lmnObservation(sinceStart)
	if !b.used || obs <= now-b.lastUpdate || b.lastObs != obs {
		b.credits, b.lastUpdate, b.lastObs, b.used = maxCredits, now, obs, true
	}
}

// refillAt is when update will next refill: the observation period since
// the last refill, or the next change of period, whichever comes first.
func (b *lmnBand) refillAt(t0 time.Duration) time.Duration {
	at := b.lastUpdate + b.lastObs
	switch since := b.lastUpdate - t0; {
	case since < 3600*time.Second:
		at = min(at, t0+3600*time.Second)
	case since < 39600*time.Second:
		at = min(at, t0+39600*time.Second)
	}
	return at
}

// lmn440JoinDC is RegionCommonGetJoinDc (v4.4.0).
func lmn440JoinDC(sinceStart time.Duration) int64 {
	switch ms := sinceStart.Milliseconds(); {
	case ms < 3600000:
		return 100
	case ms < 3600000+36000000:
		return 1000
	}
	return 10000
}

// lmn440DR is RegionEU868AlternateDr (v4.4.0) for the attempt-th
// JoinRequest (1-based).
func lmn440DR(attempt int) int {
	n := (attempt-1)%48 + 1
	switch {
	case n%48 == 0:
		return 0
	case n%32 == 0:
		return 1
	case n%24 == 0:
		return 2
	case n%16 == 0:
		return 3
	case n%8 == 0:
		return 4
	}
	return 5
}

// dayDevice is one device's join state. Its methods are the firmware; the
// engines (RunOnAir, Run) call them in the same order at the same
// instants.
type dayDevice struct {
	idx    int
	name   string
	rng    *rand.Rand
	rssi   float64
	tap    time.Duration
	t0     time.Duration // MAC start (join back-off's T0)
	period time.Duration // LMN470 application tick
	fw     Firmware
	joinDR int
	band   lmnBand // LMN470
	// LMN440: the last JoinRequest's end and airtime.
	lastEnd, lastAirtime time.Duration

	attempts int
	heard    []bool // per attempt: the gateway received it (first two kept)
	lastSF   int
	joined   bool
	joinedAt time.Duration
	joinSF   int
	// Duty-cycle waits: the firmware wanted to send and had to wait.
	dcWaits   int
	dcWait    time.Duration
	dcWaitMax time.Duration
}

// nextTX returns when the device sends its next JoinRequest, asked at now
// (its tap, or the instant its previous attempt failed).
func (d *dayDevice) nextTX(now time.Duration) time.Duration {
	at := now
	switch d.fw {
	case LMN470:
		cost := ceilMs(jrAirtime(sfOfDR(d.joinDR))) * lmnJoinDC
		for {
			d.band.update(at, at-d.t0)
			if d.band.credits > cost {
				break
			}
			// DUTYCYCLE_RESTRICTED: the next application tick that finds
			// credits again.
			r := d.band.refillAt(d.t0)
			k := (r - d.t0 + d.period - 1) / d.period
			at = d.t0 + k*d.period
		}
	case LMN440:
		for d.attempts > 0 {
			dc := lmn440JoinDC(at - d.t0)
			t := ceilMs(d.lastAirtime)
			off := d.lastEnd + time.Duration(t*dc-t)*time.Millisecond
			if off <= at {
				break
			}
			at = off
		}
	}
	if w := at - now; w > 0 {
		d.dcWaits++
		d.dcWait += w
		d.dcWaitMax = max(d.dcWaitMax, w)
	}
	return at
}

// joinRequest is the next JoinRequest as the device puts it on the air
// (the air sets RSSI from the device's link budget when RSSI and SNR are 0).
func (d *dayDevice) joinRequest() radio.Frame {
	d.attempts++
	dr := d.joinDR
	if d.fw == LMN440 {
		dr = lmn440DR(d.attempts)
	}
	d.lastSF = sfOfDR(dr)
	ch := joinChannels[d.rng.IntN(len(joinChannels))]
	// The payload's bytes do not matter to the air, only its length.
	return radio.Frame{Uplink: true, Frequency: ch, SF: d.lastSF, Bandwidth: 125,
		PHYPayload: make([]byte, joinRequestBytes), Sender: d.name}
}

// txDone books the JoinRequest that ended at end (RegionCommonSetBandTxDone;
// v4.4.0: LastJoinTxDoneTime and TxTimeOnAir for the next back-off).
func (d *dayDevice) txDone(end, airtime time.Duration) {
	switch d.fw {
	case LMN470:
		d.band.credits = max(d.band.credits-ceilMs(airtime)*lmnJoinDC, 0)
	case LMN440:
		d.lastEnd, d.lastAirtime = end, airtime
	}
}

// settle returns when the attempt whose uplink ended at end is over, and
// whether the device is joined then.
func (d *dayDevice) settle(end time.Duration, dec decision, dropZero bool) (at time.Duration, joined bool) {
	if len(d.heard) < 2 {
		d.heard = append(d.heard, dec.received)
	}
	if dec.slot == 0 {
		return end + joinAcceptDelay2 + rx2Timeout(rx2SF), false
	}
	done := dec.tx.end
	if dropZero && dec.joinNonce == 0 {
		return done, false // refused; a frame in RX1 also cancelled RX2
	}
	d.joined, d.joinedAt, d.joinSF = true, done, d.lastSF
	return done, true
}

// gwTX is one downlink the gateway sends (or has sent).
type gwTX struct {
	start, end time.Duration
	freq       uint32
	sf         int
}

// dutyTracker is a concentrator's duty-cycle tracker for one band
// (concentratord regulation/dutycycle.rs Tracker).
type dutyTracker struct {
	limit time.Duration // per dutyWindow
	items []gwTX
}

// tracked is the airtime of the items within the window ending at t.
func (t *dutyTracker) tracked(at time.Duration) time.Duration {
	var sum time.Duration
	for _, it := range t.items {
		s, e := max(it.start, at-dutyWindow), min(it.end, at)
		if e > s {
			sum += e - s
		}
	}
	return sum
}

// tryInsert is Tracker::try_insert, keeping the item when it fits.
func (t *dutyTracker) tryInsert(item gwTX) bool {
	d := item.end - item.start
	if t.tracked(item.end)+d > t.limit {
		return false
	}
	for _, f := range t.items {
		if f.start > item.start && t.tracked(f.end)+d > t.limit {
			return false
		}
	}
	t.items = slices.DeleteFunc(t.items, func(it gwTX) bool { return it.end < item.start-2*dutyWindow })
	t.items = append(t.items, item)
	return true
}

// decision is the network's answer to one JoinRequest.
type decision struct {
	received  bool   // the gateway got it (no collision, a demodulator, not transmitting)
	slot      int    // 0: no JoinAccept; 1: RX1; 2: RX2
	tx        gwTX   // the JoinAccept
	joinNonce uint32 // its JoinNonce
}

// SFCounts are the figures of one spreading factor.
type SFCounts struct {
	Sent     int           // JoinRequests
	Airtime  time.Duration // their airtime
	Lost     int           // lost to a collision (radio: CollisionLost)
	Captured int           // overlapped and survived (radio: CollisionCaptured)
	NoDemod  int           // not lost, but no demodulator was free
	Deaf     int           // not lost, demodulated, but the gateway was transmitting
	Received int           // reached the network server
	// NoDemodAny counts every frame that found no demodulator, lost or not
	// (radio: CollisionCounts.NoDemodulator).
	NoDemodAny int
	Joins      int // devices whose accepted JoinAccept answered this SF
}

// JoinAccepts are the network's JoinAccepts: sent per receive window, and
// what kept the others from being sent.
type JoinAccepts struct {
	RX1, RX2               int
	RX1Airtime, RX2Airtime time.Duration
	// Refused items (the gateway's TX ack): queue collision or duty cycle,
	// per window; Unanswered: no item could be sent.
	RX1Busy, RX1Duty, RX2Busy, RX2Duty, Unanswered int
	DroppedNonce                                   int // sent, then refused by the device (JoinNonce 0)
}

// dayNetwork is the network server and its one gateway.
type dayNetwork struct {
	spec *Spec
	mu   sync.Mutex
	// joinNonce per device: JoinRequests the network server accepted.
	joinNonce []uint32
	txs       []gwTX // the gateway's downlinks, recent and scheduled
	g1, g3    dutyTracker
	bySF      [13]SFCounts
	ja        JoinAccepts
}

func newDayNetwork(s *Spec) *dayNetwork {
	return &dayNetwork{spec: s, joinNonce: make([]uint32, s.N),
		g1: dutyTracker{limit: dutyWindow / 100}, g3: dutyTracker{limit: dutyWindow / 10}}
}

// uplink is the fate of a JoinRequest f that ended at end, given the air's
// verdict (f.Collision, f.NoDemodulator) and whether the gateway's receiver
// got it (heard). It is called once per JoinRequest, in the order of their
// ends.
func (n *dayNetwork) uplink(dev int, f radio.Frame, end time.Duration, heard bool) decision {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := &n.bySF[f.SF]
	c.Sent++
	c.Airtime += f.Airtime
	if f.Collision == radio.CollisionCaptured {
		c.Captured++
	}
	if f.NoDemodulator > 0 {
		c.NoDemodAny++
	}
	start := end - f.Airtime
	switch {
	case f.Collision == radio.CollisionLost:
		c.Lost++
		return decision{}
	case !heard:
		c.NoDemod++
		return decision{}
	}
	n.txs = slices.DeleteFunc(n.txs, func(t gwTX) bool { return t.end < end-time.Minute })
	for _, t := range n.txs {
		if t.start < end && start < t.end {
			c.Deaf++
			return decision{}
		}
	}
	c.Received++
	dec := decision{received: true, joinNonce: n.joinNonce[dev]}
	n.joinNonce[dev]++
	rx1 := gwTX{start: end + joinAcceptDelay1, freq: f.Frequency, sf: f.SF}
	rx2 := gwTX{start: end + joinAcceptDelay2, freq: rx2Frequency, sf: rx2SF}
	switch {
	case n.schedule(&rx1, &n.g1, &n.ja.RX1Busy, &n.ja.RX1Duty):
		dec.slot, dec.tx = 1, rx1
		n.ja.RX1++
		n.ja.RX1Airtime += rx1.end - rx1.start
	case n.schedule(&rx2, &n.g3, &n.ja.RX2Busy, &n.ja.RX2Duty):
		dec.slot, dec.tx = 2, rx2
		n.ja.RX2++
		n.ja.RX2Airtime += rx2.end - rx2.start
	default:
		n.ja.Unanswered++
	}
	if dec.slot != 0 && n.spec.DropJoinNonceZero && dec.joinNonce == 0 {
		n.ja.DroppedNonce++
	}
	return dec
}

// schedule puts JoinAccept t in the gateway's TX queue if neither the queue
// nor band's duty cycle refuses it (counting the refusal).
func (n *dayNetwork) schedule(t *gwTX, band *dutyTracker, busy, duty *int) bool {
	t.end = t.start + jaAirtime(t.sf)
	for _, o := range n.txs {
		if t.start <= o.end+jitGuard && o.start <= t.end+jitGuard {
			*busy++
			return false
		}
	}
	if !band.tryInsert(*t) {
		*duty++
		return false
	}
	n.txs = append(n.txs, *t)
	return true
}

// onboardingRun is a day's state: its devices and its network.
type onboardingRun struct {
	spec    Spec
	devices []*dayDevice
	net     *dayNetwork
}

// newOnboardingRun draws the taps (from the spec's stream) and each
// device's link budget and tick period (from its own).
func newOnboardingRun(s Spec) *onboardingRun {
	r := &onboardingRun{spec: s}
	r.net = newDayNetwork(&r.spec)
	taps := rand.New(rand.NewPCG(s.Seed, 1<<63))
	var tap time.Duration
	for i := range s.N {
		switch {
		case s.TapWindow > 0:
			tap = time.Duration(taps.Int64N(int64(s.TapWindow)))
		case i > 0:
			tap += s.TapGapMin + time.Duration(taps.Int64N(int64(s.TapGapMax-s.TapGapMin)+1))
		}
		rng := rand.New(rand.NewPCG(s.Seed, uint64(i)))
		d := &dayDevice{idx: i, name: fmt.Sprintf("0080E115%08X", i+1), rng: rng, tap: tap, t0: tap - s.PoweredBefore,
			fw: s.Firmware, joinDR: s.JoinDR}
		d.rssi = s.RSSIMin + (s.RSSIMax-s.RSSIMin)*rng.Float64()
		d.period = appTxDutyCycle + time.Duration(rng.IntN(2*appTxDutyCycleRnd+1)-appTxDutyCycleRnd)*time.Millisecond
		r.devices = append(r.devices, d)
	}
	return r
}

// RunOnAir runs the day on the emulated air, one goroutine per device and
// one for the gateway, on the caller's clock: it must run in a
// testing/synctest bubble (hours of air), where the clock only moves when
// every goroutine waits. It returns the figures and what the air's
// collision model counted.
func RunOnAir(s Spec) (Figures, radio.CollisionStats, error) {
	if !timing.Virtual() {
		return Figures{}, radio.CollisionStats{}, errors.New("onboarding: RunOnAir needs a testing/synctest bubble (hours of air on the wall clock); Run needs none")
	}
	if err := s.check(); err != nil {
		return Figures{}, radio.CollisionStats{}, err
	}
	r := newOnboardingRun(s)
	air := radio.NewAir(timing.NewClock(timing.Realistic))
	air.SetCollisions(radio.Collisions{Enabled: true, Demodulators: s.Demodulators})
	byName := map[string]*dayDevice{}
	replies := make([]chan decision, s.N)
	for i, d := range r.devices {
		air.SetLinkBudget(d.name, d.rssi, 5)
		byName[d.name] = d
		replies[i] = make(chan decision, 1)
	}
	begin := time.Now()
	now := func() time.Duration { return time.Since(begin) }
	until := func(at time.Duration) { time.Sleep(at - now()) }

	// The gateway: every frame the air delivers to it, in the order their
	// ends come.
	frames, stopGateway := air.Listen(true)
	gatewayDone := make(chan struct{})
	go func() {
		defer close(gatewayDone)
		for f := range frames {
			d := byName[f.Sender]
			replies[d.idx] <- r.net.uplink(d.idx, f, f.Time.Sub(begin)+f.Airtime, true)
		}
	}()

	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		sendErr error
	)
	for _, d := range r.devices {
		wg.Go(func() {
			until(d.tap)
			at := d.nextTX(d.tap)
			for {
				until(at)
				sent, err := air.Send(context.Background(), d.joinRequest())
				if err != nil {
					errOnce.Do(func() { sendErr = fmt.Errorf("onboarding: device %s: %w", d.name, err) })
					return
				}
				end := now()
				d.txDone(end, sent.Airtime)
				var dec decision
				if sent.Collision == radio.CollisionLost || sent.NoDemodulator > 0 {
					dec = r.net.uplink(d.idx, sent, end, false) // the gateway never saw it
				} else {
					dec = <-replies[d.idx]
				}
				done, joined := d.settle(end, dec, s.DropJoinNonceZero)
				until(done)
				if joined || done >= s.Horizon {
					return
				}
				at = d.nextTX(done)
			}
		})
	}
	wg.Wait()
	stopGateway()
	<-gatewayDone
	if sendErr != nil {
		return Figures{}, radio.CollisionStats{}, sendErr
	}
	return r.figures(), air.CollisionStats(), nil
}

// Run runs the day as a discrete-event loop: the same devices and
// network, the air's verdicts from radio.Medium, events in time order
// (ties in the order they were scheduled). No clock, no goroutines: what a
// benchmark or a suite can run.
func Run(s Spec) (Figures, radio.CollisionStats, error) {
	if err := s.check(); err != nil {
		return Figures{}, radio.CollisionStats{}, err
	}
	r := newOnboardingRun(s)
	medium := radio.NewMedium(radio.Collisions{Enabled: true, Demodulators: s.Demodulators}, 1)
	epoch := time.Unix(0, 0)
	var q eventQueue
	txs := make([]*radio.Transmission, s.N)
	for _, d := range r.devices {
		q.push(event{at: d.tap, kind: evTap, dev: d.idx})
	}
	for q.Len() > 0 {
		e := q.pop()
		d := r.devices[e.dev]
		switch e.kind {
		case evTap:
			q.push(event{at: d.nextTX(e.at), kind: evStart, dev: d.idx})
		case evStart:
			f := d.joinRequest()
			f.RSSI, f.SNR = d.rssi, 5 // what the air's link budget gives it
			tx, err := medium.Begin(epoch.Add(e.at), f)
			if err != nil {
				return Figures{}, radio.CollisionStats{}, fmt.Errorf("onboarding: device %s: %w", d.name, err)
			}
			txs[d.idx] = tx
			q.push(event{at: e.at + jrAirtime(f.SF), kind: evEnd, dev: d.idx})
		case evEnd:
			f, heard := medium.End(txs[d.idx])
			d.txDone(e.at, f.Airtime)
			dec := r.net.uplink(d.idx, f, e.at, heard[0])
			done, joined := d.settle(e.at, dec, s.DropJoinNonceZero)
			if !joined && done < s.Horizon {
				q.push(event{at: done, kind: evRetry, dev: d.idx})
			}
		case evRetry:
			q.push(event{at: d.nextTX(e.at), kind: evStart, dev: d.idx})
		}
	}
	return r.figures(), medium.Stats(), nil
}

type eventKind int

const (
	evTap eventKind = iota
	evStart
	evEnd
	evRetry
)

type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	dev  int
}

// eventQueue orders events by time, then by scheduling order.
type eventQueue struct {
	h   eventHeap
	seq uint64
}

func (q *eventQueue) Len() int { return len(q.h) }
func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	heap.Push(&q.h, e)
}
func (q *eventQueue) pop() event { return heap.Pop(&q.h).(event) }

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Figures is what a day reports. Two runs of one spec give equal
// figures (reflect.DeepEqual), whichever engine ran them.
type Figures struct {
	N, Joined         int
	FirstTap, LastTap time.Duration
	// AllJoined: first tap → last join (when Joined == N).
	AllJoined time.Duration
	// Attempts: JoinRequests per device (joined or not), histogram.
	Attempts                 map[int]int
	AttemptsMean             float64
	AttemptsP50, AttemptsP99 int
	AttemptsMax              int
	// Tap → join of the joined devices.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	BySF                               [13]SFCounts
	JA                                 JoinAccepts
	// First attempts (pure ALOHA when tapped at once): sent, received;
	// second attempts of the devices whose first was not received: sent,
	// received.
	FirstSent, FirstHeard     int
	SecondAfterLost, SecondOK int
	// Duty-cycle waits of the devices (JoinRequests held back).
	DCWaits   int
	DCWait    time.Duration
	DCWaitMax time.Duration
	// JoinedAt is, per device that joined (in the devices' order), the
	// time from the first tap to its join — the end of the JoinAccept it
	// kept; JoinRequests, per device, how many it
	// sent. What a report plots (reports.Fleet).
	JoinedAt     []time.Duration
	JoinRequests []int
}

// figures sums the run up.
func (r *onboardingRun) figures() Figures {
	f := Figures{N: r.spec.N, Attempts: map[int]int{}, FirstTap: r.devices[0].tap}
	var attempts []int
	var latency []time.Duration
	var lastJoin time.Duration
	sum := 0
	for _, d := range r.devices {
		f.FirstTap, f.LastTap = min(f.FirstTap, d.tap), max(f.LastTap, d.tap)
		f.Attempts[d.attempts]++
		attempts = append(attempts, d.attempts)
		f.JoinRequests = append(f.JoinRequests, d.attempts)
		sum += d.attempts
		if d.joined {
			f.Joined++
			latency = append(latency, d.joinedAt-d.tap)
			lastJoin = max(lastJoin, d.joinedAt)
		}
		if len(d.heard) > 0 {
			f.FirstSent++
			if d.heard[0] {
				f.FirstHeard++
			}
		}
		if len(d.heard) > 1 && !d.heard[0] {
			f.SecondAfterLost++
			if d.heard[1] {
				f.SecondOK++
			}
		}
		f.DCWaits += d.dcWaits
		f.DCWait += d.dcWait
		f.DCWaitMax = max(f.DCWaitMax, d.dcWaitMax)
	}
	for _, d := range r.devices {
		if d.joined {
			f.JoinedAt = append(f.JoinedAt, d.joinedAt-f.FirstTap)
		}
	}
	if f.Joined == f.N {
		f.AllJoined = lastJoin - f.FirstTap
	}
	f.AttemptsMean = float64(sum) / float64(f.N)
	slices.Sort(attempts)
	f.AttemptsP50, f.AttemptsP99, f.AttemptsMax = nearestRank(attempts, 50), nearestRank(attempts, 99), attempts[len(attempts)-1]
	if len(latency) > 0 {
		f.LatencyP50, f.LatencyP99 = percentile(latency, 50), percentile(latency, 99)
		f.LatencyMax = slices.Max(latency)
	}
	r.net.mu.Lock()
	f.BySF, f.JA = r.net.bySF, r.net.ja
	r.net.mu.Unlock()
	for _, d := range r.devices {
		if d.joined {
			f.BySF[d.joinSF].Joins++
		}
	}
	return f
}

// nearestRank is the p-th percentile (nearest rank) of sorted.
func nearestRank[T cmp.Ordered](sorted []T, p float64) T {
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Total is the counts summed over the spreading factors.
func (f Figures) Total() SFCounts {
	var t SFCounts
	for _, c := range f.BySF {
		t.Sent += c.Sent
		t.Airtime += c.Airtime
		t.Lost += c.Lost
		t.Captured += c.Captured
		t.NoDemod += c.NoDemod
		t.Deaf += c.Deaf
		t.Received += c.Received
		t.NoDemodAny += c.NoDemodAny
		t.Joins += c.Joins
	}
	return t
}

// CollisionRate is the share of JoinRequests lost to collisions.
func (f Figures) CollisionRate() float64 {
	t := f.Total()
	return float64(t.Lost) / float64(max(t.Sent, 1))
}

// percentile is the p-th percentile (nearest rank) of d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	l := slices.Clone(d)
	slices.Sort(l)
	return nearestRank(l, p)
}

// Summary is the day's figures as text: the outcome, tap → join, the
// JoinRequests per device, a table per spreading factor, the JoinAccepts
// and the devices' duty-cycle waits.
func (f Figures) Summary(spec Spec) string {
	var s strings.Builder
	fmt.Fprintf(&s, "onboarding day: %s\n", spec)
	fmt.Fprintf(&s, "  taps %v … %v; ", f.FirstTap.Round(time.Second), f.LastTap.Round(time.Second))
	if f.Joined == f.N {
		fmt.Fprintf(&s, "all %d joined %v after the first tap (%.2f h; last tap + %v)\n", f.N, f.AllJoined.Round(time.Second),
			f.AllJoined.Hours(), (f.FirstTap + f.AllJoined - f.LastTap).Round(time.Second))
	} else {
		fmt.Fprintf(&s, "%d of %d joined within the %v horizon\n", f.Joined, f.N, spec.Horizon)
	}
	fmt.Fprintf(&s, "  tap → join: p50 %v, p99 %v, max %v\n", f.LatencyP50.Round(100*time.Millisecond),
		f.LatencyP99.Round(100*time.Millisecond), f.LatencyMax.Round(100*time.Millisecond))
	keys := make([]int, 0, len(f.Attempts))
	for k := range f.Attempts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(&s, "  JoinRequests per device: mean %.2f, p50 %d, p99 %d, max %d; devices by JoinRequests:", f.AttemptsMean,
		f.AttemptsP50, f.AttemptsP99, f.AttemptsMax)
	for _, k := range keys {
		fmt.Fprintf(&s, " %d:%d", k, f.Attempts[k])
	}
	fmt.Fprintf(&s, "\n  %-5s %6s %6s %8s %8s %6s %8s %6s %10s\n", "SF", "sent", "lost", "captured", "no-demod", "deaf", "received", "joins", "airtime")
	for sf, c := range f.BySF {
		if c.Sent > 0 {
			fmt.Fprintf(&s, "  SF%-3d %6d %6d %8d %8d %6d %8d %6d %10v\n", sf, c.Sent, c.Lost, c.Captured, c.NoDemod, c.Deaf, c.Received,
				c.Joins, c.Airtime.Round(time.Millisecond))
		}
	}
	t := f.Total()
	fmt.Fprintf(&s, "  %-5s %6d %6d %8d %8d %6d %8d %6d %10v  (collision rate %.3f)\n", "all", t.Sent, t.Lost, t.Captured, t.NoDemod, t.Deaf,
		t.Received, t.Joins, t.Airtime.Round(time.Millisecond), f.CollisionRate())
	ja := f.JA
	fmt.Fprintf(&s, "  JoinAccepts: RX1 %d (%v), RX2 %d (%v); refused RX1 queue %d duty cycle %d, RX2 queue %d duty cycle %d; unanswered %d; refused by the device (JoinNonce 0) %d\n",
		ja.RX1, ja.RX1Airtime.Round(time.Millisecond), ja.RX2, ja.RX2Airtime.Round(time.Millisecond), ja.RX1Busy, ja.RX1Duty,
		ja.RX2Busy, ja.RX2Duty, ja.Unanswered, ja.DroppedNonce)
	fmt.Fprintf(&s, "  devices' duty-cycle waits: %d JoinRequests held back, %v in all, longest %v", f.DCWaits, f.DCWait.Round(time.Second),
		f.DCWaitMax.Round(time.Second))
	return s.String()
}
