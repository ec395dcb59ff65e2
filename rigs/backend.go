package rigs

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/tap2join/tap2join/fixtures/provisioning"
)

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
	tr, ok := c.HTTP.Transport.(*http.Transport)
	if !ok {
		return nil
	}
	_ = tr
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
