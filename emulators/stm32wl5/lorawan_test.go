package stm32wl5

import (
	"encoding/hex"
	"testing"

	"github.com/brocaar/lorawan"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func key16(t *testing.T, s string) (k [16]byte) {
	copy(k[:], mustHex(t, s))
	return k
}

func eui(t *testing.T, s string) (e [8]byte) {
	copy(e[:], mustHex(t, s))
	return e
}

// V1: brocaar/lorawan phypayload_test.go ExamplePHYPayload_joinRequest.
func TestJoinRequestVectorV1(t *testing.T) {
	got, err := buildJoinRequest(key16(t, "0102030405060708090a0b0c0d0e0f10"), eui(t, "0101010101010101"), eui(t, "0202020202020202"), 771)
	if err != nil {
		t.Fatal(err)
	}
	if want := "00010101010101010102020202020202020303" + "09b97b32"; hex.EncodeToString(got) != want {
		t.Errorf("JoinRequest = %x, want %s", got, want)
	}
}

// V3: decrypt a JoinAccept with AppKey 0011…ff.
func TestJoinAcceptDecryptVectorV3(t *testing.T) {
	ja, err := openJoinAccept(mustHex(t, "20493eeb51fba2116f810edb3742975142"), key16(t, "00112233445566778899aabbccddeeff"), [8]byte{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ja.JoinNonce != 5704647 || ja.HomeNetID != (lorawan.NetID{34, 17, 1}) || ja.DevAddr != (lorawan.DevAddr{0x02, 0x03, 0x19, 0x80}) ||
		ja.RXDelay != 0 || ja.DLSettings != (lorawan.DLSettings{}) {
		t.Errorf("JoinAccept %+v", ja)
	}
}

// V4: the JoinAccept bytes BL builds, opened by the device; a wrong key or a
// flipped byte must not verify.
func TestJoinAcceptVectorV4(t *testing.T) {
	key := key16(t, "0102030405060708090a0b0c0d0e0f10")
	phy := mustHex(t, "2023cf335489aae3183c0be0baa8dee5f3")
	ja, err := openJoinAccept(phy, key, [8]byte{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ja.JoinNonce != 65793 || ja.HomeNetID != (lorawan.NetID{2, 2, 2}) || ja.DevAddr != (lorawan.DevAddr{1, 2, 3, 4}) {
		t.Errorf("JoinAccept %+v", ja)
	}
	if _, err := openJoinAccept(phy, key16(t, "00000000000000000000000000000000"), [8]byte{}, 0); err == nil {
		t.Error("wrong key verified")
	}
	bad := append([]byte(nil), phy...)
	bad[5] ^= 1
	if _, err := openJoinAccept(bad, key, [8]byte{}, 0); err == nil {
		t.Error("corrupted JoinAccept verified")
	}
	// V5 has OptNeg=1: a 1.0.4 device refuses it.
	if _, err := openJoinAccept(mustHex(t, "207abeea06b02920f11c02d0348fcf1815"), key, eui(t, "0807060504030201"), 258); err == nil {
		t.Error("OptNeg JoinAccept accepted by a 1.0.4 device")
	}
}

// V6: 1.0 session keys.
func TestSessionKeysVectorV6(t *testing.T) {
	nwk, app := sessionKeys10(key16(t, "01020304050607080102030405060708"), 65536, [3]byte{1, 2, 3}, 258)
	if hex.EncodeToString(nwk[:]) != "df53c35f3034ccced0ff354c70de04df" {
		t.Errorf("NwkSKey %x", nwk)
	}
	if hex.EncodeToString(app[:]) != "927b9c911183cffe4cb2ff4b75545f6d" {
		t.Errorf("AppSKey %x", app)
	}
}

// V9: unconfirmed data up, LoRaWAN 1.0.
func TestDataUpVectorV9(t *testing.T) {
	var app, nwk [16]byte
	for i := range app {
		app[i], nwk[i] = 1, 2
	}
	got, err := buildDataUp(nwk, app, [4]byte{1, 2, 3, 4}, 1, 1, []byte("hello"), lorawan.FCtrl{ADR: true}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "40040302018001000" + "1a694642615d6c3b582"; hex.EncodeToString(got) != want {
		t.Errorf("uplink %x, want %s", got, want)
	}
}
