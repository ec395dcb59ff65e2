package chirpstack

import (
	"fmt"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Data uplinks (chirpstack/src/uplink/data.rs, storage/device_session.rs):
// find the session by DevAddr whose MIC verifies with the reconstructed 32-bit
// FCnt, apply the frame-counter rules, decrypt FRMPayload, publish `up`, then
// answer in RX1/RX2 with an ACK and/or the next queued downlink.

// fullFCnt reconstructs the 32-bit counter from the 16 bits on air, relative to
// the next expected value, as ChirpStack does (storage/device.rs
// get_full_f_cnt_up): the previous value is a re-transmission; anything else
// is taken as a forward gap of up to 65,535 frames. A counter that went
// back (a reset) is recognised when the MIC fails with that value and
// passes with the 16 bits alone (processDataUp tries both).
func fullFCnt(next uint32, f16 uint32) uint32 {
	if uint16(f16) == uint16(next)-1 {
		return next - 1
	}
	return next + uint32(uint16(f16)-uint16(next))
}

// handleDataUp is uplink/data.rs _handle: the uplink's events (status, up,
// ack) are published first; then, after network.get_downlink_data_delay —
// time for the application to enqueue a reply to this very uplink — the
// class-A answer is built from the queue as it is then
// (start_downlink_data_flow).
func (s *Server) handleDataUp(u *uplinkCtx, phy lorawan.PHYPayload) {
	evs, ans, err := s.processDataUp(u, phy)
	if err != nil {
		s.logf("chirpstack: data uplink: %v", err)
	}
	s.publishEvents(evs)
	if ans == nil {
		return
	}
	delay := s.cfg.DownlinkDataDelay
	if delay <= 0 {
		delay = 100 * time.Millisecond
	}
	t := time.NewTimer(delay) // the server's own wait, not a test's
	select {
	case <-t.C:
	case <-s.done:
		t.Stop()
		return
	}
	s.mu.Lock()
	eui := ans.ds.devEUI
	if s.closed || s.sessions[eui] != ans.ds || s.devices[eui] != ans.dev {
		// Deactivated, deleted or rejoined meanwhile: ChirpStack's
		// downlink flow would find no such session and send nothing.
		s.mu.Unlock()
		return
	}
	items, ctx, evs, err := s.buildClassADownlinkLocked(u, ans)
	s.mu.Unlock()
	s.publishEvents(evs)
	if err != nil {
		s.logf("chirpstack: data downlink: dev_eui=%s: %v", ans.ds.devEUI, err)
		return
	}
	if len(items) > 0 {
		if err := s.sendDownlink(u, items, ctx); err != nil {
			s.logf("chirpstack: data downlink: %v", err)
		}
	}
}

// classAAnswer is what the downlink flow of one data uplink needs.
type classAAnswer struct {
	ds        *session
	dev       *deviceRow
	ackUplink bool   // a confirmed uplink: ACK it
	upFCnt    uint32 // its full FCnt
	mac       []lorawan.MACCommand
	mustSend  bool // ADRACKReq (or a MAC answer that needs a downlink): answer even if empty
}

func (s *Server) processDataUp(u *uplinkCtx, phy lorawan.PHYPayload) ([]pendingEvent, *classAAnswer, error) {
	mac, ok := phy.MACPayload.(*lorawan.MACPayload)
	if !ok {
		return nil, nil, fmt.Errorf("no MACPayload")
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var ds *session
	var full uint32
	f16 := mac.FHDR.FCnt
	for _, cand := range s.sessionsByAddrLocked(mac.FHDR.DevAddr) {
		if ds != nil {
			break
		}
		var confFCnt uint32
		if mac.FHDR.FCtrl.ACK {
			confFCnt = cand.confFCnt
		}
		// The full counter, then the 16 bits as sent (a reset looks like a
		// forward gap to fullFCnt).
		for _, f := range []uint32{fullFCnt(cand.fCntUp, f16), f16} {
			mac.FHDR.FCnt = f // brocaar needs the full counter for the MIC block B0
			ok, err := phy.ValidateUplinkDataMIC(cand.macVersion, confFCnt, uint8(u.dr), uint8(u.channel),
				cand.keys.FNwkSIntKey, cand.keys.SNwkSIntKey)
			if err == nil && ok {
				ds, full = cand, f
				break
			}
		}
	}
	if ds == nil {
		return nil, nil, fmt.Errorf("dev_addr=%s: no device-session with matching MIC (Invalid MIC or unknown DevAddr)", mac.FHDR.DevAddr)
	}
	dev := s.devices[ds.devEUI]
	app := (*applicationRow)(nil)
	if dev != nil {
		app = s.apps[dev.pb.ApplicationId]
	}
	if dev == nil || app == nil {
		return nil, nil, fmt.Errorf("dev_eui=%s: session without device", ds.devEUI)
	}
	if !s.filterRxByTenantLocked(u, app.pb.TenantId) {
		return nil, nil, fmt.Errorf("RxInfo set is empty after applying filters")
	}
	if dev.pb.IsDisabled {
		return nil, nil, fmt.Errorf("dev_eui=%s: device is disabled", ds.devEUI)
	}

	// Frame-counter validation (device_session.rs ValidationStatus).
	if full < ds.fCntUp && !ds.skipFCntCheck {
		if full+1 == ds.fCntUp {
			ev := s.logEventLocked(dev, integration.LogLevel_WARNING, integration.LogCode_UPLINK_F_CNT_RETRANSMISSION,
				"Uplink was flagged as re-transmission / frame-counter did not increment",
				map[string]string{"deduplication_id": u.dedupID, "f_cnt_up": fmt.Sprint(full)})
			return []pendingEvent{ev}, nil, fmt.Errorf("dev_eui=%s: retransmission f_cnt=%d", ds.devEUI, full)
		}
		ev := s.logEventLocked(dev, integration.LogLevel_WARNING, integration.LogCode_UPLINK_F_CNT_RESET,
			"Frame-counter reset or rollover detected",
			map[string]string{"deduplication_id": u.dedupID, "f_cnt_up": fmt.Sprint(full)})
		return []pendingEvent{ev}, nil, fmt.Errorf("dev_eui=%s: frame-counter reset f_cnt=%d < %d", ds.devEUI, full, ds.fCntUp)
	}
	ds.fCntUp = full + 1
	dev.lastSeen = u.time

	var evs []pendingEvent
	var data []byte
	var fPort uint32
	if mac.FPort != nil {
		fPort = uint32(*mac.FPort)
		key := ds.keys.AppSKey
		if *mac.FPort == 0 {
			key = ds.keys.NwkSEncKey // FPort 0: MAC commands under NwkSKey / NwkSEncKey
		}
		if err := phy.DecryptFRMPayload(key); err != nil {
			return nil, nil, fmt.Errorf("dev_eui=%s: decrypt FRMPayload: %w", ds.devEUI, err)
		}
		if *mac.FPort != 0 && len(mac.FRMPayload) == 1 {
			if dp, ok := mac.FRMPayload[0].(*lorawan.DataPayload); ok {
				data = dp.Bytes
			}
		}
	}

	cmds, err := uplinkMACCommands(&phy, ds)
	if err != nil {
		s.logf("chirpstack: dev_eui=%s: %v", ds.devEUI, err)
	}
	// uplink/data.rs order: ADR flag and data rate, MAC commands, then the
	// ADR history, then the downlink's own MAC commands.
	s.adrUplinkLocked(ds, u, mac.FHDR.FCtrl.ADR)
	// reset_channels_on_activation_or_adr_ack_req: an ADRACKReq (or a
	// session without channels) puts the device back on the region's
	// default channels; NewChannelReq and the channel mask re-sync it.
	if mac.FHDR.FCtrl.ADRACKReq || len(ds.adr.channels) == 0 {
		ds.adr.channels = s.band.GetStandardUplinkChannelIndices()
		ds.extraChans = map[int]uint32{}
	}
	macAns, macEvs := s.handleUplinkMACLocked(u, ds, dev, cmds)
	evs = append(evs, macEvs...) // status events come before up (handle_mac_commands)
	s.adrHistoryLocked(ds, u, full)
	macOut := s.requestMACLocked(ds, dev, u.time, macAns)

	rxInfos := make([]*gw.UplinkRxInfo, len(u.rxInfos))
	copy(rxInfos, u.rxInfos)
	evs = append(evs, pendingEvent{appID: dev.pb.ApplicationId, devEUI: ds.devEUI, typ: "up", msg: &integration.UplinkEvent{
		DeduplicationId: u.dedupID,
		Time:            timestamppb.New(u.time),
		DeviceInfo:      s.deviceInfoLocked(dev),
		DevAddr:         ds.devAddr.String(),
		Adr:             mac.FHDR.FCtrl.ADR,
		Dr:              uint32(u.dr),
		FCnt:            full,
		FPort:           fPort,
		Confirmed:       phy.MHDR.MType == lorawan.ConfirmedDataUp,
		Data:            data,
		RxInfo:          rxInfos,
		TxInfo:          u.txInfo,
		RegionConfigId:  s.region,
	}})

	// A device ACK settles the pending confirmed downlink: the ack event
	// follows up (handle_uplink_ack after send_uplink_event).
	if len(dev.queue) > 0 && dev.queue[0].pending && dev.queue[0].confirmed {
		qi := dev.queue[0]
		dev.queue = dev.queue[1:]
		evs = append(evs, pendingEvent{appID: dev.pb.ApplicationId, devEUI: ds.devEUI, typ: "ack", msg: &integration.AckEvent{
			DeduplicationId: u.dedupID, Time: timestamppb.New(u.time), DeviceInfo: s.deviceInfoLocked(dev),
			QueueItemId: qi.id, Acknowledged: mac.FHDR.FCtrl.ACK, FCntDown: qi.fCntDown,
		}})
	}

	return evs, &classAAnswer{
		ds: ds, dev: dev, ackUplink: phy.MHDR.MType == lorawan.ConfirmedDataUp, upFCnt: full, mac: macOut,
		// ADRACKReq: ChirpStack always answers (handle_response must_send).
		mustSend: mac.FHDR.FCtrl.ADRACKReq || u.mustSend,
	}, nil
}

// handleTxAck processes a gateway's DownlinkTxAck (downlink/tx_ack.rs). On
// OK the item the gateway sent counts: an unconfirmed queue item it carried
// is removed, a confirmed one becomes pending (conf_f_cnt = its FCnt) until
// the device ACKs it, the application counter (1.0: the only counter) moves
// past the frame's FCnt and a txack event goes out; an item without
// application payload moves n_f_cnt_down. Without any OK item the downlink
// failed: a DOWNLINK_GATEWAY log event says why and nothing moves (the next
// answer goes out with the same FCnt).
func (s *Server) handleTxAck(ack *gw.DownlinkTxAck) {
	s.mu.Lock()
	dl, ok := s.downlinks[ack.GetDownlinkId()]
	if !ok {
		s.mu.Unlock()
		s.logf("chirpstack: tx ack for unknown downlink %d", ack.GetDownlinkId())
		return
	}
	delete(s.downlinks, ack.GetDownlinkId())
	var evs []pendingEvent
	dev := s.devices[dl.devEUI]
	okIdx := -1
	lastErr := gw.TxAckStatus_IGNORED
	for i, it := range ack.GetItems() {
		if it.GetStatus() == gw.TxAckStatus_OK {
			okIdx = i
			break
		}
		if it.GetStatus() != gw.TxAckStatus_IGNORED {
			lastErr = it.GetStatus()
		}
	}
	ds := s.sessions[dl.devEUI]
	switch {
	case dev == nil:
	case okIdx < 0:
		evs = append(evs, s.logEventLocked(dev, integration.LogLevel_ERROR, integration.LogCode_DOWNLINK_GATEWAY,
			lastErr.String(), map[string]string{"deduplication_id": dl.dedupID, "downlink_id": fmt.Sprint(ack.GetDownlinkId())}))
	case !dl.data || ds == nil || ds != dl.session || okIdx >= len(dl.perItem):
		// A JoinAccept, or a session replaced (rejoin, Activate) since the
		// frame was built: nothing of this session to count.
	case dl.perItem[okIdx].queueItemID == "":
		ds.nFCntDown++ // a MAC-only (or empty) downlink
	default:
		it := dl.perItem[okIdx]
		if it.aCnt {
			ds.aFCntDown = it.fCntDown + 1
		} else {
			ds.nFCntDown = it.fCntDown + 1 // 1.0: set_a_f_cnt_down is the one counter
		}
		var txInfo *gw.DownlinkTxInfo
		if okIdx < len(dl.items) {
			txInfo = dl.items[okIdx].GetTxInfo()
		}
		evs = append(evs, pendingEvent{appID: dev.pb.ApplicationId, devEUI: dl.devEUI, typ: "txack", msg: &integration.TxAckEvent{
			DownlinkId: ack.GetDownlinkId(), Time: timestamppb.Now(), DeviceInfo: s.deviceInfoLocked(dev),
			QueueItemId: it.queueItemID, FCntDown: it.fCntDown, GatewayId: dl.gatewayID, TxInfo: txInfo,
		}})
		for _, q := range dev.queue {
			if q.id != it.queueItemID {
				continue
			}
			if q.confirmed {
				q.pending, ds.confFCnt = true, q.fCntDown
			} else {
				s.removeQueueItemLocked(dev, q.id)
			}
			break
		}
	}
	s.mu.Unlock()
	s.publishEvents(evs)
}
