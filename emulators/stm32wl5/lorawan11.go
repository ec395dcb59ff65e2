package stm32wl5

import (
	"errors"
	"fmt"

	"github.com/brocaar/lorawan"

	// lwkeys is a leaf key-derivation package (AES-128 ECB over pad16
	// blocks, pinned to the brocaar/ChirpStack vectors); the twin imports it
	// for the LoRaWAN 1.1 session and join-server keys rather than keeping a
	// second copy of the same formulas. It pulls in nothing of the network
	// server.
	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// LoRaWAN 1.1 end-device side (LoRaWAN 1.1 §6.2; frame layouts and key
// derivations as in brocaar/lorawan phypayload.go and ChirpStack v4
// chirpstack/src/uplink/join.rs). The JoinRequest is signed with
// NwkKey (buildJoinRequest with the NwkKey as root key); the JoinAccept is
// decrypted with NwkKey and, with OptNeg=1, signed with JSIntKey.

// session holds the keys of one session. For a LoRaWAN 1.0 session
// (1.0.4 device, or a 1.1 device answered with OptNeg=0) the three network
// keys are the 1.0 NwkSKey.
type session struct {
	fNwkSIntKey, sNwkSIntKey, nwkSEncKey, appSKey [16]byte
	v11                                           bool // OptNeg=1: 1.1 MICs and FOpts cipher
}

// openJoinAccept11 decrypts a JoinAccept answering a Join-request with NwkKey
// and checks its MIC: with OptNeg=1 over JoinReqType(FFh)|JoinEUI|DevNonce|
// MHDR|JoinNonce|NetID|DevAddr|DLSettings|RxDelay|CFList keyed with
// JSIntKey = aes128_encrypt(NwkKey, 06h|DevEUI|pad16); with OptNeg=0 (a 1.0
// network) as in 1.0, keyed with NwkKey. EUIs are given MSB first.
func openJoinAccept11(phy []byte, nwkKey [16]byte, joinEUI, devEUI [8]byte, devNonce uint16) (*lorawan.JoinAcceptPayload, error) {
	p, ja, err := decryptJoinAccept(phy, nwkKey)
	if err != nil {
		return nil, err
	}
	micKey := lorawan.AES128Key(nwkKey)
	if ja.DLSettings.OptNeg {
		k, err := lwkeys.JSIntKey(lorawan.AES128Key(nwkKey), lorawan.EUI64(devEUI))
		if err != nil {
			return nil, fmt.Errorf("JSIntKey: %w", err)
		}
		micKey = k
	}
	if err := checkJoinAcceptMIC(p, joinEUI, devNonce, micKey); err != nil {
		return nil, err
	}
	return ja, nil
}

// sessionKeys11 derives the session keys of a 1.1 device from its JoinAccept:
// OptNeg=1 → FNwkSIntKey, SNwkSIntKey, NwkSEncKey from NwkKey and AppSKey
// from AppKey over JoinNonce|JoinEUI|DevNonce (lwkeys.Derive11); OptNeg=0 →
// the 1.0 formulas with NwkKey for both keys (STM32CubeWL LoRaMacCrypto.c
// DeriveSessionKey10x; ChirpStack join.rs with opt_neg=false).
func sessionKeys11(nwkKey, appKey [16]byte, ja *lorawan.JoinAcceptPayload, joinEUI [8]byte, devNonce uint16) (session, error) {
	var sk lwkeys.SessionKeys
	var err error
	if ja.DLSettings.OptNeg {
		sk, err = lwkeys.Derive11(lorawan.AES128Key(nwkKey), lorawan.AES128Key(appKey), lorawan.EUI64(joinEUI), ja.JoinNonce, lorawan.DevNonce(devNonce))
	} else {
		sk, err = lwkeys.Derive10(lorawan.AES128Key(nwkKey), ja.HomeNetID, ja.JoinNonce, lorawan.DevNonce(devNonce))
	}
	if err != nil {
		return session{}, err
	}
	return session{fNwkSIntKey: sk.FNwkSIntKey, sNwkSIntKey: sk.SNwkSIntKey, nwkSEncKey: sk.NwkSEncKey, appSKey: sk.AppSKey,
		v11: ja.DLSettings.OptNeg}, nil
}

// buildDataUp11 returns a LoRaWAN 1.1 data uplink (§4.3.3, §4.4): FRMPayload
// encrypted with AppSKey (NwkSEncKey for FPort 0), MIC = cmacS[0..1] | cmacF[0..1] with
// SNwkSIntKey over B1 (ConfFCnt, TxDr, TxCh) and FNwkSIntKey over B0. No FOpts
// are sent, so there is nothing to encrypt with NwkSEncKey. txCh is the index
// of the uplink channel in the region's channel list.
func buildDataUp11(s session, devAddr [4]byte, fCnt uint32, fPort uint8, payload []byte, fc lorawan.FCtrl, confirmed bool, txDR, txCh uint8, fOpts []byte) ([]byte, error) {
	p := newDataUp(devAddr, fCnt, fPort, payload, fc, confirmed, fOpts)
	// FOpts are encrypted with NwkSEncKey in 1.1 (§4.3.1.6).
	if err := p.EncryptFOpts(lorawan.AES128Key(s.nwkSEncKey)); err != nil {
		return nil, fmt.Errorf("stm32wl5: encrypt FOpts: %w", err)
	}
	key := s.appSKey
	if fPort == 0 {
		key = s.nwkSEncKey // FPort 0: MAC commands (§4.3.3)
	}
	if err := p.EncryptFRMPayload(lorawan.AES128Key(key)); err != nil {
		return nil, fmt.Errorf("stm32wl5: encrypt uplink: %w", err)
	}
	// ConfFCnt is the FCnt of an acknowledged confirmed downlink; this
	// device never sets ACK in an uplink, so it is 0.
	if err := p.SetUplinkDataMIC(lorawan.LoRaWAN1_1, 0, txDR, txCh, lorawan.AES128Key(s.fNwkSIntKey), lorawan.AES128Key(s.sNwkSIntKey)); err != nil {
		return nil, fmt.Errorf("stm32wl5: uplink MIC: %w", err)
	}
	return marshalDataUp(p)
}

// openDataDown11 checks a LoRaWAN 1.1 data downlink for devAddr (MIC with
// SNwkSIntKey over B0 with ConfFCnt = the confirmed uplink's FCnt when ACK is
// set) and decrypts it: FPort > 0 with AppSKey, FPort 0 and FOpts (MAC
// commands) with NwkSEncKey (§4.3.1.6, §4.3.3).
func openDataDown11(phy []byte, s session, devAddr [4]byte, confFCnt uint32) (dataDown, error) {
	p, mp, err := decodeDataDown(phy, devAddr)
	if err != nil {
		return dataDown{}, err
	}
	ok, err := p.ValidateDownlinkDataMIC(lorawan.LoRaWAN1_1, confFCnt, lorawan.AES128Key(s.sNwkSIntKey))
	if err != nil || !ok {
		return dataDown{}, errors.New("downlink MIC invalid")
	}
	if len(mp.FHDR.FOpts) > 0 {
		if err := p.DecryptFOpts(lorawan.AES128Key(s.nwkSEncKey)); err != nil {
			return dataDown{}, fmt.Errorf("FOpts: %w", err)
		}
	}
	return decryptDataDown(p, mp, s.nwkSEncKey, s.appSKey)
}
