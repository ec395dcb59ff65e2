package stm32wl5

import (
	"context"
	"strings"
	"testing"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// provisionAndJoin drives a full flow on a rig: phone provisions, the test
// network answers joins; returns the network for inspection.
func provisionAndJoin(t *testing.T, r *rig, key [16]byte) *network {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nw := &network{key: testAppKey, netID: lorawan.NetID{0, 0, 0x13}, devAddr: lorawan.DevAddr{0x26, 0x0B, 0x12, 0x34}}
	nw.run(ctx, t, r.air)
	id := r.identity(t)
	ack, err := r.provision(t, clearProvision(t, id.Nonce, key, false))
	if err != nil {
		t.Fatal(err)
	}
	if ack.AppKCV != provproto.CheckValue(key) {
		t.Fatalf("ack KCV %s", ack.AppKCV)
	}
	return nw
}

func TestEndToEndJoinDropsJoinNonceZero(t *testing.T) {
	r := newRig(t, nil)
	nw := provisionAndJoin(t, r, testAppKey)
	expectEvent(t, r.board, JoinRequest, "DevNonce 1 ")
	expectEvent(t, r.board, JoinAcceptDropped, "JoinNonce 0 not greater than stored 0")
	expectEvent(t, r.board, JoinRequest, "DevNonce 2 ")
	expectEvent(t, r.board, JoinAccepted, "DevAddr 260B1234", "JoinNonce 1 ")
	expectEvent(t, r.board, Uplink, "FCnt 0 FPort 2")
	// The network checks the uplink with the session keys it derives itself.
	var ups []lorawan.PHYPayload
	eventually(t, "uplink at the network", func() bool { _, _, ups = nw.snapshot(); return len(ups) == 1 })
	nwk, app := sessionKeys10(testAppKey, 1, [3]byte(nw.netID), 2)
	p := ups[0]
	if ok, err := p.ValidateUplinkDataMIC(lorawan.LoRaWAN1_0, 0, 0, 0, nwk, nwk); err != nil || !ok {
		t.Fatalf("uplink MIC: %v %v", ok, err)
	}
	if err := p.DecryptFRMPayload(lorawan.AES128Key(app)); err != nil {
		t.Fatal(err)
	}
	mp := p.MACPayload.(*lorawan.MACPayload)
	if *mp.FPort != 2 || string(mp.FRMPayload[0].(*lorawan.DataPayload).Bytes) != "\x01\x01\x03\x01" {
		t.Errorf("uplink payload %+v", mp)
	}
	// Identity and NDEF report "joined".
	eventually(t, "NDEF state joined", func() bool { return r.tag.userMem(64)[44] == byte(provproto.StateJoined) })
	if id := r.identity(t); id.State != provproto.StateJoined {
		t.Errorf("state %s", id.State)
	}
	// Airtime was accounted: 2 JoinRequests + 2 JoinAccepts + 1 uplink at
	// SF12 plus the modelled RX delays and the back-off.
	if r.clock.Modeled() < 20e9 {
		t.Errorf("modelled time %s", r.clock.Modeled())
	}
	if len(r.air.Captured()) != 5 {
		t.Errorf("frames on air: %d", len(r.air.Captured()))
	}
	// Nothing secret in the device log (root key, session keys).
	for _, k := range [][16]byte{testAppKey, nwk, app} {
		hexKey := strings.ToUpper(lorawan.AES128Key(k).String())
		for _, l := range r.board.Log() {
			if strings.Contains(strings.ToUpper(l), hexKey) {
				t.Fatalf("key material in log line %q", l)
			}
		}
	}
}

func TestEndToEndAcceptFirstJoinNonceZero(t *testing.T) {
	r := newRig(t, func(c *Config) { c.AcceptFirstJoinNonceZero = true; c.DataRate = 5 })
	provisionAndJoin(t, r, testAppKey)
	expectEvent(t, r.board, JoinAccepted, "JoinNonce 0 DevNonce 1")
	expectEvent(t, r.board, Uplink, "SF7") // DR5
}

func TestEndToEndCorruptStoredKeyFailsJoin(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Faults.StoreCorruptKey = true; c.JoinAttempts = 2 })
	nw := provisionAndJoin(t, r, testAppKey) // the ACK still carries the right KCV
	expectEvent(t, r.board, JoinFailed, "2 attempts")
	bad, joins, _ := nw.snapshot()
	if bad != 2 || len(joins) != 0 {
		t.Errorf("network saw %d bad MICs, %d good joins", bad, len(joins))
	}
}
