package chirpstack

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/brocaar/lorawan/band"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Gateway backend, after chirpstack/src/gateway/backend/mqtt.rs:
//   - events arrive on <region>/gateway/<gateway_id>/event/<type> (up, stats,
//     ack, mesh); anything else is "Unknown event type";
//   - a payload containing the substring "gatewayId" is protobuf-JSON, anything
//     else protobuf binary; commands to that gateway are answered in the
//     encoding it last used (default protobuf);
//   - commands go to <region>/gateway/<gateway_id>/command/down.
//
// Uplinks are de-duplicated like ChirpStack's uplink/mod.rs: all receptions of
// the same PHYPayload within network.deduplication_delay form one frame-set.

// frameSet collects the receptions of one PHYPayload.
type frameSet struct {
	phy     []byte
	txInfo  *gw.UplinkTxInfo
	rxInfos []*gw.UplinkRxInfo
	first   time.Time
	timer   *time.Timer
}

// uplinkCtx is a de-duplicated uplink ready for the join / data handlers.
type uplinkCtx struct {
	dedupID string
	time    time.Time
	phyRaw  []byte
	txInfo  *gw.UplinkTxInfo
	rxInfos []*gw.UplinkRxInfo // best reception first
	dr      int
	channel int
	// answeredVia is the gateway a downlink for this uplink was published
	// to ("" = none).
	answeredVia string
	// downGW is the index in rxInfos of the gateway a class-A answer goes
	// through (chooseDownlinkGatewayLocked).
	downGW int
	// mustSend: a MAC command of the uplink needs a downlink even if
	// nothing else is due (RXTimingSetupAns, RXParamSetupAns: LoRaWAN 1.0.4
	// §5.7 — the device repeats the answer until it hears one).
	mustSend bool
}

// downlinkCtx remembers what a downlink was for, to handle its DownlinkTxAck.
type downlinkCtx struct {
	devEUI lorawan.EUI64
	// data: a data downlink (not a JoinAccept); perItem: what each item
	// carries. The counters move on the gateway's TX ack (tx_ack.rs).
	data      bool
	session   *session // the session the frame was built for (data downlinks)
	perItem   []itemCtx
	gatewayID string
	items     []*gw.DownlinkFrameItem
	dedupID   string
}

func (s *Server) onGatewayMessage(_ paho.Client, m paho.Message) {
	parts := strings.Split(m.Topic(), "/")
	if len(parts) != 5 {
		s.logf("chirpstack: ignoring message on unexpected topic %q", m.Topic())
		return
	}
	topicGW, event := parts[2], parts[4]
	payload := m.Payload()
	isJSON := bytes.Contains(payload, []byte("gatewayId"))
	unmarshal := func(msg proto.Message) error {
		if isJSON {
			return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(payload, msg)
		}
		return proto.Unmarshal(payload, msg)
	}
	switch event {
	case "up":
		var uf gw.UplinkFrame
		if err := unmarshal(&uf); err != nil {
			s.logf("chirpstack: decode uplink frame from %s: %v", topicGW, err)
			return
		}
		s.collectUplink(&uf, topicGW, isJSON)
	case "stats":
		var st gw.GatewayStats
		if err := unmarshal(&st); err != nil {
			s.logf("chirpstack: decode gateway stats from %s: %v", topicGW, err)
			return
		}
		s.touchGateway(firstNonEmpty(st.GetGatewayId(), topicGW), isJSON)
	case "ack":
		var ack gw.DownlinkTxAck
		if err := unmarshal(&ack); err != nil {
			s.logf("chirpstack: decode tx ack from %s: %v", topicGW, err)
			return
		}
		// Not on paho's router goroutine (OrderMatters): an ack publishes
		// its events, and a Publish may wait on a broken connection.
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.wg.Add(1) // under s.mu: Close sets closed under it before it waits
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handleTxAck(&ack)
		}()
	case "mesh":
		// Mesh events are only meaningful with ChirpStack Gateway Mesh.
	default:
		s.logf("chirpstack: unknown event type %q from gateway %s", event, topicGW)
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) touchGateway(id string, isJSON bool) {
	var eui lorawan.EUI64
	if err := eui.UnmarshalText([]byte(id)); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gwJSON[eui] = isJSON
	if g, ok := s.gateways[eui]; ok {
		g.lastSeen = time.Now()
	}
}

func (s *Server) collectUplink(uf *gw.UplinkFrame, topicGW string, isJSON bool) {
	rx := uf.GetRxInfo()
	if rx == nil || len(uf.GetPhyPayload()) == 0 {
		s.logf("chirpstack: uplink from %s without rx_info or phy_payload, ignoring", topicGW)
		return
	}
	if rx.GetCrcStatus() == gw.CRCStatus_BAD_CRC {
		s.logf("chirpstack: uplink from %s with bad CRC, ignoring", topicGW)
		return
	}
	if rx.GatewayId == "" {
		rx.GatewayId = topicGW
	}
	rx.GatewayId = strings.ToLower(rx.GatewayId)
	// As ChirpStack's MQTT backend does on reception.
	rx.NsTime = timestamppb.Now()
	if rx.Metadata == nil {
		rx.Metadata = map[string]string{}
	}
	rx.Metadata["region_config_id"] = s.region
	rx.Metadata["region_common_name"] = s.regionCommon.String()
	s.touchGateway(rx.GatewayId, isJSON)

	key := string(uf.GetPhyPayload())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	fs, ok := s.collect[key]
	if !ok {
		fs = &frameSet{phy: uf.GetPhyPayload(), txInfo: uf.GetTxInfo(), first: time.Now()}
		s.collect[key] = fs
		s.wg.Add(1)
		fs.timer = time.AfterFunc(s.dedupDelay, func() {
			defer s.wg.Done()
			s.mu.Lock()
			delete(s.collect, key)
			s.mu.Unlock()
			s.handleFrameSet(fs)
		})
	}
	fs.rxInfos = append(fs.rxInfos, rx)
}

// handleFrameSet runs once per de-duplicated uplink.
func (s *Server) handleFrameSet(fs *frameSet) {
	u := &uplinkCtx{dedupID: newUUID(), time: fs.first, phyRaw: fs.phy, txInfo: fs.txInfo}
	if hook := s.cfg.Unanswered; hook != nil {
		defer func() {
			// Every reception but the one the answer went through.
			for _, rx := range fs.rxInfos {
				if !strings.EqualFold(rx.GetGatewayId(), u.answeredVia) {
					hook(rx.GetGatewayId(), rx.GetContext())
				}
			}
		}()
	}

	// Gateway filter (uplink/mod.rs): without allow_unknown_gateways an
	// unknown gateway's reception is removed; nothing left → abort.
	s.mu.Lock()
	for _, rx := range fs.rxInfos {
		var eui lorawan.EUI64
		_ = eui.UnmarshalText([]byte(rx.GatewayId))
		g, known := s.gateways[eui]
		if !known && s.requireGateway {
			s.logf("chirpstack: uplink dropped from unknown gateway %s (Getting gateway meta-data failed)", rx.GatewayId)
			continue
		}
		// uplink/mod.rs update_gateway_metadata: a reception without a
		// location gets the gateway's stored one.
		if known && rx.Location == nil {
			loc := g.pb.GetLocation()
			rx.Location = &common.Location{Latitude: loc.GetLatitude(), Longitude: loc.GetLongitude(), Altitude: loc.GetAltitude()}
		}
		u.rxInfos = append(u.rxInfos, rx)
	}
	s.mu.Unlock()
	if len(u.rxInfos) == 0 {
		s.logf("chirpstack: RxInfo set is empty after applying filters, dedup %s dropped", u.dedupID)
		return
	}
	// Best reception first: the downlink goes through this gateway.
	sort.SliceStable(u.rxInfos, func(i, j int) bool {
		a, b := u.rxInfos[i], u.rxInfos[j]
		if a.Snr != b.Snr {
			return a.Snr > b.Snr
		}
		return a.Rssi > b.Rssi
	})
	u.dr, u.channel = s.uplinkDRAndChannel(u.txInfo)
	s.mu.Lock()
	u.downGW = s.chooseDownlinkGatewayLocked(u)
	s.mu.Unlock()

	var phy lorawan.PHYPayload
	if err := phy.UnmarshalBinary(fs.phy); err != nil {
		s.logf("chirpstack: decode PHYPayload: %v", err)
		return
	}
	switch phy.MHDR.MType {
	case lorawan.JoinRequest:
		s.handleJoinRequest(u, phy)
	case lorawan.UnconfirmedDataUp, lorawan.ConfirmedDataUp:
		s.handleDataUp(u, phy)
	case lorawan.RejoinRequest:
		s.logf("chirpstack: rejoin-request not supported by the emulator, dropped")
	default:
		s.logf("chirpstack: unexpected uplink mtype %v, dropped", phy.MHDR.MType)
	}
}

// uplinkDRAndChannel maps the LoRa modulation and frequency to the EU868 data
// rate and channel index (needed for the LoRaWAN 1.1 uplink MIC and RX1).
func (s *Server) uplinkDRAndChannel(tx *gw.UplinkTxInfo) (int, int) {
	dr, ch := 0, 0
	if lora := tx.GetModulation().GetLora(); lora != nil {
		if i, err := s.band.GetDataRateIndex(true, band.DataRate{
			Modulation: band.LoRaModulation, SpreadFactor: int(lora.SpreadingFactor), Bandwidth: int(lora.Bandwidth / 1000),
		}); err == nil {
			dr = i
		}
	}
	if i, err := s.band.GetUplinkChannelIndex(tx.GetFrequency(), false); err == nil {
		ch = i
	} else if i, err := s.band.GetUplinkChannelIndex(tx.GetFrequency(), true); err == nil {
		ch = i
	}
	return dr, ch
}

// downlinkEIRP is the downlink TX power ChirpStack asks for with the
// region's downlink_tx_power -1: the EU868 EIRP for the frequency
// (lrwn/src/region/eu868.rs get_downlink_tx_power_eirp: 16 dBm in 863–869.2
// MHz, 29 dBm in 869.4–869.65 MHz — the RX2 channel). brocaar's band
// package answers 14 / 27 (the ERP figures).
func downlinkEIRP(freq uint32) int32 {
	if freq >= 869400000 && freq < 869650000 {
		return 29
	}
	return 16
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// sendDownlink publishes one DownlinkFrame, an item per receive window
// (downlink/{join,data}.rs): the frame for that window, its frequency and
// data rate, the EU868 EIRP for the frequency, delay timing relative to the
// uplink and the gateway's context echoed back.
func (s *Server) sendDownlink(u *uplinkCtx, planned []plannedItem, dl downlinkCtx) error {
	rx := u.rxInfos[u.downGW]
	df := &gw.DownlinkFrame{DownlinkId: randUint32(), GatewayId: rx.GatewayId}
	for _, p := range planned {
		d, err := s.band.GetDataRate(p.win.dr)
		if err != nil {
			return fmt.Errorf("chirpstack: data rate %d: %w", p.win.dr, err)
		}
		df.Items = append(df.Items, &gw.DownlinkFrameItem{
			PhyPayload: p.phy,
			TxInfo: &gw.DownlinkTxInfo{
				Frequency: p.win.freq,
				Power:     downlinkEIRP(p.win.freq),
				Modulation: &gw.Modulation{Parameters: &gw.Modulation_Lora{Lora: &gw.LoraModulationInfo{
					Bandwidth:             uint32(d.Bandwidth * 1000),
					SpreadingFactor:       uint32(d.SpreadFactor),
					CodeRate:              gw.CodeRate_CR_4_5,
					PolarizationInversion: true,
				}}},
				Board:   rx.Board,
				Antenna: rx.Antenna,
				Timing:  &gw.Timing{Parameters: &gw.Timing_Delay{Delay: &gw.DelayTimingInfo{Delay: durationpb.New(p.win.delay)}}},
				Context: rx.Context,
			},
		})
		dl.perItem = append(dl.perItem, p.ctx)
	}
	var err error

	var gwEUI lorawan.EUI64
	_ = gwEUI.UnmarshalText([]byte(rx.GatewayId))
	s.mu.Lock()
	asJSON := s.gwJSON[gwEUI]
	dl.gatewayID, dl.items, dl.dedupID = rx.GatewayId, df.Items, u.dedupID
	s.downlinks[df.DownlinkId] = &dl
	s.mu.Unlock()

	var b []byte
	if asJSON {
		b, err = protojson.Marshal(df)
	} else {
		b, err = proto.Marshal(df)
	}
	if err != nil {
		return fmt.Errorf("chirpstack: encode downlink frame: %w", err)
	}
	topic := s.region + "/gateway/" + rx.GatewayId + "/command/down"
	t := s.publishAsync(topic, b)
	select {
	case <-t.Done(): // refused at once (not connected, say)
		if err := t.Error(); err != nil {
			return fmt.Errorf("chirpstack: publish %s: %w", topic, err)
		}
	default: // on its way
	}
	u.answeredVia = rx.GatewayId
	return nil
}

// gatewayPreferMinMargin is the region's network gateway_prefer_min_margin
// (dB; chirpstack-docker and ChirpStack's test config: 10).
const gatewayPreferMinMargin = 10

// chooseDownlinkGatewayLocked picks the gateway a class-A answer goes
// through as downlink/helpers.rs select_downlink_gateway does for the last
// uplink: gateways by link margin (SNR − the SNR the spreading factor
// needs), ties by RSSI; among those with at least gateway_prefer_min_margin,
// one at random weighted by its downlink priority (0 counts as 1) — else
// the best. The random source is seeded (Config.Seed), so runs repeat.
func (s *Server) chooseDownlinkGatewayLocked(u *uplinkCtx) int {
	if len(u.rxInfos) < 2 {
		return 0
	}
	var req float32
	if lora := u.txInfo.GetModulation().GetLora(); lora != nil {
		req, _ = requiredSNR(int(lora.GetSpreadingFactor()))
	}
	idx := make([]int, len(u.rxInfos))
	for i := range idx {
		idx[i] = i
	}
	margin := func(i int) float32 { return u.rxInfos[i].GetSnr() - req }
	sort.SliceStable(idx, func(a, b int) bool {
		if ma, mb := margin(idx[a]), margin(idx[b]); ma != mb {
			return ma > mb
		}
		return u.rxInfos[idx[a]].GetRssi() > u.rxInfos[idx[b]].GetRssi()
	})
	var cands []int
	total := 0
	weight := func(i int) int {
		var eui lorawan.EUI64
		_ = eui.UnmarshalText([]byte(u.rxInfos[i].GetGatewayId()))
		if g := s.gateways[eui]; g != nil && g.pb.GetDownlinkPriority() > 0 {
			return int(g.pb.GetDownlinkPriority())
		}
		return 1
	}
	for _, i := range idx {
		if margin(i) >= gatewayPreferMinMargin {
			cands = append(cands, i)
			total += weight(i)
		}
	}
	if len(cands) == 0 {
		return idx[0]
	}
	r := s.rng.IntN(total)
	for _, i := range cands {
		if r -= weight(i); r < 0 {
			return i
		}
	}
	return cands[len(cands)-1]
}
