package rigs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/brocaar/lorawan"

	"github.com/tap2join/tap2join/fixtures/lns"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/phone"
)

// Reissue gives an already registered device a new AppKey on the network
// server and returns it for a phone to write with Options.Reprovision
// (SPEC.md §5.3). ChirpStack keeps the device's used DevNonces and JoinNonce
// across the key change (DeviceService.UpdateKeys). The key is remembered for
// FindIssuedKeys, like every key the backend issues.
func (r *Rig) Reissue(ctx context.Context, dev provproto.EUI64) (phone.Issued, error) {
	var iss phone.Issued
	if _, err := hex.Decode(iss.JoinEUI[:], []byte(r.File.Provisioning.JoinEUI)); err != nil {
		return iss, fmt.Errorf("rigs: reissue: join_eui: %w", err)
	}
	if _, err := rand.Read(iss.Keys.AppKey[:]); err != nil {
		return iss, fmt.Errorf("rigs: reissue: %w", err)
	}
	rememberIssued(iss.Keys)
	k := lorawan.AES128Key(iss.Keys.AppKey)
	if err := r.Network.SetKeys(ctx, lorawan.EUI64(dev), lns.Keys{AppKey: k, NwkKey: k}); err != nil {
		return iss, fmt.Errorf("rigs: reissue %s (KCV %s): %w", dev, provproto.CheckValue(iss.Keys.AppKey), err)
	}
	return iss, nil
}
