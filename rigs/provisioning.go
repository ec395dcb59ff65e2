package rigs

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

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
		if err := shareBackendConnection(ctx, c, backendConnections(len(f.Boards))); err != nil {
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
		// The rig's phones share one client and a few HTTP/2 connections
		// (shareBackendConnection): a fleet's registrations all go on them.
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

// backendConnections is how many HTTP/2 connections a rig of n boards'
// phones share: one per 128 phones, at least one.
//
// Without sharing, N phones registering at once (a fleet) each find no
// connection in the pool and each dial their own TLS connection — Go's
// HTTP/2 pool dials on a miss — so 1,000 boards cost ≈ 1,000 TLS handshakes
// on both ends, a fifth of the CPU of a fleet run. On one connection
// instead, 10,000 registrations are 10,000 streams of one connection, and
// Go's HTTP/2 server walks every open stream of a connection to find the
// next frame to write (its round-robin write scheduler): the cost of a
// request grows with the number in flight, all of it on the connection's
// one serving goroutine. A connection per 128 phones, each opened at
// bring-up, keeps both small. A bench of real phones each with its own
// TLS session would be a load test of the backend's TLS termination, not
// of provisioning.
func backendConnections(n int) int { return max(1, (n+127)/128) }

// shareBackendConnection makes the phones of a rig share conns connections
// of the backend client, requests going round them in turn.
func shareBackendConnection(ctx context.Context, c *provisioning.Client, conns int) error {
	base, ok := c.HTTP.Transport.(*http.Transport)
	if !ok {
		return fmt.Errorf("rigs: provisioning backend: client transport %T, want *http.Transport", c.HTTP.Transport)
	}
	rr := &roundRobin{}
	for range conns {
		tr := base.Clone()
		if err := openBackendConnection(ctx, c.BaseURL, tr); err != nil {
			for _, t := range rr.trs {
				t.CloseIdleConnections()
			}
			return err
		}
		rr.trs = append(rr.trs, tr)
	}
	c.HTTP.Transport = rr
	return nil
}

// roundRobin sends each request on the next of its transports.
type roundRobin struct {
	trs  []*http.Transport
	next atomic.Uint32
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.trs[int(r.next.Add(1))%len(r.trs)].RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach every
// transport.
func (r *roundRobin) CloseIdleConnections() {
	for _, t := range r.trs {
		t.CloseIdleConnections()
	}
}

// openBackendConnection opens tr's connection to the backend with one health
// request, so the phones find it open.
func openBackendConnection(ctx context.Context, baseURL string, tr *http.Transport) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("rigs: provisioning backend: %w", err)
	}
	resp, err := tr.RoundTrip(req)
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
