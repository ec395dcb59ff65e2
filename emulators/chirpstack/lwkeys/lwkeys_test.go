package lwkeys

import (
	"testing"

	"github.com/brocaar/lorawan"
)

func mustKey(t *testing.T, s string) lorawan.AES128Key {
	t.Helper()
	var k lorawan.AES128Key
	if err := k.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return k
}

// Vector V6 of shared/reference/lorawan-chirpstack.md (brocaar joinserver_test.go,
// ChirpStack lrwn keys.rs lorawan_1_0).
func TestDerive10Vector(t *testing.T) {
	root := mustKey(t, "01020304050607080102030405060708")
	sk, err := Derive10(root, lorawan.NetID{0x01, 0x02, 0x03}, 65536, 258)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sk.FNwkSIntKey.String(), "df53c35f3034ccced0ff354c70de04df"; got != want {
		t.Errorf("NwkSKey = %s, want %s", got, want)
	}
	if got, want := sk.AppSKey.String(), "927b9c911183cffe4cb2ff4b75545f6d"; got != want {
		t.Errorf("AppSKey = %s, want %s", got, want)
	}
	if sk.SNwkSIntKey != sk.FNwkSIntKey || sk.NwkSEncKey != sk.FNwkSIntKey {
		t.Error("1.0 network keys must all equal NwkSKey")
	}
}

// Vector V7 (ChirpStack lrwn keys.rs lorawan_1_1).
func TestDerive11Vector(t *testing.T) {
	nwk := mustKey(t, "01020304050607080102030405060708")
	var app lorawan.AES128Key
	sk, err := Derive11(nwk, app, lorawan.EUI64{8, 7, 6, 5, 4, 3, 2, 1}, 65536, 258)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		got  lorawan.AES128Key
		want string
	}{
		"FNwkSIntKey": {sk.FNwkSIntKey, "537f8aae896c79e015d102d06286354e"},
		"SNwkSIntKey": {sk.SNwkSIntKey, "589498993092cfdb5fd2e02ac7510bf1"},
		"NwkSEncKey":  {sk.NwkSEncKey, "9898283c4f66eb6c6fd5165882046c40"},
		"AppSKey":     {sk.AppSKey, "01621215d1ca08febf0c602cc2ad90fa"},
	} {
		if c.got.String() != c.want {
			t.Errorf("%s = %s, want %s", name, c.got, c.want)
		}
	}
}

// Vector V8 (computed from the formula in the reference, not upstream).
func TestJSKeys(t *testing.T) {
	nwk := mustKey(t, "01020304050607080102030405060708")
	dev := lorawan.EUI64{1, 2, 3, 4, 5, 6, 7, 8}
	ik, err := JSIntKey(nwk, dev)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := JSEncKey(nwk, dev)
	if err != nil {
		t.Fatal(err)
	}
	if ik.String() != "b8ae379696825f22c8abbec24c31a84b" {
		t.Errorf("JSIntKey = %s", ik)
	}
	if ek.String() != "d4bd9461adaa3b4e601953ebd08bffc6" {
		t.Errorf("JSEncKey = %s", ek)
	}
}
