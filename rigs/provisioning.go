package rigs

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/fixtures/provisioning"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/phone"
)

// The provisioning backend (rig file `provisioning:`): embedded (HTTPS on
// loopback with a per-run CA, registering devices with the rig's network
// server) or external (a deployed backend's URL and token). Every board's
// phone registers through the same client.

// setUpBackend starts or reaches the provisioning backend.
func (r *Rig) setUpBackend(ctx context.Context, net *network, lg *slog.Logger) error {
	f := r.File
	var joinEUI provproto.EUI64
	_, _ = hex.Decode(joinEUI[:], []byte(f.Provisioning.JoinEUI)) // validated by Parse
	switch f.Provisioning.Kind {
	case "embedded":
		be, c, err := r.startBackend(ctx, net, joinEUI, lg)
		if err != nil {
			return fmt.Errorf("rigs: provisioning backend: %w", err)
		}
		if err := shareBackendConnection(ctx, c); err != nil {
			return err
		}
		r.Backend, r.BackendCA, r.be = c, be.CA().PEM(), be
	case "external":
		r.Backend = provisioning.NewClient(f.Provisioning.URL, expandEnv(f.Provisioning.Token), nil)
	}
	// Every clear key the phones receive is remembered, so a run can prove
	// its logs and reports hold none (keyleak.go); the embedded backend also
	// reports the keys it wraps (OnIssue).
	r.Backend.OnKeys = rememberIssued
	return nil
}

// startBackend starts an embedded provisioning backend (closed at Close)
// registering devices with net, and returns it with the phone's client.
func (r *Rig) startBackend(ctx context.Context, net *network, joinEUI provproto.EUI64, lg *slog.Logger) (*provisioning.Server, *provisioning.Client, error) {
	be, err := provisioning.Start(ctx, provisioning.Config{
		Network:        &provisioning.LNSNetwork{NS: net.client, ApplicationID: net.app, ProfileID: net.profile, MACVersion: r.File.Network.MACVersion},
		DefaultJoinEUI: joinEUI,
		Logger:         lg.With("part", "provisioning"),
		// A bench registers devices back to back (benchmarks: hundreds
		// per second); the per-token limit is the backend's own concern.
		RateLimit: &provisioning.RateLimit{},
		// The rig's phones share one client and one HTTP/2 connection
		// (shareBackendConnection): a fleet's registrations all go on it.
		MaxStreams: 1 << 16,
		// provisioning.wrapped: keys never leave the backend in clear.
		WrappedOnly: r.File.Provisioning.Wrapped,
		// Notifications on the network server's broker; joins come from
		// its integration events there.
		MQTT: net.info.MQTT, WatchJoins: true,
		// Wrapped mode keeps keys off the phone; the rig still learns
		// them so runs can prove their logs and reports hold none.
		OnIssue: func(_ provproto.EUI64, k provproto.Keys) { rememberIssued(k) },
	})
	if err != nil {
		return nil, nil, err
	}
	r.closers = append(r.closers, be.Close)
	return be, provisioning.NewClient(be.URL(), be.Token(), be.CA().Pool()), nil
}

// newPhone is a board's phone: the provisioning app on the tag's driver,
// registering through the rig's backend (re-provisioning included: a new key
// for a registered device is confirmed to the backend once the device
// acknowledged it, and only then replaces the old one at the network).
func (r *Rig) newPhone(tag *nfc.ST25DV, po phone.Options) *phone.Phone {
	return phone.New(phone.NFCTag(tag), r.Backend, po)
}

// shareBackendConnection makes the phones of a rig share the backend client's
// one HTTP/2 connection, as they already share the client.
//
// Without it, N phones registering at once (a fleet) each find no connection
// in the pool and each dial their own TLS connection — Go's HTTP/2 pool
// dials on a miss — so 1,000 boards cost ≈ 1,000 TLS handshakes on both
// ends, a fifth of the CPU of a fleet run. Here one request opens the
// connection at bring-up, and requests beyond the server's stream limit
// (250 for Go's server) queue on it instead of dialing (HTTP2Config
// StrictMaxConcurrentRequests). A bench of real phones each with its own TLS
// session is a load test of the backend's TLS termination, not of
// provisioning.
func shareBackendConnection(ctx context.Context, c *provisioning.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("rigs: provisioning backend: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("rigs: provisioning backend health: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rigs: provisioning backend health: HTTP %d", resp.StatusCode)
	}
	return nil
}
