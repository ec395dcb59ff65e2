package rigs

import (
	"strings"
	"testing"
)

func TestPCSCRigFileLoads(t *testing.T) {
	f, err := Load("emulated-pcsc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := f.Boards[0].NFC
	if n.Transport != "pcsc" || n.Reader != "Virtual PCD 00 00" || n.Profile != "transparent" {
		t.Fatalf("nfc %+v", n)
	}
}

func TestPCSCValidation(t *testing.T) {
	const board = "boards: [{emulated: true, unique_id: 0080E11500000001, nfc: {transport: pcsc%s}}]"
	for _, c := range []struct{ extra, want string }{
		{"", ""},
		{", reader: Virtual PCD 00 01, profile: acr1552", ""},
		{", reader: ACS ACR1552 1S CL Reader PICC 00 00", `nfc.reader "ACS ACR1552 1S CL Reader PICC 00 00": an emulated board's tag sits in a vpcd reader`},
		{", profile: omnikey", `nfc.profile "omnikey" is not transparent or acr1552`},
	} {
		_, err := Parse([]byte(strings.Replace(board, "%s", c.extra, 1)))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.extra, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want %q", c.extra, err, c.want)
		}
	}
}

func TestVPCDSlots(t *testing.T) {
	var p pcscState
	if n, err := p.slot("Virtual PCD 00 01"); n != 1 || err != nil {
		t.Fatalf("named slot: %d %v", n, err)
	}
	if n, err := p.slot(""); n != 0 || err != nil {
		t.Fatalf("first free: %d %v", n, err)
	}
	if _, err := p.slot(""); err == nil {
		t.Fatal("a third board fitted")
	}
	if _, err := p.slot("Virtual PCD 00 01"); err == nil {
		t.Fatal("slot used twice")
	}
}
