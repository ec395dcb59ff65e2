package chirpstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Restarts for fault tests: the broker and the network server go away and
// come back on the same addresses, as a restarted container or service does.
// Clients (gateways, the lns integration client) must reconnect by themselves.

// MQTTReady reports whether the server's gateway backend is connected to the
// broker and subscribed to gateway events.
func (s *Server) MQTTReady() bool { return s.mqttReady.Load() }

// RestartBroker stops the embedded MQTT broker — every client loses its
// connection and its subscriptions (clean sessions) — and starts a new one on
// the same address. Retained messages are lost, as with a broker without
// persistence. It fails when the broker is external (Config.MQTTAddr).
func (s *Server) RestartBroker(ctx context.Context) error {
	if s.broker == nil {
		return errors.New("chirpstack: restart broker: the broker is external")
	}
	addr := strings.TrimPrefix(s.mqttURL, "tcp://")
	// mochi's Close disconnects the clients before it closes the listener,
	// so a client reconnecting at once is accepted by the dying broker and
	// never answered (it waits out its connect timeout). Stop accepting
	// first, then disconnect everyone, then close.
	if l, ok := s.broker.Listeners.Get("tcp"); ok {
		l.Close(func(string) {})
	}
	for _, cl := range s.broker.Clients.GetAll() {
		_ = s.broker.DisconnectClient(cl, packets.ErrServerShuttingDown)
	}
	if err := closeBroker(s.broker); err != nil {
		return fmt.Errorf("chirpstack: restart broker: %w", err)
	}
	// The port is free once the listener closed; retry briefly in case the
	// kernel has not released it yet.
	for {
		err := s.startBroker(addr)
		if err == nil {
			return nil
		}
		var op *net.OpError
		if !errors.As(err, &op) && !strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("chirpstack: restart broker: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chirpstack: restart broker: %w (last: %v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Restart restarts the network server process: the API stops and its MQTT
// client disconnects, then both come back on the same addresses. State kept
// (tenants, devices, keys, sessions, used DevNonces): a ChirpStack restart
// keeps its PostgreSQL and Redis. Frames waiting for de-duplication are lost.
// The API key stays valid (same signing secret).
func (s *Server) Restart(ctx context.Context) error {
	addr := s.lis.Addr().String()
	s.mu.Lock()
	for k, fs := range s.collect {
		if fs.timer.Stop() {
			s.wg.Done()
		}
		delete(s.collect, k)
	}
	s.mu.Unlock()
	s.grpcSrv.Stop()
	s.wg.Wait()
	s.mqc().Disconnect(100)
	s.mqttReady.Store(false)
	if err := s.startAPI(addr); err != nil {
		return fmt.Errorf("chirpstack: restart: %w", err)
	}
	if err := s.connectMQTT(ctx); err != nil {
		return fmt.Errorf("chirpstack: restart: %w", err)
	}
	return nil
}

// closeBroker closes a mochi broker, bounded like Close.
func closeBroker(b interface{ Close() error }) error {
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("clients did not disconnect within 5s")
	}
}
