package chirpstack

import (
	"github.com/brocaar/lorawan"
)

// ADR as ChirpStack v4 runs it by default (network.adr_disabled = false,
// device profile adr_algorithm_id "default"): chirpstack/src/adr/default.rs
// decides, downlink/data.rs _request_adr_change sends the LinkADRReq,
// maccommand/link_adr.rs applies the LinkADRAns, uplink/data.rs keeps the
// history. EU868 region defaults (chirpstack-docker region_eu868.toml):
// installation_margin 10 dB, min_dr 0, max_dr 5, TX power indexes 0..7.
const (
	adrInstallationMargin = 10.0
	adrMaxDR              = 5 // also the highest 125 kHz LoRa data rate of EU868
	adrMaxTXPowerIdx      = 7
	adrHistoryLen         = 20 // required_history_count
)

// adrHistory is one uplink_adr_history entry.
type adrHistory struct {
	fCnt         uint32
	maxSNR       float32
	txPowerIndex int
}

// adrState is the ADR part of a device session.
type adrState struct {
	adr          bool // the last uplink's FCtrl.ADR
	dr           int  // the data rate of the last uplink
	txPowerIndex int
	nbTrans      int
	channels     []int // enabled_uplink_channel_indices
	history      []adrHistory
	pending      *lorawan.LinkADRReqPayload // sent, not yet answered
	// maxPowerIdx is max_supported_tx_power_index: lowered when the device
	// NACKs a TX power (0 = the region's).
	maxPowerIdx int
}

// adrUplinkLocked takes the uplink's ADR bit and data rate (set_adr,
// set_uplink_data_rate), before its MAC commands are handled.
func (s *Server) adrUplinkLocked(ds *session, u *uplinkCtx, adr bool) {
	a := &ds.adr
	a.adr = adr
	// The node changed its data rate, maybe resetting its TX power: reset
	// the TX power and the history on the network side too.
	if a.dr != u.dr {
		a.txPowerIndex = 0
		a.history = nil
	}
	a.dr = u.dr
}

// adrHistoryLocked appends the uplink to the ADR history
// (append_meta_data_to_uplink_history), after its MAC commands — a
// LinkADRAns among them has set the TX power this uplink counts under.
func (s *Server) adrHistoryLocked(ds *session, u *uplinkCtx, fCnt uint32) {
	a := &ds.adr
	if n := len(a.history); n > 0 && a.history[n-1].fCnt == fCnt {
		return // a re-transmission
	}
	var best float32
	for i, rx := range u.rxInfos {
		if i == 0 || rx.GetSnr() > best {
			best = rx.GetSnr()
		}
	}
	a.history = append(a.history, adrHistory{fCnt: fCnt, maxSNR: best, txPowerIndex: a.txPowerIndex})
	if len(a.history) > adrHistoryLen {
		a.history = a.history[len(a.history)-adrHistoryLen:]
	}
}

// adrAnsLocked applies a LinkADRAns to the pending LinkADRReq (link_adr.rs):
// all three ACKs → the request's DR, TX power, NbTrans and channels (the
// history restarts when any of them changed); a device with ADR off that
// ACKs the channel mask → channels and NbTrans, DR and power as ACKed.
func (s *Server) adrAnsLocked(ds *session, ans *lorawan.LinkADRAnsPayload) {
	a := &ds.adr
	req := a.pending
	if req == nil {
		s.logf("chirpstack: dev_eui=%s: LinkADRAns without a pending LinkADRReq", ds.devEUI)
		return
	}
	a.pending = nil
	chans := enabledChannels(req)
	switch {
	case ans.ChannelMaskACK && ans.DataRateACK && ans.PowerACK:
		if a.txPowerIndex != int(req.TXPower) || a.dr != int(req.DataRate) || a.nbTrans != int(req.Redundancy.NbRep) {
			a.history = nil
		}
		a.txPowerIndex, a.dr, a.nbTrans, a.channels = int(req.TXPower), int(req.DataRate), int(req.Redundancy.NbRep), chans
	case !a.adr && ans.ChannelMaskACK:
		a.channels, a.nbTrans = chans, int(req.Redundancy.NbRep)
		if ans.DataRateACK {
			a.dr = int(req.DataRate)
		}
		if ans.PowerACK {
			a.txPowerIndex = int(req.TXPower)
		}
	default:
		s.logf("chirpstack: dev_eui=%s: LinkADRReq not acknowledged (ch_mask %t, dr %t, tx_power %t)",
			ds.devEUI, ans.ChannelMaskACK, ans.DataRateACK, ans.PowerACK)
		if !ans.PowerACK && req.TXPower == 0 {
			a.txPowerIndex = 1
		}
		// The device may not support every TX power index: try one lower
		// next time (and lower again at the next NACK).
		if !ans.PowerACK && req.TXPower > 0 {
			a.maxPowerIdx = int(req.TXPower) - 1
		}
	}
}

func enabledChannels(req *lorawan.LinkADRReqPayload) []int {
	var out []int
	for i, on := range req.ChMask {
		if on {
			out = append(out, int(req.Redundancy.ChMaskCntl)*16+i)
		}
	}
	return out
}

// adrRequestLocked runs the default algorithm for the uplink just received
// and returns the LinkADRReq to send, or nil when nothing changes.
func (s *Server) adrRequestLocked(ds *session) *lorawan.LinkADRReqPayload {
	a := &ds.adr
	dr, power, nb := a.dr, a.txPowerIndex, a.nbTrans
	if !a.adr {
		return nil // the algorithm returns the current values
	}
	if dr > adrMaxDR {
		dr = adrMaxDR
	}
	nb = adrNbTrans(a.nbTrans, adrPacketLoss(a.history))
	req, ok := 0.0, false
	if a.dr <= adrMaxDR { // EU868 DR0..5 = SF12..7 at 125 kHz (DR6 is SF7/250, DR7 FSK)
		var r float32
		r, ok = requiredSNR(12 - a.dr)
		req = float64(r)
	}
	if ok {
		maxSNR := float32(-999)
		for _, h := range a.history {
			maxSNR = max(maxSNR, h.maxSNR)
		}
		step := int((float64(maxSNR) - req - adrInstallationMargin) / 3) // Rust `as isize` truncates toward zero
		count := 0
		for _, h := range a.history {
			if h.txPowerIndex == a.txPowerIndex {
				count++
			}
		}
		maxPower := adrMaxTXPowerIdx
		if a.maxPowerIdx != 0 {
			maxPower = a.maxPowerIdx
		}
		if step >= 0 || count == adrHistoryLen {
			power, dr = adrIdeal(step, power, dr, maxPower)
		}
	}
	if dr == a.dr && power == a.txPowerIndex && nb == a.nbTrans {
		return nil
	}
	p := &lorawan.LinkADRReqPayload{DataRate: uint8(dr), TXPower: uint8(power), Redundancy: lorawan.Redundancy{NbRep: uint8(nb)}}
	cntl := -1
	for _, i := range a.channels {
		if cntl < 0 {
			cntl = i / 16
		} else if cntl != i/16 {
			break // one block of channels only
		}
		p.ChMask[i%16] = true
	}
	p.Redundancy.ChMaskCntl = uint8(max(cntl, 0))
	a.pending = p
	return p
}

// adrIdeal is get_ideal_tx_power_index_and_dr.
func adrIdeal(step, power, dr, maxPower int) (int, int) {
	for step != 0 {
		if step > 0 {
			if dr < adrMaxDR {
				dr++
			} else if power < maxPower {
				power++ // a higher index is a lower power
			}
			step--
		} else {
			power = max(power-1, 0)
			step++
		}
	}
	return power, dr
}

// adrNbTrans is get_nb_trans.
func adrNbTrans(cur int, lossPct float32) int {
	table := [4][3]int{{1, 1, 2}, {1, 2, 3}, {2, 3, 3}, {3, 3, 3}}
	i := min(max(cur, 1), 3) - 1
	switch {
	case lossPct < 5:
		return table[0][i]
	case lossPct < 10:
		return table[1][i]
	case lossPct < 30:
		return table[2][i]
	}
	return table[3][i]
}

// adrPacketLoss is get_packet_loss_percentage: 0 until the history is full.
func adrPacketLoss(h []adrHistory) float32 {
	if len(h) < adrHistoryLen {
		return 0
	}
	var lost uint32
	for i := 1; i < len(h); i++ {
		lost += h[i].fCnt - h[i-1].fCnt - 1
	}
	return float32(lost) / float32(len(h)) * 100
}
