package radio

// Bind tells the air which uplink a device's receiver follows: frames, a
// downlink channel from Listen, belongs to the transmitter of uplink seq
// (Frame.Seq as Send returned it). From then on the air delivers to it only
// downlinks answering seq (Frame.ReplyTo), downlinks of unknown origin
// (ReplyTo 0) and EndReply notices for seq.
//
// Why it is faithful: a class-A device opens RX1/RX2 at fixed delays after
// its own uplink, and a gateway transmits the answer to an uplink at that
// uplink's delays (context counter + delay), so an answer to another uplink
// falls outside this device's windows. Instant timing collapses every window
// into one instant; without Bind every device "hears" every other device's
// JoinAccept, and a fleet of N devices costs N² deliveries (and drops, when
// a receiver's queue fills). Uplinks that ended at the same instant would
// collide on a real channel; in Instant timing collisions are not modelled
// either way (collision.go).
//
// A downlink transmitted before Bind (the network answered faster than the
// device bound) reaches every unbound receiver, this one included.
// SendListen has no such gap: it opens the receiver already bound, in the
// step that numbers the uplink.
func (a *Air) Bind(frames <-chan Frame, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bindLocked(frames, seq)
}

// bindLocked moves the downlink listener frames to the receivers of uplink
// seq (0: back to hearing everything). Callers hold a.mu.
func (a *Air) bindLocked(frames <-chan Frame, seq uint64) {
	l, ok := a.byCh[frames]
	if !ok || l.uplink || l.seq == seq {
		return
	}
	a.unlistenLocked(l)
	a.byCh[l.ch] = l
	l.seq = seq
	if seq == 0 {
		a.unbound[l.id] = l
		return
	}
	ls := a.bound[seq]
	if ls == nil {
		ls = map[int]*listener{}
		a.bound[seq] = ls
	}
	ls[l.id] = l
}
