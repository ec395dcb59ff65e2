package chirpstack

import (
	"bytes"
	"slices"

	"github.com/brocaar/lorawan"
)

// Device sessions are kept by DevEUI and indexed by DevAddr, as ChirpStack
// finds them: storage/device.rs get_for_phypayload_and_incr_f_cnt_up
// selects the devices whose dev_addr (or secondary_dev_addr) is the
// uplink's, then checks each one's MIC. An uplink costs its candidates, not
// every session on the server — a fleet of 10,000 devices made the full
// scan the server's hottest loop.

// putSessionLocked makes ds its device's session, replacing the previous
// one (and its DevAddr). Callers hold s.mu.
func (s *Server) putSessionLocked(ds *session) {
	s.dropSessionLocked(ds.devEUI)
	s.sessions[ds.devEUI] = ds
	set := s.byAddr[ds.devAddr]
	if set == nil {
		set = map[lorawan.EUI64]*session{}
		s.byAddr[ds.devAddr] = set
	}
	set[ds.devEUI] = ds
}

// dropSessionLocked forgets eui's session. Callers hold s.mu.
func (s *Server) dropSessionLocked(eui lorawan.EUI64) {
	old, ok := s.sessions[eui]
	if !ok {
		return
	}
	delete(s.sessions, eui)
	if set := s.byAddr[old.devAddr]; set != nil {
		delete(set, eui)
		if len(set) == 0 {
			delete(s.byAddr, old.devAddr)
		}
	}
}

// sessionsByAddrLocked returns the sessions holding addr, by DevEUI (a
// stable order, so which of two sessions sharing a DevAddr and a key is
// tried first does not depend on map iteration). Callers hold s.mu.
func (s *Server) sessionsByAddrLocked(addr lorawan.DevAddr) []*session {
	set := s.byAddr[addr]
	out := make([]*session, 0, len(set))
	for _, ds := range set {
		out = append(out, ds)
	}
	slices.SortFunc(out, func(a, b *session) int { return bytes.Compare(a.devEUI[:], b.devEUI[:]) })
	return out
}
