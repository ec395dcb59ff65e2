package chirpstack

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/gw"
	"github.com/chirpstack/chirpstack/api/go/v4/integration"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MAC commands (chirpstack/src/maccommand/, downlink/data.rs set_mac_commands).
// Modelled: the two a provisioning test meets on every device —
//   - DevStatusReq / DevStatusAns: requested when the device profile's
//     device_status_req_interval (requests per day) is set, on the first
//     downlink opportunity after the join and then once per interval
//     (data.rs _request_device_status); the answer becomes the device's
//     status (DeviceService.Get device_status) and a `status` event
//     (maccommand/dev_status.rs);
//   - LinkCheckReq / LinkCheckAns: margin = best uplink SNR − the SNR the
//     spreading factor needs (config.rs get_required_snr_for_sf), floored at
//     0; GwCnt = gateways that received the uplink (maccommand/link_check.rs).
//   - LinkADRReq / LinkADRAns: the default ADR algorithm (adr.go);
//   - DeviceTimeReq → DeviceTimeAns (GPS time of the reception);
//   - RekeyInd → RekeyConf (LoRaWAN 1.1);
//   - RXTimingSetupReq when a profile asks a longer RX1 delay, its answer
//     always answered (must_send).
// Other commands are logged and ignored, as ChirpStack's "Handle mac-command
// error" does for CIDs it cannot handle.

// requiredSNR is ChirpStack's demodulation floor per spreading factor (dB).
func requiredSNR(sf int) (float32, bool) {
	// SF6 … SF12.
	floors := [...]float32{-5, -7.5, -10, -12.5, -15, -17.5, -20}
	if sf < 6 || sf > 12 {
		return 0, false
	}
	return floors[sf-6], true
}

// uplinkMACCommands returns the MAC commands of a data uplink whose
// FRMPayload has been decrypted (brocaar decodes an FPort 0 FRMPayload into
// MAC commands then): those, else FOpts — clear in 1.0, encrypted with
// NwkSEncKey in 1.1 (§4.3.1.6).
func uplinkMACCommands(phy *lorawan.PHYPayload, ds *session) ([]lorawan.MACCommand, error) {
	mac := phy.MACPayload.(*lorawan.MACPayload)
	pls := mac.FHDR.FOpts
	if mac.FPort != nil && *mac.FPort == 0 {
		pls = mac.FRMPayload
	} else if len(pls) > 0 {
		var err error
		if ds.macVersion == lorawan.LoRaWAN1_1 {
			err = phy.DecryptFOpts(ds.keys.NwkSEncKey)
		} else {
			err = phy.DecodeFOptsToMACCommands()
		}
		if err != nil {
			return nil, fmt.Errorf("decode FOpts mac-commands: %w", err)
		}
		pls = mac.FHDR.FOpts
	}
	var out []lorawan.MACCommand
	for _, p := range pls {
		if c, ok := p.(*lorawan.MACCommand); ok {
			out = append(out, *c)
		}
	}
	return out, nil
}

// handleUplinkMACLocked handles the uplink's MAC commands and returns the
// answers to send and the events they cause.
func (s *Server) handleUplinkMACLocked(u *uplinkCtx, ds *session, dev *deviceRow, cmds []lorawan.MACCommand) ([]lorawan.MACCommand, []pendingEvent) {
	var answers []lorawan.MACCommand
	var evs []pendingEvent
	for _, c := range cmds {
		switch c.CID {
		case lorawan.DevStatusAns:
			pl, ok := c.Payload.(*lorawan.DevStatusAnsPayload)
			if !ok {
				continue
			}
			// The API's battery_level is −1 when the device has no level
			// (external power: 0, unavailable: 255), else the percentage
			// the database keeps, rounded to 2 decimals (api/device.rs get,
			// maccommand/dev_status.rs).
			st := &api.DeviceStatus{Margin: int32(pl.Margin), ExternalPowerSource: pl.Battery == 0, BatteryLevel: -1}
			ev := &integration.StatusEvent{
				DeduplicationId:         u.dedupID,
				Time:                    timestamppb.New(u.time),
				DeviceInfo:              s.deviceInfoLocked(dev),
				Margin:                  int32(pl.Margin),
				ExternalPowerSource:     pl.Battery == 0,
				BatteryLevelUnavailable: pl.Battery == 255,
			}
			if pl.Battery > 0 && pl.Battery < 255 {
				lvl := float32(pl.Battery) / 254 * 100
				ev.BatteryLevel = lvl
				st.BatteryLevel = float32(math.Round(float64(pl.Battery)/254*100*100) / 100)
			}
			dev.status = st
			evs = append(evs, pendingEvent{appID: dev.pb.ApplicationId, devEUI: ds.devEUI, typ: "status", msg: ev})
		case lorawan.DeviceTimeReq:
			// maccommand/device_time.rs: the GPS time of the uplink's
			// reception (rx_info time_since_gps_epoch, else gw_time within
			// the allowed drift, else the server's clock).
			answers = append(answers, lorawan.MACCommand{CID: lorawan.DeviceTimeAns, Payload: &lorawan.DeviceTimeAnsPayload{
				TimeSinceGPSEpoch: gpsTime(rxTime(u.rxInfos, time.Now())),
			}})
		case lorawan.RekeyInd:
			// maccommand/rekey.rs: RekeyConf with the lower of the device's
			// and the server's (1.1) minor version.
			if pl, ok := c.Payload.(*lorawan.RekeyIndPayload); ok {
				minor := min(pl.DevLoRaWANVersion.Minor, 1)
				answers = append(answers, lorawan.MACCommand{CID: lorawan.RekeyConf, Payload: &lorawan.RekeyConfPayload{
					ServLoRaWANVersion: lorawan.Version{Minor: minor},
				}})
			}
		case lorawan.NewChannelAns:
			// maccommand/new_channel.rs: the answers pair with the pending
			// requests in order; an acknowledged channel is the session's
			// and enabled.
			pl, ok := c.Payload.(*lorawan.NewChannelAnsPayload)
			if !ok || len(ds.pendingNewChannel) == 0 {
				s.logf("chirpstack: dev_eui=%s: NewChannelAns without a pending NewChannelReq", ds.devEUI)
				continue
			}
			req := ds.pendingNewChannel[0]
			ds.pendingNewChannel = ds.pendingNewChannel[1:]
			if pl.ChannelFrequencyOK && pl.DataRateRangeOK {
				if ds.extraChans == nil {
					ds.extraChans = map[int]uint32{}
				}
				ds.extraChans[int(req.ChIndex)] = req.Freq
				if !slices.Contains(ds.adr.channels, int(req.ChIndex)) {
					ds.adr.channels = append(ds.adr.channels, int(req.ChIndex))
					slices.Sort(ds.adr.channels)
				}
			}
		case lorawan.RXParamSetupAns:
			// maccommand/rx_param_setup.rs: all three acknowledged, the
			// pending parameters are the session's; the answer always
			// needs a downlink (must_send).
			u.mustSend = true
			pl, ok := c.Payload.(*lorawan.RXParamSetupAnsPayload)
			if req := ds.pendingRXParam; ok && req != nil && pl.ChannelACK && pl.RX2DataRateACK && pl.RX1DROffsetACK {
				ds.rx2Freq, ds.rx2DR, ds.rx1DROffset = req.Frequency, req.DLSettings.RX2DataRate, req.DLSettings.RX1DROffset
			} else if ok && req != nil {
				s.logf("chirpstack: dev_eui=%s: RxParamSetupReq not acknowledged (%+v)", ds.devEUI, *pl)
			}
			ds.pendingRXParam = nil
		case lorawan.RXTimingSetupAns:
			// maccommand/rx_timing_setup.rs: the pending request's delay
			// becomes the session's; without one it is an error (logged).
			// Either way the answer needs a downlink (must_send).
			u.mustSend = true
			if ds.pendingRX1Delay == 0 {
				s.logf("chirpstack: dev_eui=%s: RxTimingSetupAns without a pending RxTimingSetupReq", ds.devEUI)
				continue
			}
			ds.rx1Delay, ds.pendingRX1Delay = ds.pendingRX1Delay, 0
		case lorawan.LinkADRAns:
			if pl, ok := c.Payload.(*lorawan.LinkADRAnsPayload); ok {
				s.adrAnsLocked(ds, pl)
			}
		case lorawan.LinkCheckReq:
			var sf int
			if lora := u.txInfo.GetModulation().GetLora(); lora != nil {
				sf = int(lora.GetSpreadingFactor())
			}
			req, ok := requiredSNR(sf)
			if !ok {
				s.logf("chirpstack: dev_eui=%s: LinkCheckReq: unknown sf %d", ds.devEUI, sf)
				continue
			}
			var best float32
			for i, rx := range u.rxInfos {
				if i == 0 || rx.GetSnr() > best {
					best = rx.GetSnr()
				}
			}
			margin := max(best-req, 0)
			answers = append(answers, lorawan.MACCommand{CID: lorawan.LinkCheckAns, Payload: &lorawan.LinkCheckAnsPayload{
				Margin: uint8(margin), GwCnt: uint8(len(u.rxInfos)),
			}})
		default:
			s.logf("chirpstack: dev_eui=%s: mac-command %s not handled", ds.devEUI, c.CID)
		}
	}
	return answers, evs
}

// requestMACLocked adds the network's own requests to the answers, in
// set_mac_commands order: LinkADRReq when the ADR algorithm changes
// something, DevStatusReq once per 24 h / device_status_req_interval.
func (s *Server) requestMACLocked(ds *session, dev *deviceRow, now time.Time, cmds []lorawan.MACCommand) []lorawan.MACCommand {
	dp := s.profiles[dev.pb.DeviceProfileId]
	if dp == nil {
		return cmds
	}
	// NewChannelReq first (set_mac_commands order): the region's
	// user-defined channels the session lacks, at most 3 per downlink
	// (_request_custom_channel_reconfiguration).
	ds.pendingNewChannel = nil
	custom := s.customChannelsLocked()
	for _, i := range slices.Sorted(maps.Keys(custom)) {
		f := custom[i]
		if ds.extraChans[i] == f || len(ds.pendingNewChannel) == 3 {
			continue
		}
		req := lorawan.NewChannelReqPayload{ChIndex: uint8(i), Freq: f, MinDR: 0, MaxDR: adrMaxDR}
		cmds = append(cmds, lorawan.MACCommand{CID: lorawan.NewChannelReq, Payload: &req})
		ds.pendingNewChannel = append(ds.pendingNewChannel, req)
	}
	// adr/mod.rs: an unknown or empty adr_algorithm_id runs no ADR (a
	// warning); "default" is the one modelled here.
	if dp.pb.GetAdrAlgorithmId() != "default" {
		if dp.pb.GetAdrAlgorithmId() != "" {
			s.logf("chirpstack: dev_eui=%s: adr algorithm %q not modelled, no ADR", ds.devEUI, dp.pb.GetAdrAlgorithmId())
		}
	} else if req := s.adrRequestLocked(ds); req != nil {
		cmds = append(cmds, lorawan.MACCommand{CID: lorawan.LinkADRReq, Payload: req})
	}
	if n := dp.pb.GetDeviceStatusReqInterval(); n > 0 {
		every := 24 * time.Hour / time.Duration(n)
		if ds.lastStatusReq.IsZero() || now.Sub(ds.lastStatusReq) >= every {
			cmds = append(cmds, lorawan.MACCommand{CID: lorawan.DevStatusReq})
			ds.lastStatusReq = now
		}
	}
	// RXParamSetupReq when the session's RX parameters are not the
	// network's (downlink/data.rs _request_rx_param_setup).
	if f, dr, off := s.rx2Frequency(), s.cfg.RX2DR, s.cfg.RX1DROffset; ds.rx2Freq != f || ds.rx2DR != dr || ds.rx1DROffset != off {
		req := &lorawan.RXParamSetupReqPayload{Frequency: f, DLSettings: lorawan.DLSettings{RX2DataRate: dr, RX1DROffset: off}}
		cmds = append(cmds, lorawan.MACCommand{CID: lorawan.RXParamSetupReq, Payload: req})
		ds.pendingRXParam = req
	}
	// RXTimingSetupReq when the session's RX1 delay is not what the network
	// and profile ask: max(region rx1_delay, profile rx1_delay) — a profile
	// may only lengthen it (downlink/data.rs _request_rx_timing_setup).
	want := s.rx1Delay()
	if d := dp.pb.GetRx1Delay(); d > uint32(want) && d <= 15 {
		want = uint8(d)
	}
	if ds.rx1Delay != want {
		cmds = append(cmds, lorawan.MACCommand{CID: lorawan.RXTimingSetupReq, Payload: &lorawan.RXTimingSetupReqPayload{Delay: want}})
		ds.pendingRX1Delay = want
	}
	return cmds
}

// macSize is the encoded size of cmds (FOpts holds at most 15 bytes).
func macSize(cmds []lorawan.MACCommand) (int, error) {
	n := 0
	for _, c := range cmds {
		b, err := c.MarshalBinary()
		if err != nil {
			return 0, err
		}
		n += len(b)
	}
	return n, nil
}

// rxTimestampMaxDrift is gateway.rx_timestamp_max_drift (ChirpStack's
// default 1 s): a gateway clock further off is not trusted.
const rxTimestampMaxDrift = time.Second

// rxTime is the uplink's reception time as uplink/helpers.rs
// get_rx_timestamp picks it: a gateway's time_since_gps_epoch, else a
// gw_time within the drift of now, else now.
func rxTime(rx []*gw.UplinkRxInfo, now time.Time) time.Time {
	for _, r := range rx {
		if g := r.GetTimeSinceGpsEpoch(); g != nil {
			return gpsEpoch.Add(g.AsDuration() - leapSeconds)
		}
	}
	for _, r := range rx {
		if t := r.GetGwTime(); t != nil {
			if d := now.Sub(t.AsTime()); d < rxTimestampMaxDrift && d > -rxTimestampMaxDrift {
				return t.AsTime()
			}
		}
	}
	return now
}

// GPS time (gpstime.rs): seconds since 1980-01-06 00:00:00 UTC without leap
// seconds — UTC is 18 s behind since 2017-01-01, the last leap second so far.
var gpsEpoch = time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)

const leapSeconds = 18 * time.Second

func gpsTime(t time.Time) time.Duration { return t.Sub(gpsEpoch) + leapSeconds }

// customChannelsLocked are the region's user-defined uplink channels
// (extra_channels: index → Hz).
func (s *Server) customChannelsLocked() map[int]uint32 {
	out := map[int]uint32{}
	for _, i := range s.band.GetCustomUplinkChannelIndices() {
		if c, err := s.band.GetUplinkChannel(i); err == nil {
			out[i] = c.Frequency
		}
	}
	return out
}
