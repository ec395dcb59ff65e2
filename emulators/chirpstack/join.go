package chirpstack

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// Join server for devices whose keys are stored in the server (ChirpStack's
// internal join-server path of chirpstack/src/uplink/join.rs). Order of checks:
// device → keys → application/tenant/profile → profile region → tenant gateway
// filter → disabled → OTAA enabled → MIC → DevNonce → JoinAccept.

var macVersionStrings = map[common.MacVersion]string{
	common.MacVersion_LORAWAN_1_0_0: "1.0.0",
	common.MacVersion_LORAWAN_1_0_1: "1.0.1",
	common.MacVersion_LORAWAN_1_0_2: "1.0.2",
	common.MacVersion_LORAWAN_1_0_3: "1.0.3",
	common.MacVersion_LORAWAN_1_0_4: "1.0.4",
	common.MacVersion_LORAWAN_1_1_0: "1.1.0",
}

func (s *Server) handleJoinRequest(u *uplinkCtx, phy lorawan.PHYPayload) {
	jr, ok := phy.MACPayload.(*lorawan.JoinRequestPayload)
	if !ok {
		s.logf("chirpstack: join-request without JoinRequestPayload")
		return
	}
	evs, dl, err := s.processJoin(u, phy, jr)
	if err != nil {
		s.logf("chirpstack: join-request dev_eui=%s dev_nonce=%d: %v", jr.DevEUI, jr.DevNonce, err)
	}
	if dl != nil {
		s.mu.Lock()
		d := s.band.GetDefaults()
		wins, err := s.windowsLocked(u, nil, d.JoinAcceptDelay1, d.JoinAcceptDelay2)
		s.mu.Unlock()
		var items []plannedItem
		for _, w := range wins {
			items = append(items, plannedItem{phy: dl.phy, win: w})
		}
		if err == nil {
			err = s.sendDownlink(u, items, dl.ctx)
		}
		if err != nil {
			s.logf("chirpstack: join-accept dev_eui=%s: %v", jr.DevEUI, err)
			return
		}
	}
	// ChirpStack publishes the join event right after handing the JoinAccept
	// to the gateway backend (start_downlink_join_accept_flow, send_join_event).
	s.publishEvents(evs)
}

type plannedDownlink struct {
	phy   []byte
	delay time.Duration
	ctx   downlinkCtx
}

func (s *Server) processJoin(u *uplinkCtx, phy lorawan.PHYPayload, jr *lorawan.JoinRequestPayload) ([]pendingEvent, *plannedDownlink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	dev, ok := s.devices[jr.DevEUI]
	if !ok {
		return nil, nil, fmt.Errorf("unknown device")
	}
	dk, ok := s.keys[jr.DevEUI]
	if !ok {
		// Upstream would now try an external join server for the JoinEUI.
		return nil, nil, fmt.Errorf("device has no keys and no join server is configured")
	}
	app := s.apps[dev.pb.ApplicationId]
	dp := s.profiles[dev.pb.DeviceProfileId]
	if app == nil || dp == nil {
		return nil, nil, fmt.Errorf("device without application or device profile")
	}
	if dp.pb.Region != s.regionCommon {
		return nil, nil, fmt.Errorf("Invalid device-profile region")
	}
	if !s.filterRxByTenantLocked(u, app.pb.TenantId) {
		return nil, nil, fmt.Errorf("RxInfo set is empty after applying filters")
	}
	if dp.pb.RegionConfigId != "" && dp.pb.RegionConfigId != s.region {
		return nil, nil, fmt.Errorf("device-profile region_config_id %q does not match %q", dp.pb.RegionConfigId, s.region)
	}
	if dev.pb.IsDisabled {
		return nil, nil, fmt.Errorf("Device is disabled")
	}
	if !dp.pb.SupportsOtaa {
		return nil, nil, fmt.Errorf("OTAA is disabled in device-profile")
	}
	dev.lastSeen = u.time

	// MIC: ChirpStack validates with device_keys.nwk_key for every MAC
	// version. For 1.0.x that field holds the spec's AppKey (LoRaWAN 1.0.4
	// §6.2.5); for 1.1 it is the NwkKey (LoRaWAN 1.1 §6.2.2).
	okMIC, err := phy.ValidateUplinkJoinMIC(dk.nwkKey)
	if err != nil {
		return nil, nil, fmt.Errorf("validate MIC: %w", err)
	}
	if !okMIC {
		ev := s.logEventLocked(dev, integration.LogLevel_ERROR, integration.LogCode_UPLINK_MIC,
			"MIC of join-request is invalid, make sure keys are correct",
			map[string]string{"deduplication_id": u.dedupID})
		return []pendingEvent{ev}, nil, fmt.Errorf("Invalid MIC")
	}

	// DevNonce: ChirpStack keeps a set of used nonces per JoinEUI and only
	// rejects reuse (storage/device_keys.rs validate_incr_join_and_store_dev_nonce);
	// it does not enforce LoRaWAN 1.0.4's "must increase" rule.
	used := dk.devNonces[jr.JoinEUI]
	if used == nil {
		used = map[lorawan.DevNonce]struct{}{}
		dk.devNonces[jr.JoinEUI] = used
	}
	if _, reused := used[jr.DevNonce]; reused {
		ev := s.logEventLocked(dev, integration.LogLevel_ERROR, integration.LogCode_OTAA,
			"DevNonce has already been used",
			map[string]string{
				"deduplication_id": u.dedupID,
				"join_eui":         jr.JoinEUI.String(),
				"dev_nonce":        strconv.Itoa(int(jr.DevNonce)),
			})
		return []pendingEvent{ev}, nil, fmt.Errorf("DevNonce has already been used")
	}
	// JoinNonce: the stored counter starts at 0 and is incremented on every
	// accepted DevNonce; the pre-increment value goes into the JoinAccept, so a
	// freshly provisioned device receives JoinNonce 0 (join.rs:
	// `let join_nonce = dk.join_nonce - 1`).
	joinNonce := dk.joinNonce
	if joinNonce >= 1<<24-1 {
		return nil, nil, fmt.Errorf("Join-nonce overflow")
	}
	used[jr.DevNonce] = struct{}{}
	dk.joinNonce++

	var devAddr lorawan.DevAddr
	_, _ = rand.Read(devAddr[:])
	if s.cfg.DevAddr != nil {
		devAddr = *s.cfg.DevAddr // as a ChirpStack test build (devaddr.rs)
	}
	devAddr.SetAddrPrefix(s.netID())

	// OptNeg is set for every MAC version other than 1.0.x.
	optNeg := dp.pb.MacVersion == common.MacVersion_LORAWAN_1_1_0
	ja := lorawan.PHYPayload{
		MHDR: lorawan.MHDR{MType: lorawan.JoinAccept, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.JoinAcceptPayload{
			JoinNonce: lorawan.JoinNonce(joinNonce),
			HomeNetID: s.netID(),
			DevAddr:   devAddr,
			DLSettings: lorawan.DLSettings{
				OptNeg:      optNeg,
				RX2DataRate: s.cfg.RX2DR,
				RX1DROffset: s.cfg.RX1DROffset,
			},
			RXDelay: s.rx1Delay(),
			CFList:  s.band.GetCFList(macVersionStrings[dp.pb.MacVersion]),
		},
	}
	micKey := dk.nwkKey
	if optNeg {
		// LoRaWAN 1.1 §6.2.3: with OptNeg=1 the JoinAccept MIC uses JSIntKey.
		if micKey, err = lwkeys.JSIntKey(dk.nwkKey, jr.DevEUI); err != nil {
			return nil, nil, fmt.Errorf("derive JSIntKey: %w", err)
		}
	}
	if err := ja.SetDownlinkJoinMIC(lorawan.JoinRequestType, jr.JoinEUI, jr.DevNonce, micKey); err != nil {
		return nil, nil, fmt.Errorf("join-accept MIC: %w", err)
	}
	// LoRaWAN 1.0.4 §6.2.6: the JoinAccept is "encrypted" with AES decrypt
	// under the root key (nwk_key), for 1.0.x and 1.1 Join-requests alike.
	if err := ja.EncryptJoinAcceptPayload(dk.nwkKey); err != nil {
		return nil, nil, fmt.Errorf("encrypt join-accept: %w", err)
	}
	jaBytes, err := ja.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("marshal join-accept: %w", err)
	}

	var sk lwkeys.SessionKeys
	if optNeg {
		sk, err = lwkeys.Derive11(dk.nwkKey, dk.appKey, jr.JoinEUI, lorawan.JoinNonce(joinNonce), jr.DevNonce)
	} else {
		sk, err = lwkeys.Derive10(dk.nwkKey, s.netID(), lorawan.JoinNonce(joinNonce), jr.DevNonce)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("derive session keys: %w", err)
	}
	// A new session replaces the old one (and its DevAddr).
	s.putSessionLocked(&session{
		devEUI: jr.DevEUI, joinEUI: jr.JoinEUI, devAddr: devAddr,
		macVersion: macVersion(dp.pb.MacVersion), keys: sk,
		skipFCntCheck: dev.pb.SkipFcntCheck, rx1Delay: s.rx1Delay(),
		// set_device_session: RX2 frequency from the region's defaults, the
		// data rates as the JoinAccept gave them.
		rx2Freq: s.band.GetDefaults().RX2Frequency, rx2DR: s.cfg.RX2DR, rx1DROffset: s.cfg.RX1DROffset,
		// The JoinAccept's CFList defines the extra channels (region
		// extra_channels): all enabled; DR of the JoinRequest, power 0, one
		// transmission (device_session.rs defaults after OTAA).
		adr:        adrState{dr: u.dr, nbTrans: 1, channels: s.band.GetEnabledUplinkChannelIndices()},
		extraChans: s.customChannelsLocked(),
	})
	dev.devAddr, dev.joined = devAddr, true
	dev.class = common.DeviceClass_CLASS_A
	if dp.pb.SupportsClassC && !optNeg {
		dev.class = common.DeviceClass_CLASS_C // 1.0.x class-C devices switch at join
	}
	dev.pb.JoinEui = jr.JoinEUI.String()
	if dp.pb.FlushQueueOnActivate {
		dev.queue = nil
	}
	for _, q := range dev.queue {
		q.pending = false
	}
	s.logf("chirpstack: join-request accepted dev_eui=%s dev_addr=%s join_nonce=%d", jr.DevEUI, devAddr, joinNonce)

	ev := pendingEvent{appID: dev.pb.ApplicationId, devEUI: jr.DevEUI, typ: "join", msg: &integration.JoinEvent{
		DeduplicationId: u.dedupID,
		Time:            timestamppb.New(u.time),
		DeviceInfo:      s.deviceInfoLocked(dev),
		DevAddr:         devAddr.String(),
		RegionConfigId:  s.region,
	}}
	return []pendingEvent{ev}, &plannedDownlink{
		phy:   jaBytes,
		delay: s.band.GetDefaults().JoinAcceptDelay1,
		ctx:   downlinkCtx{devEUI: jr.DevEUI},
	}, nil
}

// filterRxByTenantLocked drops receptions by gateways of another tenant that
// has private_gateways_up (uplink/mod.rs filter_rx_info_by_tenant_id).
// Unknown gateways reaching here are public (allow_unknown_gateways).
func (s *Server) filterRxByTenantLocked(u *uplinkCtx, tenantID string) bool {
	kept := u.rxInfos[:0:0]
	for _, rx := range u.rxInfos {
		var eui lorawan.EUI64
		_ = eui.UnmarshalText([]byte(rx.GatewayId))
		if g, ok := s.gateways[eui]; ok && g.pb.TenantId != tenantID {
			if t := s.tenants[g.pb.TenantId]; t != nil && t.pb.PrivateGatewaysUp {
				continue
			}
		}
		kept = append(kept, rx)
	}
	u.rxInfos = kept
	return len(kept) > 0
}

func (s *Server) netID() lorawan.NetID { return s.cfg.NetID }

// rx2Frequency is the region's network rx2_frequency (Hz).
func (s *Server) rx2Frequency() uint32 {
	if s.cfg.RX2Frequency != 0 {
		return s.cfg.RX2Frequency
	}
	return s.band.GetDefaults().RX2Frequency
}

// rx1Delay is the region's network rx1_delay (s): the JoinAccept's RxDelay
// and a new session's RX1 delay.
func (s *Server) rx1Delay() uint8 {
	if s.cfg.RX1Delay > 0 {
		return s.cfg.RX1Delay
	}
	return 1 // chirpstack-docker's region_eu868.toml and ChirpStack's test config
}
