package stm32wl5

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/emulators/timing"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// EU868 parameters (RP002-1.0.3 §2.4; brocaar/lorawan band_eu863_870.go;
// ChirpStack v4 lrwn/src/region/eu868.rs).
var eu868Channels = [...]uint32{868100000, 868300000, 868500000}

// uplinkChannel picks the data uplink's channel: the enabled channels (mask
// of the defined ones) in turn by frame counter. LoRaMac-node draws one at
// random among the enabled channels free of duty-cycle restrictions; turning
// by FCnt keeps runs reproducible. idx is the channel number (the LoRaWAN
// 1.1 uplink MIC covers it).
func uplinkChannel(ram ramSettings, fCnt uint32) (idx int, freq uint32) {
	var enabled []int
	for i := range ram.channels {
		if ram.chMask&(1<<i) != 0 && ram.channels[i] != 0 {
			enabled = append(enabled, i)
		}
	}
	if len(enabled) == 0 { // cannot happen: LinkADRReq never disables all
		return 0, eu868Channels[0]
	}
	idx = enabled[int(fCnt)%len(enabled)]
	return idx, ram.channels[idx]
}

// joinChannels is the channel table after a JoinAccept: the three default
// channels, then a CFList of type 0 (EU868: up to five frequencies for
// channels 3..7, RP002 §2.4.4; 0 = no channel), as RegionEU868ApplyCFList.
func joinChannels(cf *lorawan.CFList) []uint32 {
	chans := append([]uint32(nil), eu868Channels[:]...)
	if cf == nil || cf.CFListType != lorawan.CFListChannel {
		return chans
	}
	pl, ok := cf.Payload.(*lorawan.CFListChannelPayload)
	if !ok {
		return chans
	}
	for _, f := range pl.Channels {
		chans = append(chans, f)
	}
	for len(chans) > 3 && chans[len(chans)-1] == 0 {
		chans = chans[:len(chans)-1]
	}
	return chans
}

const (
	rx2Frequency      = 869525000 // RX2 default, DR0 = SF12BW125
	joinAcceptDelay1  = 5 * time.Second
	joinAcceptDelay2  = 6 * time.Second
	receiveDelay1     = 1 * time.Second // RECEIVE_DELAY1 until a JoinAccept's RxDelay replaces it
	receiveDelay2     = 2 * time.Second
	uplinkFPort       = 2
	sfForDR0          = 12
	eu868BandwidthKHz = 125
)

func sfForDR(dr int) int { return sfForDR0 - dr }

// ErrMACBusy is returned when the MAC is joining or running an uplink's
// receive windows (LmHandler: LORAMAC_HANDLER_BUSY_ERROR → AT_BUSY_ERROR).
var ErrMACBusy = errors.New("stm32wl5: MAC busy")

// ErrNotJoined is returned for an uplink without a session
// (AT_NO_NETWORK_JOINED).
var ErrNotJoined = errors.New("stm32wl5: not joined")

// startJoin runs the OTAA procedure in the background (the mailbox keeps
// being served; a PROVISION meanwhile gets BUSY): up to attempts
// JoinRequests, then, if firstUplink, one uplink. It reports false if the
// MAC was busy.
func (b *MCU) startJoin(ctx context.Context, attempts int, firstUplink bool) bool {
	b.mu.Lock()
	if b.joining {
		b.mu.Unlock()
		return false
	}
	b.joining = true
	b.mu.Unlock()
	b.joinWG.Add(1)
	go func() {
		defer b.joinWG.Done()
		// A key delivered over NFC while an uplink's receive windows run:
		// the join starts when they have closed.
		if err := b.waitSendDone(ctx); err != nil {
			b.mu.Lock()
			b.joining = false
			b.mu.Unlock()
			return
		}
		joined, err := b.join(ctx, attempts)
		// Joined: the mailbox no longer answers BUSY while the first uplink
		// and its receive windows run.
		b.mu.Lock()
		b.joining = false
		b.mu.Unlock()
		if err == nil && joined && firstUplink {
			err = b.sendFirstUplink(ctx)
		}
		if err != nil && ctx.Err() == nil {
			b.logf("lorawan: %v", err)
		}
	}()
	return true
}

// join sends JoinRequests until one is accepted or the attempts run out.
// Every attempt without a valid JoinAccept prints +EVT:JOIN FAILED: ST's
// AT slave makes one attempt per LmHandlerJoin call and reports each
// (STM32CubeWL LoRaWAN_AT_Slave lora_at.c AT_event_join).
func (b *MCU) join(ctx context.Context, attempts int) (bool, error) {
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			// Back-off between attempts (modelled; LoRaWAN 1.0.4 §7 /
			// RP002 join duty-cycle limits).
			if err := b.cfg.Clock.Spend(ctx, b.cfg.JoinBackoff); err != nil {
				return false, err
			}
		}
		ok, err := b.joinAttempt(ctx, attempt)
		if err != nil {
			if ctx.Err() == nil {
				b.atEvent("JOIN FAILED")
			}
			return false, err
		}
		if ok {
			b.atEvent("JOINED")
			b.markNDEFDirty()
			return true, nil
		}
		b.atEvent("JOIN FAILED")
	}
	b.emit(JoinFailed, "no valid JoinAccept after %d attempts", attempts)
	return false, nil
}

// joinAttempt sends one JoinRequest and runs RX1/RX2.
func (b *MCU) joinAttempt(ctx context.Context, attempt int) (bool, error) {
	b.mu.Lock()
	r := b.rec
	if r.devNonce == 0xFFFF {
		b.mu.Unlock()
		return false, errors.New("DevNonce space exhausted (TS001-1.0.4 §6.2.5); factory reset needed")
	}
	// LoRaMacCrypto.c LoRaMacCryptoPrepareJoinRequest: DevNonce is
	// incremented *before* use (first = 1) and stored before the frame is
	// sent, so a reset cannot make the device reuse it (TS001-1.0.4 §6.2.5).
	r.devNonce++
	err := b.storeCountersLocked(NVMWriteDevNonce, r)
	rec, devEUI, ram := b.rec, b.devEUI, b.ram
	b.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("store DevNonce: %w", err)
	}
	// rec.rootKey is the root key of the network side: the 1.0.x AppKey, or
	// the 1.1 NwkKey (ST's NWK_KEY either way), which signs the JoinRequest.
	phy, err := buildJoinRequest(rec.rootKey, rec.joinEUI, devEUI, rec.devNonce)
	if err != nil {
		return false, err
	}
	ch := eu868Channels[int(rec.devNonce-1)%len(eu868Channels)]
	sf := sfForDR(ram.dr)
	// The receiver opens with the transmission (in Instant timing the
	// network may answer before the window "opens") and follows this
	// uplink only (radio/bind.go); frames are matched to windows by
	// frequency/SF, as a radio only demodulates what it is tuned to.
	sentJR, down, stop, err := b.cfg.Air.SendListen(ctx, radio.Frame{Uplink: true, Frequency: ch, SF: sf, Bandwidth: eu868BandwidthKHz,
		PHYPayload: phy, Sender: b.sender()})
	defer stop()
	if err != nil {
		return false, fmt.Errorf("transmit JoinRequest: %w", err)
	}
	b.emit(JoinRequest, "attempt %d DevNonce %d JoinEUI %X %.1f MHz SF%d", attempt, rec.devNonce, rec.joinEUI, float64(ch)/1e6, sf)
	b.trace("###### =========== JOIN REQUEST ============")

	accept := func(f radio.Frame, _ int) (valid, closeWindow bool, err error) {
		var ja *lorawan.JoinAcceptPayload
		var sess session
		if rec.lorawan11 {
			ja, err = openJoinAccept11(f.PHYPayload, rec.rootKey, rec.joinEUI, devEUI, rec.devNonce)
		} else {
			ja, err = openJoinAccept(f.PHYPayload, rec.rootKey, rec.joinEUI, rec.devNonce)
		}
		if err == nil {
			if rec.lorawan11 {
				sess, err = sessionKeys11(rec.rootKey, rec.atAppKey, ja, rec.joinEUI, rec.devNonce)
			} else {
				nwk, app := sessionKeys10(rec.rootKey, uint32(ja.JoinNonce), ja.HomeNetID, rec.devNonce)
				sess = session{fNwkSIntKey: nwk, sNwkSIntKey: nwk, nwkSEncKey: nwk, appSKey: app}
			}
		}
		if err != nil {
			if errors.Is(err, errNotJoinAccept) {
				return false, false, nil // not a JoinAccept: keep listening
			}
			b.emit(JoinAcceptDropped, "%v", err)
			return false, true, nil
		}
		jn := uint32(ja.JoinNonce)
		b.mu.Lock()
		stored := b.rec.joinNonce
		// LoRaMacCrypto.c IsJoinNonce10xOk (USE_10X_JOIN_NONCE_COUNTER_CHECK):
		// strictly greater than the stored value, which starts at 0. LoRaWAN
		// 1.1 §6.2.3 asks the same of a 1.1 device (JoinNonce > the stored
		// one), so one rule serves both.
		okNonce := jn > stored || (b.cfg.AcceptFirstJoinNonceZero && jn == 0 && stored == 0)
		var serr error
		if okNonce {
			nr := b.rec
			nr.state = provproto.StateJoined
			nr.joinNonce = jn
			nr.devAddr = ja.DevAddr
			nr.nwkSKey, nr.appSKey, nr.fCntUp = sess.fNwkSIntKey, sess.appSKey, 0
			nr.session11 = sess.v11
			nr.sNwkSIntKey, nr.nwkSEncKey = [16]byte{}, [16]byte{}
			if sess.v11 {
				nr.sNwkSIntKey, nr.nwkSEncKey = sess.sNwkSIntKey, sess.nwkSEncKey
			}
			chans := joinChannels(ja.CFList)
			nr.macSet, nr.chans, nr.chMask, nr.macNbTrans = true, [5]uint32{}, 1<<len(chans)-1, 1
			copy(nr.chans[:], chans[len(eu868Channels):])
			nr.macDR, nr.macTXP = byte(b.ram.dr), byte(b.ram.txPower)
			nr.rx1DelayS = max(ja.RXDelay&0x0F, 1)
			serr = b.storeCountersLocked(NVMWriteSession, nr)
			// RxDelay: bits 3..0 in seconds, 0 means 1 (TS001-1.0.4 §5.7).
			b.rxDelay = time.Duration(max(ja.RXDelay&0x0F, 1)) * time.Second
			b.ram.rx1Delay, b.ram.rx2Delay = b.rxDelay, b.rxDelay+time.Second
			b.ram.rx2DR = int(ja.DLSettings.RX2DataRate)
			b.ram.rx1DROffset = int(ja.DLSettings.RX1DROffset)
			b.ram.channels, b.ram.chMask, b.ram.nbRep = chans, nr.chMask, 1
			// A new session: nothing pending from the old one, ADR_ACK_CNT 0
			// (LoRaMac.c ResetMacParameters).
			b.macOut, b.macSticky, b.macConfirm, b.adrAckCnt = nil, nil, nil, 0
			if sess.v11 {
				// A 1.1 session is confirmed by RekeyInd{minor 1} until the
				// network's RekeyConf (LoRaMac.c: added on the JoinAccept).
				// UNCONFIRMED/not modelled: the revert to joining after
				// ADR_ACK_LIMIT uplinks without a RekeyConf.
				b.macConfirm = []lorawan.MACCommand{{CID: lorawan.RekeyInd, Payload: &lorawan.RekeyIndPayload{DevLoRaWANVersion: lorawan.Version{Minor: 1}}}}
			}
		}
		b.mu.Unlock()
		if !okNonce {
			b.emit(JoinAcceptDropped, "JoinNonce %d not greater than stored %d", jn, stored)
			return false, true, nil
		}
		if serr != nil {
			return false, true, fmt.Errorf("store session: %w", serr)
		}
		if sess.v11 {
			b.emit(JoinAccepted, "DevAddr %X NetID %X JoinNonce %d DevNonce %d OptNeg 1 RX1DROffset %d RX2DR %d RxDelay %d FNwkSIntKey KCV %s SNwkSIntKey KCV %s NwkSEncKey KCV %s AppSKey KCV %s",
				ja.DevAddr[:], ja.HomeNetID[:], jn, rec.devNonce, ja.DLSettings.RX1DROffset, ja.DLSettings.RX2DataRate, ja.RXDelay,
				provproto.CheckValue(sess.fNwkSIntKey), provproto.CheckValue(sess.sNwkSIntKey), provproto.CheckValue(sess.nwkSEncKey),
				provproto.CheckValue(sess.appSKey))
		} else {
			b.emit(JoinAccepted, "DevAddr %X NetID %X JoinNonce %d DevNonce %d RX1DROffset %d RX2DR %d RxDelay %d NwkSKey KCV %s AppSKey KCV %s",
				ja.DevAddr[:], ja.HomeNetID[:], jn, rec.devNonce, ja.DLSettings.RX1DROffset, ja.DLSettings.RX2DataRate, ja.RXDelay,
				provproto.CheckValue(sess.fNwkSIntKey), provproto.CheckValue(sess.appSKey))
		}
		return true, true, nil
	}
	joined, err := b.rxWindows(ctx, down, sentJR, ram.jn1Delay, ram.jn2Delay, ch, sf, ram, accept)
	if err != nil {
		return false, err
	}
	if !joined {
		b.logf("lorawan: no valid JoinAccept in RX1/RX2 (attempt %d)", attempt)
	}
	return joined, nil
}

// rxWindows models a class-A receive sequence after a transmission: RX1 at
// d1 on the uplink channel and data rate (RX1DROffset 0), then — if RX1 did
// not deliver a valid frame — RX2 at d2 on 869.525 MHz SF12. The delays are
// spent on the modelled clock; each window waits at most RXWindowCap of wall
// time. handle reports whether a frame was valid (the sequence ends) and
// whether it closed the window (a demodulated frame puts the radio to sleep).
// An invalid frame in RX1 does not cancel RX2 here; whether LoRaMac-node
// stops the RX2 timer in that case is UNCONFIRMED.
//
// RX2 uses the AT+RX2FQ / AT+RX2DR settings (default 869.525 MHz DR0).
//
// seq is the air's number of the uplink; when the gateway announces that the
// network's answer to it is complete (radio.Air.EndReply) the remaining
// windows are left at once — their modelled time is still spent — instead of
// waiting out RXWindowCap of wall time for a frame that cannot come.
func (b *MCU) rxWindows(ctx context.Context, down <-chan radio.Frame, up radio.Frame, d1, d2 time.Duration, freq uint32, sf int,
	ram ramSettings, handle rxHandler) (bool, error) {
	if b.cfg.Clock.Mode() == timing.Realistic {
		return b.rxWindowsTimed(ctx, down, up, d1, d2, freq, sf, ram, handle)
	}
	seq := up.Seq
	if err := b.cfg.Clock.Spend(ctx, d1); err != nil {
		return false, err
	}
	ended := false
	got, err := b.window(ctx, down, seq, &ended, freq, sf, 1, handle)
	if err != nil || got {
		return got, err
	}
	if err := b.cfg.Clock.Spend(ctx, d2-d1); err != nil {
		return false, err
	}
	if ended {
		return false, nil
	}
	return b.window(ctx, down, seq, &ended, ram.rx2Freq, sfForDR(ram.rx2DR), 2, handle)
}

// rxHandler handles a frame demodulated in RX slot 1 or 2.
type rxHandler func(f radio.Frame, slot int) (valid, closeWindow bool, err error)

func (b *MCU) window(ctx context.Context, down <-chan radio.Frame, seq uint64, ended *bool, freq uint32, sf, slot int, handle rxHandler) (bool, error) {
	t := time.NewTimer(b.cfg.RXWindowCap)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, nil
		case f, ok := <-down:
			if !ok {
				return false, nil
			}
			if f.EndOfReply {
				if seq != 0 && f.ReplyTo == seq {
					*ended = true
					return false, nil
				}
				continue
			}
			if f.Frequency != freq || f.SF != sf {
				continue
			}
			// A class-A downlink answering another uplink is on the air at
			// that uplink's RX1/RX2 time (gateway: context counter + delay),
			// not in this device's window — instant timing only makes them
			// look simultaneous. (Uplinks that ended together would have
			// collided; the air does not model collisions.)
			if seq != 0 && f.ReplyTo != 0 && f.ReplyTo != seq {
				continue
			}
			valid, closeWindow, err := handle(f, slot)
			if err != nil || valid || closeWindow {
				return valid, err
			}
		}
	}
}

// sendFirstUplink sends one unconfirmed uplink on FPort 2 so the network
// server sees data, then runs its receive windows.
func (b *MCU) sendFirstUplink(ctx context.Context) error {
	b.mu.Lock()
	if b.joining || b.sending {
		b.mu.Unlock()
		return ErrMACBusy
	}
	b.sending = true
	b.mu.Unlock()
	return b.sendUplink(ctx, uplinkFPort, false, []byte{0x01, b.cfg.Firmware[0], b.cfg.Firmware[1], b.cfg.Firmware[2]})
}

// SendUplink sends an unconfirmed data uplink (like AT+SEND=<port>:0:<hex>)
// and then opens RX1/RX2 for a downlink. The board must be joined and the
// MAC idle (ErrNotJoined, ErrMACBusy).
func (b *MCU) SendUplink(ctx context.Context, fPort uint8, payload []byte) error {
	if err := b.claimSend(); err != nil {
		return err
	}
	return b.sendUplink(ctx, fPort, false, payload)
}

// claimSend marks the MAC busy with an uplink.
func (b *MCU) claimSend() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rec.state != provproto.StateJoined {
		return ErrNotJoined
	}
	if b.joining || b.sending {
		return ErrMACBusy
	}
	b.sending = true
	return nil
}

// sendUplink runs one uplink and its receive windows; the caller has set
// b.sending, which is cleared on return.
func (b *MCU) sendUplink(ctx context.Context, fPort uint8, confirmed bool, payload []byte) error {
	defer func() {
		b.mu.Lock()
		b.sending = false
		b.mu.Unlock()
	}()
	b.mu.Lock()
	if b.rec.state != provproto.StateJoined {
		b.mu.Unlock()
		return ErrNotJoined
	}
	adrAckReq := b.adrNextLocked()
	r := b.rec
	ram := b.ram
	d1 := ram.rx1Delay
	fCnt := r.fCntUp
	r.fCntUp++
	// The MAC state LinkADRReq changed rides along with the counter.
	r.chMask, r.macDR, r.macTXP, r.macNbTrans = ram.chMask, byte(ram.dr), byte(ram.txPower), byte(ram.nbRep)
	r.rx1DelayS = byte(ram.rx1Delay / time.Second) // RXTimingSetupReq may have changed it
	r.chans = [5]uint32{}                          // channels 3..7, as NewChannelReq left them
	if len(ram.channels) > len(eu868Channels) {
		copy(r.chans[:], ram.channels[len(eu868Channels):])
	}
	// The frame counter is persisted before use for the same reason as the
	// DevNonce: never reuse a counter value with the same session keys.
	err := b.storeCountersLocked(NVMWriteFCnt, r)
	rec := b.rec
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("stm32wl5: store FCntUp: %w", err)
	}
	// MAC answers and requests waiting for this uplink (maccommand.go); like
	// LoRaMac-node, non-sticky commands are gone once transmitted. They ride
	// along only if the frame stays within the data rate's maximum
	// (LoRaMacQueryTxPossible); otherwise they wait for the next uplink —
	// a simplification: LmHandlerSend would send an empty frame to flush
	// them and drop the application payload.
	var fOpts []byte
	var taken []lorawan.MACCommand
	if b.macOutSizeLocked()+len(payload) <= eu868MaxPayload(ram.dr) {
		taken = append(taken, b.macOut...)
		fOpts = b.takeMACOutLocked()
		taken = taken[:len(taken)-len(b.macOut)]
	}
	b.mu.Unlock()
	// A frame that never made it to the air takes its MAC commands back.
	sentOK := false
	defer func() {
		if !sentOK && len(taken) > 0 {
			b.mu.Lock()
			b.macOut = append(taken, b.macOut...)
			b.mu.Unlock()
		}
	}()
	chIdx, ch := uplinkChannel(ram, fCnt)
	sess := session{fNwkSIntKey: rec.nwkSKey, sNwkSIntKey: rec.sNwkSIntKey, nwkSEncKey: rec.nwkSEncKey, appSKey: rec.appSKey, v11: rec.session11}
	var phy []byte
	if sess.v11 {
		phy, err = buildDataUp11(sess, rec.devAddr, fCnt, fPort, payload, lorawan.FCtrl{ADR: !rec.adrOff, ADRACKReq: adrAckReq}, confirmed, uint8(ram.dr), uint8(chIdx), fOpts)
	} else {
		phy, err = buildDataUp(rec.nwkSKey, rec.appSKey, rec.devAddr, fCnt, fPort, payload, lorawan.FCtrl{ADR: !rec.adrOff, ADRACKReq: adrAckReq}, confirmed, fOpts)
	}
	if err != nil {
		return err
	}
	sf := sfForDR(ram.dr)
	// RX1/RX2 follow this uplink (radio/bind.go).
	sentUp, down, stop, err := b.cfg.Air.SendListen(ctx, radio.Frame{Uplink: true, Frequency: ch, SF: sf, Bandwidth: eu868BandwidthKHz,
		PowerBackoff: 2 * float64(ram.txPower), // EU868: 2 dB per TXPower index (RP002-1.0.3 §2.4.3 table, as remembered: UNCONFIRMED)
		PHYPayload:   phy, Sender: b.sender()})
	defer stop()
	if err != nil {
		return fmt.Errorf("stm32wl5: transmit uplink: %w", err)
	}
	sentOK = true
	b.emit(Uplink, "DevAddr %X FCnt %d FPort %d %d bytes %.1f MHz SF%d confirmed=%t", rec.devAddr, fCnt, fPort, len(payload), float64(ch)/1e6, sf, confirmed)
	mt := "UNCONFIRMED"
	if confirmed {
		mt = "CONFIRMED"
	}
	b.trace(fmt.Sprintf("###### U/L FRAME:%04d | PORT:%d | DR:%d | PWR:%d | MSG TYPE:%s", fCnt, fPort, ram.dr, ram.txPower, mt))
	rx1DR := max(ram.dr-ram.rx1DROffset, 0)
	heard, err := b.rxWindows(ctx, down, sentUp, d1, d1+time.Second, ch, sfForDR(rx1DR), ram, func(f radio.Frame, slot int) (bool, bool, error) {
		var d dataDown
		var err error
		if sess.v11 {
			var confFCnt uint32
			if confirmed {
				confFCnt = fCnt // B0 of an ACK carries the acknowledged uplink's FCnt
			}
			d, err = openDataDown11(f.PHYPayload, sess, rec.devAddr, confFCnt)
		} else {
			d, err = openDataDown(f.PHYPayload, rec.nwkSKey, rec.appSKey, rec.devAddr)
		}
		if err != nil {
			return false, false, nil // not ours
		}
		p := -1
		if d.FPort != nil {
			p = int(*d.FPort)
		}
		ack := d.ACK
		b.emit(Downlink, "FCnt %d FPort %d %d bytes slot RX%d ack=%t mac=%s", d.FCnt, p, len(d.Data), slot, ack, macNames(d.MAC))
		linkCheck := b.handleDownlinkMAC(d.MAC, int(f.SNR))
		// lora_at.c AT_event_receive: the payload line first, then the RX
		// line, with DMODM/GWN after a
		// LinkCheckAns.
		if p > 0 && len(d.Data) > 0 {
			b.atEvent(fmt.Sprintf("%d:%02X:%X", p, len(d.Data), d.Data))
		}
		dr := rx1DR
		if slot == 2 {
			dr = ram.rx2DR
		}
		line := fmt.Sprintf("RX_%d, PORT %d, DR %d, RSSI %d, SNR %d", slot, max(p, 0), dr, int(f.RSSI), int(f.SNR))
		if linkCheck != nil {
			line += fmt.Sprintf(", DMODM %d, GWN %d", linkCheck.Margin, linkCheck.GwCnt)
		}
		b.atEvent(line)
		if confirmed && ack {
			b.atEvent("SEND_CONFIRMED")
		}
		return true, true, nil
	})
	// ADR_ACK_CNT: reset by a downlink heard in RX1/RX2, else counted while
	// ADR is on (LoRaMac.c ProcessRadioRxDone / StopRetransmission).
	b.mu.Lock()
	switch {
	case heard:
		b.adrAckCnt = 0
	case !b.rec.adrOff && b.adrAckCnt < 1<<32-1:
		b.adrAckCnt++
	}
	b.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("stm32wl5: uplink rx: %w", err)
	}
	return nil
}

// waitSendDone waits until no uplink is in progress.
func (b *MCU) waitSendDone(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		b.mu.Lock()
		busy := b.sending
		b.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sender names the board's radio on the air (duty-cycle accounting key).
func (b *MCU) sender() string { return fmt.Sprintf("stm32wl5 %X", b.cfg.UniqueID) }
