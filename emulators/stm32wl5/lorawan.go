package stm32wl5

import (
	"errors"
	"fmt"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
)

// LoRaWAN 1.0.4 end-device frames. Frame building, MICs and the JoinAccept
// cipher come from brocaar/lorawan; the session-key derivations, which the
// library keeps unexported (backend/joinserver getSKey), come from
// fixtures/proto/lwkeys, a leaf package shared with the network server.
//
// Key naming: in the STM32CubeWL 1.0.4 build the root key that signs the
// JoinRequest, decrypts the JoinAccept and derives the session keys is NWK_KEY
// (LoRaMacCrypto.c LoRaMacCryptoPrepareJoinRequest, DeriveSessionKey10x;
// Mac/LoRaMac.c MIB_NWK_KEY); the spec (TS001-1.0.4 §6.2.5) calls the same
// key "AppKey", and ChirpStack stores it as DeviceKeys.nwk_key. In our flow the
// AppKey delivered over NFC is that root key.

// buildJoinRequest returns the 23-byte JoinRequest PHYPayload (TS001-1.0.4
// §6.2.5): MHDR 00h | JoinEUI | DevEUI | DevNonce | MIC, MIC = aes128_cmac(root
// key, MHDR|JoinEUI|DevEUI|DevNonce)[0..3]. EUIs are given MSB first.
func buildJoinRequest(rootKey [16]byte, joinEUI, devEUI [8]byte, devNonce uint16) ([]byte, error) {
	p := lorawan.PHYPayload{
		MHDR: lorawan.MHDR{MType: lorawan.JoinRequest, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.JoinRequestPayload{
			JoinEUI:  lorawan.EUI64(joinEUI),
			DevEUI:   lorawan.EUI64(devEUI),
			DevNonce: lorawan.DevNonce(devNonce),
		},
	}
	if err := p.SetUplinkJoinMIC(lorawan.AES128Key(rootKey)); err != nil {
		return nil, fmt.Errorf("stm32wl5: join request MIC: %w", err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("stm32wl5: join request: %w", err)
	}
	return b, nil
}

// Reasons a JoinAccept is dropped (surfaced in JoinAcceptDropped events).
var (
	errNotJoinAccept = errors.New("not a JoinAccept")
	errJoinMIC       = errors.New("JoinAccept MIC invalid")
	errOptNeg        = errors.New("JoinAccept has OptNeg set (LoRaWAN 1.1 network); this is a 1.0.4 device")
)

// openJoinAccept decrypts a JoinAccept and checks its MIC (TS001-1.0.4
// §6.2.6): the network "decrypts" with AES-ECB, so the device encrypts; the
// 1.0 MIC is aes128_cmac(root key, MHDR|JoinNonce|NetID|DevAddr|DLSettings|
// RxDelay|CFList).
func openJoinAccept(phy []byte, rootKey [16]byte, joinEUI [8]byte, devNonce uint16) (*lorawan.JoinAcceptPayload, error) {
	p, ja, err := decryptJoinAccept(phy, rootKey)
	if err != nil {
		return nil, err
	}
	if ja.DLSettings.OptNeg {
		return nil, errOptNeg
	}
	if err := checkJoinAcceptMIC(p, joinEUI, devNonce, lorawan.AES128Key(rootKey)); err != nil {
		return nil, err
	}
	return ja, nil
}

// decryptJoinAccept decodes a JoinAccept and decrypts it with the root key
// (the 1.0 root key or the 1.1 NwkKey).
func decryptJoinAccept(phy []byte, rootKey [16]byte) (*lorawan.PHYPayload, *lorawan.JoinAcceptPayload, error) {
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(phy); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	if p.MHDR.MType != lorawan.JoinAccept {
		return nil, nil, errNotJoinAccept
	}
	if err := p.DecryptJoinAcceptPayload(lorawan.AES128Key(rootKey)); err != nil {
		return nil, nil, fmt.Errorf("decrypt: %w", err)
	}
	ja, ok := p.MACPayload.(*lorawan.JoinAcceptPayload)
	if !ok {
		return nil, nil, errNotJoinAccept
	}
	return &p, ja, nil
}

// checkJoinAcceptMIC checks the MIC of a decrypted JoinAccept answering a
// Join-request (JoinReqType FFh) with key.
func checkJoinAcceptMIC(p *lorawan.PHYPayload, joinEUI [8]byte, devNonce uint16, key lorawan.AES128Key) error {
	ok, err := p.ValidateDownlinkJoinMIC(lorawan.JoinRequestType, lorawan.EUI64(joinEUI), lorawan.DevNonce(devNonce), key)
	if err != nil {
		return fmt.Errorf("mic: %w", err)
	}
	if !ok {
		return errJoinMIC
	}
	return nil
}

// sessionKeys10 derives the LoRaWAN 1.0 session keys (TS001-1.0.4 §6.2.6:
// NwkSKey and AppSKey from the root key over JoinNonce|NetID|DevNonce) with
// the same lwkeys derivation the 1.1 path uses, so the twin and the embedded
// network server share one implementation pinned to the brocaar/ChirpStack
// test vectors (fixtures/proto/lwkeys/lwkeys_test.go).
func sessionKeys10(rootKey [16]byte, joinNonce uint32, netID [3]byte, devNonce uint16) (nwkSKey, appSKey [16]byte) {
	// The inputs are fixed-size and in range (JoinNonce is 24-bit on the
	// air), so the derivation cannot fail.
	sk, _ := lwkeys.Derive10(lorawan.AES128Key(rootKey), lorawan.NetID(netID), lorawan.JoinNonce(joinNonce), lorawan.DevNonce(devNonce))
	return sk.FNwkSIntKey, sk.AppSKey
}

// buildDataUp returns a data uplink, unconfirmed or confirmed (1.0:
// FRMPayload encrypted with AppSKey for FPort > 0, MIC over B0|msg with
// NwkSKey — TS001-1.0.4 §4.3.3, §4.4), with fOpts (encoded MAC commands, at
// most 15 bytes) in the clear in FHDR. devAddr is MSB first.
func buildDataUp(nwkSKey, appSKey [16]byte, devAddr [4]byte, fCnt uint32, fPort uint8, payload []byte, fc lorawan.FCtrl, confirmed bool, fOpts []byte) ([]byte, error) {
	p := newDataUp(devAddr, fCnt, fPort, payload, fc, confirmed, fOpts)
	if err := p.EncryptFRMPayload(lorawan.AES128Key(appSKey)); err != nil {
		return nil, fmt.Errorf("stm32wl5: encrypt uplink: %w", err)
	}
	k := lorawan.AES128Key(nwkSKey)
	if err := p.SetUplinkDataMIC(lorawan.LoRaWAN1_0, 0, 0, 0, k, k); err != nil {
		return nil, fmt.Errorf("stm32wl5: uplink MIC: %w", err)
	}
	return marshalDataUp(p)
}

// newDataUp is the plaintext data uplink, unconfirmed or confirmed, that
// buildDataUp (1.0) and buildDataUp11 (1.1) encrypt and sign. fc carries the
// ADR and ADRACKReq bits (FOptsLen and ACK are set by the codec / unused).
func newDataUp(devAddr [4]byte, fCnt uint32, fPort uint8, payload []byte, fc lorawan.FCtrl, confirmed bool, fOpts []byte) *lorawan.PHYPayload {
	mt := lorawan.UnconfirmedDataUp
	if confirmed {
		mt = lorawan.ConfirmedDataUp
	}
	return &lorawan.PHYPayload{
		MHDR: lorawan.MHDR{MType: mt, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.MACPayload{
			FHDR:       lorawan.FHDR{DevAddr: lorawan.DevAddr(devAddr), FCtrl: lorawan.FCtrl{ADR: fc.ADR, ADRACKReq: fc.ADRACKReq}, FCnt: fCnt, FOpts: fOptsPayload(fOpts)},
			FPort:      &fPort,
			FRMPayload: []lorawan.Payload{&lorawan.DataPayload{Bytes: append([]byte(nil), payload...)}},
		},
	}
}

func marshalDataUp(p *lorawan.PHYPayload) ([]byte, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("stm32wl5: uplink: %w", err)
	}
	return b, nil
}

func fOptsPayload(b []byte) []lorawan.Payload {
	if len(b) == 0 {
		return nil
	}
	return []lorawan.Payload{&lorawan.DataPayload{Bytes: append([]byte(nil), b...)}}
}

// dataDown is a data downlink opened by the device.
type dataDown struct {
	FCnt  uint32
	FPort *uint8 // nil: no FRMPayload
	Data  []byte // decrypted application payload (FPort > 0)
	ACK   bool
	MAC   []lorawan.MACCommand // from FOpts, or the FRMPayload of FPort 0
}

// openDataDown checks a 1.0 data downlink for devAddr (MIC with NwkSKey) and
// decrypts it: FPort > 0 with AppSKey, FPort 0 (MAC commands) with NwkSKey;
// FOpts are in the clear in 1.0.
func openDataDown(phy []byte, nwkSKey, appSKey [16]byte, devAddr [4]byte) (dataDown, error) {
	p, mp, err := decodeDataDown(phy, devAddr)
	if err != nil {
		return dataDown{}, err
	}
	ok, err := p.ValidateDownlinkDataMIC(lorawan.LoRaWAN1_0, 0, lorawan.AES128Key(nwkSKey))
	if err != nil || !ok {
		return dataDown{}, errors.New("downlink MIC invalid")
	}
	if err := p.DecodeFOptsToMACCommands(); err != nil {
		return dataDown{}, fmt.Errorf("FOpts: %w", err)
	}
	return decryptDataDown(p, mp, nwkSKey, appSKey)
}

func decodeDataDown(phy []byte, devAddr [4]byte) (*lorawan.PHYPayload, *lorawan.MACPayload, error) {
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(phy); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	if p.MHDR.MType != lorawan.UnconfirmedDataDown && p.MHDR.MType != lorawan.ConfirmedDataDown {
		return nil, nil, fmt.Errorf("mtype %s is not a data downlink", p.MHDR.MType)
	}
	mp, ok := p.MACPayload.(*lorawan.MACPayload)
	if !ok || mp.FHDR.DevAddr != lorawan.DevAddr(devAddr) {
		return nil, nil, errors.New("not for this DevAddr")
	}
	return &p, mp, nil
}

// decryptDataDown decrypts the FRMPayload (FPort 0 with macKey, else appSKey)
// and collects the MAC commands of FOpts (already decoded) or FPort 0.
func decryptDataDown(p *lorawan.PHYPayload, mp *lorawan.MACPayload, macKey, appSKey [16]byte) (dataDown, error) {
	d := dataDown{FCnt: mp.FHDR.FCnt, FPort: mp.FPort, ACK: mp.FHDR.FCtrl.ACK}
	macPLs := mp.FHDR.FOpts
	if mp.FPort != nil {
		key := appSKey
		if *mp.FPort == 0 {
			key = macKey
		}
		if err := p.DecryptFRMPayload(lorawan.AES128Key(key)); err != nil {
			return dataDown{}, fmt.Errorf("decrypt: %w", err)
		}
		if *mp.FPort == 0 {
			macPLs = mp.FRMPayload // decoded into MAC commands by DecryptFRMPayload
		} else if len(mp.FRMPayload) == 1 {
			if dp, ok := mp.FRMPayload[0].(*lorawan.DataPayload); ok {
				d.Data = dp.Bytes
			}
		}
	}
	for _, pl := range macPLs {
		if c, ok := pl.(*lorawan.MACCommand); ok {
			d.MAC = append(d.MAC, *c)
		}
	}
	return d, nil
}
