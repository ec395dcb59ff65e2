package chirpstack

import (
	"fmt"
	"strconv"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
)

// Class-A answers (chirpstack/src/downlink/data.rs handle_response): the
// receive windows the network's rx_window allows, each with its own frame
// sized for its data rate; the queue item chosen on the first window's
// budget (an item too large for it is discarded with a DOWNLINK_PAYLOAD_SIZE
// log event); MAC commands first, then the item if it still fits, else
// FPending.

// rxWindow is one receive window of a class-A answer.
type rxWindow struct {
	freq  uint32
	dr    int
	delay time.Duration
}

// plannedItem is one DownlinkFrameItem: the frame for one window.
type plannedItem struct {
	phy []byte
	win rxWindow
	ctx itemCtx
}

// itemCtx is what a TX ack of the item changes (tx_ack.rs).
type itemCtx struct {
	fCntDown    uint32
	aCnt        bool   // the FCnt is the application counter (1.1 with FPort > 0)
	queueItemID string // the queue item the frame carries, if any
}

// maxDownlinkPayload is the EU868 N (bytes of FRMPayload + FOpts) per data
// rate, RP002-1.0.3, not repeater compatible (ChirpStack's default:
// lrwn/src/region/eu868.rs max_dl_payload_size_per_dr).
func maxDownlinkPayload(dr int) int {
	switch {
	case dr <= 2:
		return 51
	case dr == 3:
		return 115
	default:
		return 242
	}
}

// windowsLocked are the class-A windows for an uplink: RX1 on the uplink's
// frequency and data rate (rx1_dr_offset 0) after rx1 (the session's RX1
// delay; join_accept_delay1 for a JoinAccept), RX2 on 869.525 MHz DR0 a
// second later — those network.rx_window allows (0 both, 1 RX1, 2 RX2;
// downlink/data.rs set_tx_info).
func (s *Server) windowsLocked(u *uplinkCtx, ds *session, rx1, rx2 time.Duration) ([]rxWindow, error) {
	f1, err := s.band.GetRX1FrequencyForUplinkFrequency(u.txInfo.GetFrequency())
	if err != nil {
		return nil, fmt.Errorf("rx1 frequency: %w", err)
	}
	// A session's own RX parameters; a JoinAccept the device's defaults.
	d := s.band.GetDefaults()
	offset, f2, dr2 := 0, d.RX2Frequency, d.RX2DataRate
	if ds != nil {
		offset, f2, dr2 = int(ds.rx1DROffset), ds.rx2Freq, int(ds.rx2DR)
	}
	dr1, err := s.band.GetRX1DataRateIndex(u.dr, offset)
	if err != nil {
		return nil, fmt.Errorf("rx1 data rate: %w", err)
	}
	w1 := rxWindow{freq: f1, dr: dr1, delay: rx1}
	w2 := rxWindow{freq: f2, dr: dr2, delay: rx2}
	switch s.cfg.RXWindow {
	case 1:
		return []rxWindow{w1}, nil
	case 2:
		return []rxWindow{w2}, nil
	}
	return []rxWindow{w1, w2}, nil
}

// buildClassADownlinkLocked returns the frames answering a data uplink (none
// when nothing is due) and the log events of discarded queue items.
func (s *Server) buildClassADownlinkLocked(u *uplinkCtx, ans *classAAnswer) ([]plannedItem, downlinkCtx, []pendingEvent, error) {
	ds, dev := ans.ds, ans.dev
	ctx := downlinkCtx{devEUI: ds.devEUI, data: true, session: ds}
	rx1 := time.Duration(max(ds.rx1Delay, 1)) * time.Second
	wins, err := s.windowsLocked(u, ds, rx1, rx1+time.Second)
	if err != nil {
		return nil, ctx, nil, err
	}

	// The queue item, chosen on the first window's budget.
	var evs []pendingEvent
	var qi *queueItem
	budget := maxDownlinkPayload(wins[0].dr)
	for qi == nil {
		var next *queueItem
		for _, q := range dev.queue {
			if !q.pending {
				next = q
				break
			}
		}
		if next == nil {
			break
		}
		if len(next.data) <= budget {
			qi = next
			break
		}
		s.removeQueueItemLocked(dev, next.id)
		evs = append(evs, s.logEventLocked(dev, integration.LogLevel_ERROR, integration.LogCode_DOWNLINK_PAYLOAD_SIZE,
			"Device queue-item discarded because it exceeds the max. payload size",
			map[string]string{"max_payload_size": strconv.Itoa(budget), "item_size": strconv.Itoa(len(next.data)), "queue_item_id": next.id}))
	}
	if qi == nil && !ans.ackUplink && len(ans.mac) == 0 && !ans.mustSend {
		return nil, ctx, evs, nil
	}
	more := 0
	for _, q := range dev.queue {
		if !q.pending && q != qi {
			more++
		}
	}

	var items []plannedItem
	for _, w := range wins {
		it, err := s.dataFrameLocked(ds, w, ans, qi, more > 0)
		if err != nil {
			return nil, ctx, evs, err
		}
		items = append(items, it)
	}
	for _, it := range items {
		if it.ctx.queueItemID != "" {
			qi.fCntDown = it.ctx.fCntDown // downlink/data.rs: the item records its FCnt
			break
		}
	}
	return items, ctx, evs, nil
}

// dataFrameLocked builds the frame for one window: MAC commands while they
// fit its budget (up to 15 bytes in FOpts, encrypted with NwkSEncKey in 1.1;
// more alone as an FPort 0 payload), then the queue item if it still fits
// (FPending if not, or if more items wait). FCtrl.ADR is set: ChirpStack's
// network.adr_disabled is false.
func (s *Server) dataFrameLocked(ds *session, w rxWindow, ans *classAAnswer, qi *queueItem, more bool) (plannedItem, error) {
	budget := maxDownlinkPayload(w.dr)
	var mac []lorawan.Payload
	size := 0
	for i := range ans.mac {
		b, err := ans.mac[i].MarshalBinary()
		if err != nil {
			return plannedItem{}, fmt.Errorf("mac-command: %w", err)
		}
		if size+len(b) > budget {
			break
		}
		size += len(b)
		mac = append(mac, &ans.mac[i])
	}
	macInFRM := size > 15
	withItem := qi != nil && !macInFRM && len(qi.data) <= budget-size
	fPending := more || (qi != nil && !withItem)

	mtype := lorawan.UnconfirmedDataDown
	if withItem && qi.confirmed {
		mtype = lorawan.ConfirmedDataDown
	}
	pl := &lorawan.MACPayload{FHDR: lorawan.FHDR{
		DevAddr: ds.devAddr,
		FCtrl:   lorawan.FCtrl{ADR: true, ACK: ans.ackUplink, FPending: fPending},
	}}
	if !macInFRM {
		pl.FHDR.FOpts = mac
	}
	// LoRaWAN 1.0 has one downlink counter; 1.1 splits NFCntDown (FPort 0 /
	// none) and AFCntDown (FPort > 0).
	aCnt := withItem && ds.macVersion == lorawan.LoRaWAN1_1
	pl.FHDR.FCnt = ds.nFCntDown
	if aCnt {
		pl.FHDR.FCnt = ds.aFCntDown
	}
	switch {
	case macInFRM:
		p := uint8(0)
		pl.FPort, pl.FRMPayload = &p, mac
	case withItem:
		p := qi.fPort
		pl.FPort = &p
		pl.FRMPayload = []lorawan.Payload{&lorawan.DataPayload{Bytes: append([]byte(nil), qi.data...)}}
	}
	phy := lorawan.PHYPayload{MHDR: lorawan.MHDR{MType: mtype, Major: lorawan.LoRaWANR1}, MACPayload: pl}
	switch {
	case macInFRM:
		if err := phy.EncryptFRMPayload(ds.keys.NwkSEncKey); err != nil {
			return plannedItem{}, fmt.Errorf("encrypt mac-commands: %w", err)
		}
	case withItem:
		if err := phy.EncryptFRMPayload(ds.keys.AppSKey); err != nil {
			return plannedItem{}, fmt.Errorf("encrypt downlink: %w", err)
		}
	}
	if ds.macVersion == lorawan.LoRaWAN1_1 && !macInFRM && len(mac) > 0 {
		if err := phy.EncryptFOpts(ds.keys.NwkSEncKey); err != nil {
			return plannedItem{}, fmt.Errorf("encrypt FOpts: %w", err)
		}
	}
	var confFCnt uint32
	if ans.ackUplink && ds.macVersion == lorawan.LoRaWAN1_1 {
		confFCnt = ans.upFCnt // 1.1 downlink MIC covers the acknowledged uplink's FCnt
	}
	if err := phy.SetDownlinkDataMIC(ds.macVersion, confFCnt, ds.keys.SNwkSIntKey); err != nil {
		return plannedItem{}, fmt.Errorf("downlink MIC: %w", err)
	}
	b, err := phy.MarshalBinary()
	if err != nil {
		return plannedItem{}, fmt.Errorf("marshal downlink: %w", err)
	}
	ic := itemCtx{fCntDown: pl.FHDR.FCnt, aCnt: aCnt}
	if withItem {
		ic.queueItemID = qi.id
	}
	return plannedItem{phy: b, win: w, ctx: ic}, nil
}

// removeQueueItemLocked deletes a queue item by id.
func (s *Server) removeQueueItemLocked(dev *deviceRow, id string) {
	for i, q := range dev.queue {
		if q.id == id {
			dev.queue = append(dev.queue[:i:i], dev.queue[i+1:]...)
			return
		}
	}
}
