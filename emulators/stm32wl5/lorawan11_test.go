package stm32wl5

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/lwkeys"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// Mismatches are reported by key check value only.
func sameKey(t *testing.T, name string, got [16]byte, wantHex string) {
	t.Helper()
	want := key16(t, wantHex)
	if got != want {
		t.Errorf("%s: KCV %s, want KCV %s", name, provproto.CheckValue(got), provproto.CheckValue(want))
	}
}

// buildJoinAccept11 builds a JoinAccept the way the network does (BL
// SetDownlinkJoinMIC, EncryptJoinAcceptPayload).
func buildJoinAccept11(t *testing.T, encKey, micKey [16]byte, optNeg bool, joinNonce uint32, netID [3]byte, devAddr [4]byte, joinEUI [8]byte, devNonce uint16) []byte {
	t.Helper()
	p := lorawan.PHYPayload{
		MHDR: lorawan.MHDR{MType: lorawan.JoinAccept, Major: lorawan.LoRaWANR1},
		MACPayload: &lorawan.JoinAcceptPayload{
			JoinNonce: lorawan.JoinNonce(joinNonce), HomeNetID: lorawan.NetID(netID), DevAddr: lorawan.DevAddr(devAddr),
			DLSettings: lorawan.DLSettings{OptNeg: optNeg},
		},
	}
	if err := p.SetDownlinkJoinMIC(lorawan.JoinRequestType, lorawan.EUI64(joinEUI), lorawan.DevNonce(devNonce), lorawan.AES128Key(micKey)); err != nil {
		t.Fatal(err)
	}
	if err := p.EncryptJoinAcceptPayload(lorawan.AES128Key(encKey)); err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// V5 (brocaar/lorawan ExamplePHYPayload_lorawan11JoinAcceptSend): the
// OptNeg=1 MIC layout JoinReqType|JoinEUI|DevNonce|
// MHDR|… that openJoinAccept11 validates, here with the example's key.
func TestJoinAcceptOptNegLayoutV5(t *testing.T) {
	key := key16(t, "0102030405060708090a0b0c0d0e0f10")
	got := buildJoinAccept11(t, key, key, true, 65793, [3]byte{2, 2, 2}, [4]byte{1, 2, 3, 4}, eui(t, "0807060504030201"), 258)
	if want := mustHex(t, "207abeea06b02920f11c02d0348fcf1815"); !bytes.Equal(got, want) {
		t.Fatalf("V5 JoinAccept = %x, want %x", got, want)
	}
	// Signed with the root key instead of JSIntKey: a 1.1 device drops it.
	if _, err := openJoinAccept11(got, key, eui(t, "0807060504030201"), eui(t, "0102030405060708"), 258); !errors.Is(err, errJoinMIC) {
		t.Fatalf("OptNeg JoinAccept signed with NwkKey: err = %v, want %v", err, errJoinMIC)
	}
}

// V7/V8: a 1.1 JoinAccept with OptNeg=1, encrypted with NwkKey and signed
// with JSIntKey(NwkKey, DevEUI), opens and yields the session keys of
// ChirpStack v4 lrwn/src/keys.rs test lorawan_1_1 (V7); the JSIntKey (V8) is
// computed from the 1.1 formula, not an upstream vector.
func TestJoinAccept11SessionKeysV7V8(t *testing.T) {
	nwkKey := key16(t, "01020304050607080102030405060708")
	appKey := [16]byte{}
	joinEUI, devEUI := eui(t, "0807060504030201"), eui(t, "0102030405060708")
	jsInt, err := lwkeys.JSIntKey(lorawan.AES128Key(nwkKey), lorawan.EUI64(devEUI))
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, "JSIntKey (V8)", jsInt, "b8ae379696825f22c8abbec24c31a84b")

	phy := buildJoinAccept11(t, nwkKey, jsInt, true, 65536, [3]byte{1, 2, 3}, [4]byte{1, 2, 3, 4}, joinEUI, 258)
	ja, err := openJoinAccept11(phy, nwkKey, joinEUI, devEUI, 258)
	if err != nil {
		t.Fatalf("openJoinAccept11: %v", err)
	}
	if !ja.DLSettings.OptNeg || ja.JoinNonce != 65536 || ja.DevAddr != (lorawan.DevAddr{1, 2, 3, 4}) {
		t.Fatalf("JoinAccept fields: OptNeg %t JoinNonce %d DevAddr %s", ja.DLSettings.OptNeg, ja.JoinNonce, ja.DevAddr)
	}
	s, err := sessionKeys11(nwkKey, appKey, ja, joinEUI, 258)
	if err != nil {
		t.Fatal(err)
	}
	if !s.v11 {
		t.Fatal("OptNeg=1 session not marked LoRaWAN 1.1")
	}
	sameKey(t, "FNwkSIntKey (V7)", s.fNwkSIntKey, "537f8aae896c79e015d102d06286354e")
	sameKey(t, "SNwkSIntKey (V7)", s.sNwkSIntKey, "589498993092cfdb5fd2e02ac7510bf1")
	sameKey(t, "NwkSEncKey (V7)", s.nwkSEncKey, "9898283c4f66eb6c6fd5165882046c40")
	sameKey(t, "AppSKey (V7)", s.appSKey, "01621215d1ca08febf0c602cc2ad90fa")

	// Another DevNonce or DevEUI: the MIC does not verify.
	if _, err := openJoinAccept11(phy, nwkKey, joinEUI, devEUI, 259); !errors.Is(err, errJoinMIC) {
		t.Errorf("wrong DevNonce: err = %v, want %v", err, errJoinMIC)
	}
	if _, err := openJoinAccept11(phy, nwkKey, joinEUI, eui(t, "0102030405060709"), 258); !errors.Is(err, errJoinMIC) {
		t.Errorf("wrong DevEUI: err = %v, want %v", err, errJoinMIC)
	}
}

// V6 (brocaar/lorawan backend/joinserver/joinserver_test.go, ChirpStack v4
// lrwn/src/keys.rs test lorawan_1_0): a 1.1 device answered with OptNeg=0 (a 1.0 network)
// checks the MIC with NwkKey and uses the 1.0 formulas with NwkKey.
func TestJoinAccept11OptNegZeroV6(t *testing.T) {
	nwkKey := key16(t, "01020304050607080102030405060708")
	joinEUI, devEUI := eui(t, "0807060504030201"), eui(t, "0102030405060708")
	phy := buildJoinAccept11(t, nwkKey, nwkKey, false, 65536, [3]byte{1, 2, 3}, [4]byte{1, 2, 3, 4}, joinEUI, 258)
	ja, err := openJoinAccept11(phy, nwkKey, joinEUI, devEUI, 258)
	if err != nil {
		t.Fatalf("openJoinAccept11: %v", err)
	}
	s, err := sessionKeys11(nwkKey, [16]byte{0xAA}, ja, joinEUI, 258)
	if err != nil {
		t.Fatal(err)
	}
	if s.v11 {
		t.Fatal("OptNeg=0 session marked LoRaWAN 1.1")
	}
	for name, k := range map[string][16]byte{"FNwkSIntKey": s.fNwkSIntKey, "SNwkSIntKey": s.sNwkSIntKey, "NwkSEncKey": s.nwkSEncKey} {
		sameKey(t, name+" (V6 NwkSKey)", k, "df53c35f3034ccced0ff354c70de04df")
	}
	sameKey(t, "AppSKey (V6)", s.appSKey, "927b9c911183cffe4cb2ff4b75545f6d")
}

// A 1.1 uplink verifies on the network side with the same keys, TxDr and
// TxCh (BL ValidateUplinkDataMIC, as ChirpStack checks it), and not with a
// 1.0 MIC or another channel; the payload decrypts with AppSKey.
func TestDataUp11MIC(t *testing.T) {
	s := session{v11: true, fNwkSIntKey: [16]byte{1}, sNwkSIntKey: [16]byte{2}, nwkSEncKey: [16]byte{3}, appSKey: [16]byte{4}}
	phy, err := buildDataUp11(s, [4]byte{1, 2, 3, 4}, 7, 2, []byte("hello"), lorawan.FCtrl{ADR: true}, false, 5, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p lorawan.PHYPayload
	if err := p.UnmarshalBinary(phy); err != nil {
		t.Fatal(err)
	}
	f, sn := lorawan.AES128Key(s.fNwkSIntKey), lorawan.AES128Key(s.sNwkSIntKey)
	if ok, err := p.ValidateUplinkDataMIC(lorawan.LoRaWAN1_1, 0, 5, 1, f, sn); err != nil || !ok {
		t.Fatalf("1.1 MIC: ok=%t err=%v", ok, err)
	}
	if ok, _ := p.ValidateUplinkDataMIC(lorawan.LoRaWAN1_1, 0, 5, 2, f, sn); ok {
		t.Error("MIC verifies with another TxCh")
	}
	if ok, _ := p.ValidateUplinkDataMIC(lorawan.LoRaWAN1_0, 0, 0, 0, f, f); ok {
		t.Error("1.1 uplink verifies as a 1.0 one")
	}
	if err := p.DecryptFRMPayload(lorawan.AES128Key(s.appSKey)); err != nil {
		t.Fatal(err)
	}
	mp := p.MACPayload.(*lorawan.MACPayload)
	if got := mp.FRMPayload[0].(*lorawan.DataPayload).Bytes; string(got) != "hello" {
		t.Fatalf("FRMPayload = %q", got)
	}
}

// The 1.1 fields survive the NVM, and a layout-2 record is still read.
func TestNVMLoRaWAN11Fields(t *testing.T) {
	r := sampleRecord(0x42)
	r.lorawan11, r.session11 = true, true
	r.sNwkSIntKey, r.nwkSEncKey = [16]byte{9, 9}, [16]byte{8, 8}
	img := r.marshal()
	got, ok := unmarshalRecord(img[:])
	if !ok || !same(got, r) {
		t.Fatal("layout-3 record does not round-trip")
	}
	old := sampleRecord(0x17)
	img = old.marshal()
	copy(img[0:4], nvmMagic2[:])
	img[9] &^= 6
	// Re-seal as layout 2: CRC over the first recordSize2-4 bytes.
	sealed := append([]byte(nil), img[:recordSize2-4]...)
	var s2 [slotSize]byte
	for i := range s2 {
		s2[i] = 0xFF
	}
	copy(s2[:], sealed)
	crc := crc32IEEE(sealed)
	copy(s2[recordSize2-4:], []byte{byte(crc), byte(crc >> 8), byte(crc >> 16), byte(crc >> 24)})
	got, ok = unmarshalRecord(s2[:])
	if !ok || !same(got, old) {
		t.Fatal("layout-2 record not read back")
	}
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
