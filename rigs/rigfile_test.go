package rigs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmulatedRigFileLoads(t *testing.T) {
	f, err := Load("emulated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Timing != "instant" || f.Network.Kind != "embedded" || len(f.Boards) != 1 || f.Boards[0].NFC.Transport != "direct" {
		t.Fatalf("unexpected rig: %+v", f)
	}
}

func TestST25FTMRigFileLoads(t *testing.T) {
	f, err := Load("emulated-st25ftm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Boards) != 1 || f.Boards[0].MailboxProtocol != "st25ftm" {
		t.Fatalf("unexpected rig: %+v", f.Boards)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"timing: fast\nboards: [{emulated: true, unique_id: 0080E11500000001}]", `timing: "fast"`},
		{"boards: []", "the rig has no board"},
		{"boards: [{emulated: true, unique_id: 12}]", "unique_id"},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, nfc: {transport: usb}}]", `nfc.transport "usb"`},
		{"network: {kind: external}\nboards: [{emulated: true, unique_id: 0080E11500000001}]", "needs api, token and mqtt"},
		{"colour: blue\nboards: []", "field colour not found"},
		{"network: {tls: true}\nboards: [{emulated: true, unique_id: 0080E11500000001}]", "network.tls: only for kind external"},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, firmware: custom}]", `firmware "custom" is not none`},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, firmware: none, faults: {key_read_back: true}}]", "faults, nvm and serial need a firmware"},
		{"network: {kind: external, api: a, token: t, mqtt: m}\nboards: [{emulated: false, firmware: none, nfc: {transport: pcsc, reader: R}}]", "firmware: none is for emulated boards"},
		{"boards: [{name: a, emulated: true, unique_id: 0080E11500000001}, {name: a, emulated: true, unique_id: 0080E11500000002}]", "duplicate name"},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, mailbox_protocol: ftm}]", `mailbox_protocol "ftm": want tap2join or st25ftm`},
		{"boards: [{emulated: true, unique_id: 0080E11500000001, power: {kind: uhubctl, hub: 1-1, port: 2}}]", "an emulated board's supply is the twin's"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", c.yaml, err, c.want)
		}
	}
}

func TestFindWalksUpToModuleRoot(t *testing.T) {
	wd, _ := os.Getwd()
	t.Chdir(filepath.Join(wd, "..", "emulators"))
	p, err := Find("rigs/emulated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("rigs/nope.yaml"); err == nil {
		t.Fatal("missing file found")
	}
}

func TestLoadFromEnv(t *testing.T) {
	t.Setenv(EnvRig, "")
	f, err := LoadFromEnv()
	if err != nil || f.Name != "emulated" {
		t.Fatalf("default rig: %v, %v", f, err)
	}
	t.Setenv(EnvRig, "rigs/emulated-pcsc.yaml")
	if f, err = LoadFromEnv(); err != nil || f.Boards[0].NFC.Transport != "pcsc" {
		t.Fatalf("TAP2JOIN_RIG: %v, %v", f, err)
	}
	t.Setenv(EnvRig, "rigs/missing.yaml")
	if _, err := LoadFromEnv(); err == nil {
		t.Fatal("missing rig file loaded")
	}
}
