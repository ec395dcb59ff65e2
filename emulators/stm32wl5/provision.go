package stm32wl5

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// handle answers one mailbox request (SPEC.md §2–§5). It always returns a
// frame to post: the answer, or ERROR with the status — except for a raw
// firmware chunk (SPEC.md §7.2, firmware.go), which gets nil: no answer.
func (b *MCU) handle(ctx context.Context, msg []byte) []byte {
	if resp, ok := b.fwData(msg); ok {
		return resp
	}
	return b.handleFrame(ctx, msg)
}

// handleFrame answers one request frame (over ST25FTM image data has its
// own command, so every FTMRequest is a frame).
func (b *MCU) handleFrame(ctx context.Context, msg []byte) []byte {
	reqType := provproto.Type(0)
	if len(msg) >= 2 {
		reqType = provproto.Type(msg[1])
	}
	f, err := provproto.Unmarshal(msg)
	if err != nil {
		st, _ := provproto.StatusOf(err)
		b.logf("nfc: rejected %d-byte message: %s", len(msg), st)
		return provproto.MarshalError(st, reqType)
	}
	var resp []byte
	switch f.Type {
	case provproto.TypeGetIdentity:
		resp, err = b.identity()
	case provproto.TypeProvision:
		resp, err = b.provision(ctx, f.Body)
	case provproto.TypeGetLog:
		resp, err = b.getLog(f.Body)
	case provproto.TypeFWBegin:
		resp, err = b.fwBegin(f.Body)
	case provproto.TypeFWEnd:
		resp, err = b.fwEnd()
	default:
		// A well-formed device → phone message (IDENTITY, LOG …) is not a
		// request this end answers.
		err = &provproto.Error{Status: provproto.UnknownType, Detail: "not a request: " + f.Type.String()}
	}
	if err != nil {
		st, ok := provproto.StatusOf(err)
		if !ok {
			st = provproto.Storage // only NVM failures are not protocol errors
		}
		b.logf("nfc: %s → ERROR %s", f.Type, st)
		return provproto.MarshalError(st, f.Type)
	}
	return resp
}

func (b *MCU) identity() ([]byte, error) {
	var nb [4]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, &provproto.Error{Status: provproto.Busy, Detail: "rng"}
	}
	b.mu.Lock()
	b.nonce, b.nonceOK = binary.LittleEndian.Uint32(nb[:]), true
	id := provproto.Identity{
		DevEUI:       provproto.EUI64(b.devEUI),
		JoinEUI:      provproto.EUI64(b.rec.joinEUI),
		Firmware:     b.cfg.Firmware,
		State:        b.rec.state,
		Capabilities: provproto.CapLog | provproto.CapLoRaWAN11,
		Nonce:        b.nonce,
	}
	if b.priv != nil {
		id.Capabilities |= provproto.CapWrapped
		id.PublicKey = b.priv.PublicKey().Bytes()
	}
	b.mu.Unlock()
	b.logf("nfc: IDENTITY state %s", id.State)
	return id.Marshal()
}

func reject(s provproto.Status, detail string) error {
	return &provproto.Error{Status: s, Detail: detail}
}

func (b *MCU) provision(ctx context.Context, body []byte) ([]byte, error) {
	req, err := provproto.ParseProvision(body)
	b.mu.Lock()
	// SPEC §5.1: the nonce is single-use; any PROVISION consumes it.
	nonce, nonceOK := b.nonce, b.nonceOK
	b.nonceOK = false
	b.mu.Unlock()
	if err != nil {
		b.rejected(err)
		return nil, err
	}
	if !nonceOK || req.Nonce != nonce {
		err := reject(provproto.Replay, "device nonce does not match the current IDENTITY")
		b.rejected(err)
		return nil, err
	}
	// SPEC §5.6: REPLAY, then ALREADY_PROVISIONED, then UNSUPPORTED, then
	// BUSY, then the key block (UNWRAP_FAILED).
	b.mu.Lock()
	joining, state := b.joining, b.rec.state
	b.mu.Unlock()
	switch {
	case state != provproto.StateFactory && !req.Reprovision():
		err = reject(provproto.AlreadyProvisioned, "key stored; re-provision flag not set")
	case req.Wrapped() && b.priv == nil:
		err = reject(provproto.Unsupported, "wrapped-key mode not supported")
	case req.Region != provproto.RegionEU868:
		err = reject(provproto.Unsupported, "region: firmware built for EU868 only")
	case joining:
		err = reject(provproto.Busy, "join in progress")
	}
	if err != nil {
		b.rejected(err)
		return nil, err
	}
	keys, err := req.Open(provproto.EUI64(b.devEUI), b.priv)
	if err != nil {
		b.rejected(err)
		return nil, err
	}
	kcv := provproto.CheckValue(keys.AppKey)
	var nwkKCV provproto.KCV
	if keys.NwkKey != nil {
		nwkKCV = provproto.CheckValue(*keys.NwkKey)
	}

	b.mu.Lock()
	r := b.rec
	r.state = provproto.StateProvisioned
	r.joinEUI = req.JoinEUI
	if keys.NwkKey != nil {
		// LoRaWAN 1.1: ST's NWK_KEY holds the NwkKey (JoinRequest MIC,
		// JoinAccept cipher, network session keys) and APP_KEY the AppKey
		// (AppSKey) — LoRaMacCrypto.c DeriveSessionKey11x.
		r.lorawan11 = true
		r.rootKey = *keys.NwkKey
		r.atAppKey = keys.AppKey
	} else {
		r.lorawan11 = false
		r.rootKey = keys.AppKey
		// ST's APP_KEY follows the root key (our choice: a 1.0.4 build uses
		// APP_KEY only for multicast/package keys, LoRaMacCrypto.c, so
		// keeping both AT keys equal avoids surprises).
		r.atAppKey = keys.AppKey
	}
	if b.cfg.Faults.StoreCorruptKey {
		r.rootKey[0] ^= 0x5A // the injected firmware bug
	}
	leaked := r.rootKey
	// SPEC §5.3: the session is discarded, the DevNonce counter kept (TS001
	// 1.0.4 §6.2.5: never reused). The JoinNonce reference is reset: the new
	// key belongs to a new join server whose JoinNonces start again at 0.
	r.joinNonce = 0
	r.devAddr, r.nwkSKey, r.appSKey, r.fCntUp = [4]byte{}, [16]byte{}, [16]byte{}, 0
	r.sNwkSIntKey, r.nwkSEncKey, r.session11 = [16]byte{}, [16]byte{}, false
	err = b.saveLocked(NVMWriteProvision, r) // SPEC §5.2: stored before the ACK
	b.mu.Unlock()
	if b.cfg.Faults.LeakKeyToLog {
		b.logf("nvm: stored root key %X", leaked) // the injected leak
	}
	if err != nil {
		b.logf("nvm: store failed: %v", err)
		if errors.Is(err, ErrPowerLoss) {
			return nil, err
		}
		return nil, reject(provproto.Storage, "NVM write failed; old key kept")
	}
	mode := "clear"
	if req.Wrapped() {
		mode = "wrapped"
	}
	if keys.NwkKey != nil {
		b.emit(Provisioned, "AppKey KCV %s NwkKey KCV %s JoinEUI %s (%s, reprovision=%t, LoRaWAN 1.1)", kcv, nwkKCV, req.JoinEUI, mode, req.Reprovision())
	} else {
		b.emit(Provisioned, "AppKey KCV %s JoinEUI %s (%s, reprovision=%t)", kcv, req.JoinEUI, mode, req.Reprovision())
	}
	// tap2join extension of the AT events (not in ST's set): the host sees
	// the provisioning by key check value only.
	b.atEvent("NFC_PROVISIONED KCV=" + kcv.String())
	ack := provproto.Ack{AppKCV: kcv, NwkKCV: nwkKCV, JoinEUI: req.JoinEUI}
	resp, err := ack.Marshal()
	if err != nil {
		return nil, err
	}
	b.markNDEFDirty()
	b.startJoin(ctx, b.cfg.JoinAttempts, true)
	return resp, nil
}

func (b *MCU) rejected(err error) {
	st, _ := provproto.StatusOf(err)
	b.emit(ProvisionRejected, "%s", st)
	b.atEvent("NFC_REJECTED " + st.String())
}

func (b *MCU) getLog(body []byte) ([]byte, error) {
	off, err := provproto.ParseGetLog(body)
	if err != nil {
		return nil, err
	}
	text := b.logText()
	if len(text) > 0xFFFF {
		text = text[len(text)-0xFFFF:]
	}
	start := min(int(off), len(text))
	end := min(start+provproto.MaxLogChunk, len(text))
	return provproto.LogChunk{Total: uint16(len(text)), Offset: uint16(start), Data: text[start:end]}.Marshal()
}
