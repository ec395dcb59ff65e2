// Package lwkeys derives LoRaWAN session keys, the one piece of join-procedure
// crypto that github.com/brocaar/lorawan keeps unexported (its
// backend/joinserver getSKey/getJSKey).
//
// Everything here is a single AES-128 ECB encryption of a zero-padded 16-byte
// block, as defined by LoRaWAN 1.0.4 §6.2.5 (NwkSKey/AppSKey) and LoRaWAN 1.1
// §6.1.1.3/§6.1.2 (FNwkSIntKey, SNwkSIntKey, NwkSEncKey, AppSKey, JSIntKey,
// JSEncKey). Multi-byte inputs are serialised little-endian through brocaar's
// MarshalBinary, exactly as on air. Both the embedded network server and the
// device twin use these helpers, so they are pinned to the brocaar/ChirpStack
// test vectors in lwkeys_test.go.
package lwkeys

import (
	"crypto/aes"
	"fmt"

	"github.com/brocaar/lorawan"
)

// Key-derivation block type bytes (first byte of the encrypted block).
const (
	typeFNwkSIntKey = 0x01 // NwkSKey in 1.0.x
	typeAppSKey     = 0x02
	typeSNwkSIntKey = 0x03
	typeNwkSEncKey  = 0x04
	typeJSEncKey    = 0x05
	typeJSIntKey    = 0x06
)

// SessionKeys is the set of session keys a join produces. For LoRaWAN 1.0.x
// (OptNeg=0) FNwkSIntKey, SNwkSIntKey and NwkSEncKey all hold the 1.0 NwkSKey,
// the same convention ChirpStack uses in its device-session.
type SessionKeys struct {
	FNwkSIntKey lorawan.AES128Key
	SNwkSIntKey lorawan.AES128Key
	NwkSEncKey  lorawan.AES128Key
	AppSKey     lorawan.AES128Key
}

// Derive10 returns the LoRaWAN 1.0.x session keys (LoRaWAN 1.0.4 §6.2.5):
//
//	NwkSKey = aes128_encrypt(AppKey, 0x01 | JoinNonce | NetID | DevNonce | pad16)
//	AppSKey = aes128_encrypt(AppKey, 0x02 | JoinNonce | NetID | DevNonce | pad16)
//
// rootKey is the 1.0.x AppKey (ChirpStack stores it in DeviceKeys.nwk_key). It is
// also the formula a 1.1 device uses when the server answers with OptNeg=0.
func Derive10(rootKey lorawan.AES128Key, netID lorawan.NetID, joinNonce lorawan.JoinNonce, devNonce lorawan.DevNonce) (SessionKeys, error) {
	nwk, err := sKey10(typeFNwkSIntKey, rootKey, netID, joinNonce, devNonce)
	if err != nil {
		return SessionKeys{}, err
	}
	app, err := sKey10(typeAppSKey, rootKey, netID, joinNonce, devNonce)
	if err != nil {
		return SessionKeys{}, err
	}
	return SessionKeys{FNwkSIntKey: nwk, SNwkSIntKey: nwk, NwkSEncKey: nwk, AppSKey: app}, nil
}

// Derive11 returns the LoRaWAN 1.1 session keys for a Join-request answered with
// OptNeg=1. The three network keys come from NwkKey; AppSKey comes from AppKey
// (as in ChirpStack join.rs construct_join_accept_and_set_keys and STM32CubeWL
// DeriveSessionKey11x).
func Derive11(nwkKey, appKey lorawan.AES128Key, joinEUI lorawan.EUI64, joinNonce lorawan.JoinNonce, devNonce lorawan.DevNonce) (SessionKeys, error) {
	var sk SessionKeys
	var err error
	if sk.FNwkSIntKey, err = sKey11(typeFNwkSIntKey, nwkKey, joinEUI, joinNonce, devNonce); err != nil {
		return sk, err
	}
	if sk.SNwkSIntKey, err = sKey11(typeSNwkSIntKey, nwkKey, joinEUI, joinNonce, devNonce); err != nil {
		return sk, err
	}
	if sk.NwkSEncKey, err = sKey11(typeNwkSEncKey, nwkKey, joinEUI, joinNonce, devNonce); err != nil {
		return sk, err
	}
	if sk.AppSKey, err = sKey11(typeAppSKey, appKey, joinEUI, joinNonce, devNonce); err != nil {
		return sk, err
	}
	return sk, nil
}

// JSIntKey returns aes128_encrypt(NwkKey, 0x06 | DevEUI | pad16), the key that
// signs a 1.1 JoinAccept with OptNeg=1.
func JSIntKey(nwkKey lorawan.AES128Key, devEUI lorawan.EUI64) (lorawan.AES128Key, error) {
	return jsKey(typeJSIntKey, nwkKey, devEUI)
}

// JSEncKey returns aes128_encrypt(NwkKey, 0x05 | DevEUI | pad16), the key that
// encrypts a JoinAccept answering a Rejoin-request.
func JSEncKey(nwkKey lorawan.AES128Key, devEUI lorawan.EUI64) (lorawan.AES128Key, error) {
	return jsKey(typeJSEncKey, nwkKey, devEUI)
}

func sKey10(typ byte, key lorawan.AES128Key, netID lorawan.NetID, joinNonce lorawan.JoinNonce, devNonce lorawan.DevNonce) (lorawan.AES128Key, error) {
	nid, err := netID.MarshalBinary()
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: net id: %w", err)
	}
	return sKey(typ, key, nid, joinNonce, devNonce)
}

func sKey11(typ byte, key lorawan.AES128Key, joinEUI lorawan.EUI64, joinNonce lorawan.JoinNonce, devNonce lorawan.DevNonce) (lorawan.AES128Key, error) {
	je, err := joinEUI.MarshalBinary()
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: join eui: %w", err)
	}
	return sKey(typ, key, je, joinNonce, devNonce)
}

// sKey encrypts typ | JoinNonce | mid | DevNonce | pad16 with key: mid is the
// NetID in 1.0 (§6.2.5) and the JoinEUI in 1.1 (§6.2.2).
func sKey(typ byte, key lorawan.AES128Key, mid []byte, joinNonce lorawan.JoinNonce, devNonce lorawan.DevNonce) (lorawan.AES128Key, error) {
	jn, err := joinNonce.MarshalBinary()
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: join nonce: %w", err)
	}
	dn, err := devNonce.MarshalBinary()
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: dev nonce: %w", err)
	}
	b := make([]byte, 0, 16)
	b = append(b, typ)
	b = append(b, jn...)
	b = append(b, mid...)
	b = append(b, dn...)
	return encryptBlock(key, b)
}

func jsKey(typ byte, key lorawan.AES128Key, devEUI lorawan.EUI64) (lorawan.AES128Key, error) {
	de, err := devEUI.MarshalBinary()
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: dev eui: %w", err)
	}
	return encryptBlock(key, append([]byte{typ}, de...))
}

// encryptBlock zero-pads b to 16 bytes (pad16) and encrypts it with key.
func encryptBlock(key lorawan.AES128Key, b []byte) (lorawan.AES128Key, error) {
	var in, out [16]byte
	copy(in[:], b)
	c, err := aes.NewCipher(key[:])
	if err != nil {
		return lorawan.AES128Key{}, fmt.Errorf("lwkeys: aes: %w", err)
	}
	c.Encrypt(out[:], in[:])
	return lorawan.AES128Key(out), nil
}
