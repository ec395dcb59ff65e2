// Package chirpstack is the embedded default network server of tap2join: an
// in-process stand-in for ChirpStack v4 that speaks ChirpStack's real
// interfaces on loopback, so the same lns client, gateway twin and suites run
// unchanged against it and against a real ChirpStack.
//
// It provides
//   - the gRPC API subset a provisioning client needs (tenants, applications,
//     device profiles, gateways, devices, device keys, DevNonce flush,
//     activation, downlink enqueue) with ChirpStack's own protobufs and
//     ChirpStack-like validation and errors; every other RPC is Unimplemented;
//   - API-key authentication with ChirpStack-style HS256 JWTs;
//   - the MQTT gateway backend (<region>/gateway/<id>/event/up in, …/command/down
//     out, protobuf or protobuf-JSON like ChirpStack);
//   - a join server (LoRaWAN 1.0.x and 1.1 OTAA, DevNonce set, JoinNonce from 0),
//   - the NS uplink path (de-duplication across gateways, FCnt, MIC, FRMPayload
//     decryption, ACKs, class-A downlinks from the queue), and
//   - the MQTT application integration (application/<app>/device/<dev>/event/…)
//     in ChirpStack's JSON encoding or as Protobuf (integration.mqtt.json),
//     including log events that say why a join was rejected.
//
// State is in memory and disappears on Close. Key material is never logged.
package chirpstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brocaar/lorawan"
	"github.com/brocaar/lorawan/band"
	"github.com/chirpstack/chirpstack/api/go/v4/api"
	"github.com/chirpstack/chirpstack/api/go/v4/common"
	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/tap2join/tap2join/fixtures/transport/mqttconn"
)

// Config configures Start. The zero value is usable.
type Config struct {
	// Region is the region configuration id and the gateway MQTT topic prefix
	// (ChirpStack's region_eu868.toml: id "eu868", topic_prefix "eu868").
	// Default "eu868". Only EU868 band parameters are implemented.
	Region string
	// APIAddr is the gRPC listen address. Default "127.0.0.1:0".
	APIAddr string
	// MQTTAddr is "" to start an embedded mochi-mqtt broker on 127.0.0.1:0, or
	// the URL of an external broker (tcp://host:port) used for the gateway
	// backend and the integration.
	MQTTAddr string
	// MQTTListen is the listen address of the embedded broker (only when
	// MQTTAddr is empty). Default "127.0.0.1:0"; a container image listens on
	// ":1883" so that the published port reaches it.
	MQTTListen string
	// MQTTUsername and MQTTPassword are the embedded broker's one account,
	// as a Mosquitto with a password_file and allow_anonymous false takes
	// them: every client — gateways, this server, integrations — connects
	// with them; an anonymous client or a wrong password is refused
	// (CONNACK 5 "not authorized": mochi-mqtt refuses every failed
	// authentication with it; what Mosquitto answers a wrong password —
	// 4 or 5 — is UNCONFIRMED: its src/handle_connect.c appears to answer
	// 5 for an MQTT 3.1.1 password failure too, not read closely). Both empty:
	// user "chirpstack" with a random password made at Start. With MQTTAddr
	// (an external broker) they are this server's credentials there.
	MQTTUsername, MQTTPassword string
	// MQTTAnonymous lets the embedded broker take clients without
	// credentials too (chirpstack-docker's mosquitto.conf allow_anonymous
	// true), for tools that cannot send any.
	MQTTAnonymous bool
	// RequireGateway drops uplinks received only by gateways the server does
	// not know. Default true: ChirpStack's gateway.allow_unknown_gateways=false.
	RequireGateway *bool
	// Logf receives diagnostic messages (never key material). Optional.
	Logf func(format string, args ...any)

	// NetID is network.net_id. Default 000000 (chirpstack-docker).
	NetID lorawan.NetID
	// DevAddr, if set, is the DevAddr of every join, as in ChirpStack's own
	// test builds (chirpstack/src/devaddr.rs pins 01020304 under
	// #[cfg(test)]), so golden scenarios can compare JoinAccept bytes.
	// Default: random within the NetID's prefix, as a release build does.
	DevAddr *lorawan.DevAddr
	// ExtraChannels are the region's extra_channels (DR0–5 each): a
	// JoinAccept carries them as a CFList. nil: chirpstack-docker's
	// region_eu868.toml (867.1, 867.3, 867.5, 867.7, 867.9 MHz); an empty,
	// non-nil slice: none (ChirpStack's test configuration, test/mod.rs).
	ExtraChannels []uint32
	// DownlinkDataDelay is network.get_downlink_data_delay: after the up
	// event, the class-A answer waits this long so the application can
	// enqueue a reply that still goes out in that uplink's RX window
	// (uplink/data.rs start_downlink_data_flow). Default 100 ms, as
	// ChirpStack's.
	DownlinkDataDelay time.Duration
	// RX1Delay is the region's network rx1_delay in seconds (1–15): the
	// JoinAccept's RxDelay and a session's RX1 delay. Default 1. A device
	// profile asking for more (rx1_delay) gets an RXTimingSetupReq.
	RX1Delay uint8
	// Seed seeds the server's random choices that a test must be able to
	// repeat (the downlink gateway among equally good ones). 0 means 1.
	Seed uint64
	// RX2Frequency, RX2DR and RX1DROffset are the region network's
	// rx2_frequency, rx2_dr and rx1_dr_offset (defaults: EU868's 869.525
	// MHz, DR0, 0). A JoinAccept carries the data rates; a session whose
	// RX2 frequency (the region default after a join, as ChirpStack sets
	// it) or data rates differ gets an RXParamSetupReq.
	RX2Frequency uint32
	RX2DR        uint8
	RX1DROffset  uint8
	// RXWindow is the region's network rx_window: 0 answers in RX1 and RX2
	// (a DownlinkFrame item each), 1 in RX1 only, 2 in RX2 only.
	RXWindow int
	// DeduplicationDelay is network.deduplication_delay: how long the first
	// reception of a frame waits for copies from other gateways. Default 200 ms.
	DeduplicationDelay time.Duration
	// ProtobufEvents publishes integration events as Protobuf instead of
	// JSON: ChirpStack's integration.mqtt.json = false, under which
	// integration/mqtt.rs publishes pl.encode_to_vec() where it would
	// publish serde_json::to_vec(&pl). Default false: JSON, as
	// chirpstack-docker configures it.
	ProtobufEvents bool
	// Unanswered, if set, is called for every reception of an uplink once the
	// server is done with it and sends no downlink through that gateway
	// (nothing queued, no ACK or MAC command due, a JoinRequest rejected, a
	// frame dropped — or the answer went through another gateway): gatewayID
	// and the rx_info.context the gateway sent. It is not a
	// ChirpStack behaviour and puts nothing on the wire: an emulated gateway
	// in the same process uses it to end the device's receive windows at
	// once (radio.Air.EndReply) instead of letting them wait out their
	// wall-clock cap for a frame that will not come.
	Unanswered func(gatewayID string, context []byte)
}

// Server is a running embedded network server.
type Server struct {
	cfg            Config
	region         string        // region config id, e.g. "eu868"
	regionCommon   common.Region // common name, e.g. EU868
	band           band.Band
	requireGateway bool
	dedupDelay     time.Duration
	logf           func(string, ...any)
	// lateLog guards logging from goroutines that may outlive Close (the
	// publish watchers): after Close they stay silent, never calling a test's
	// t.Logf once the test has ended.
	lateLog    sync.RWMutex
	lateLogOff bool

	secret []byte
	token  string
	rng    *mrand.Rand // seeded (Config.Seed); guarded by mu

	mu        sync.Mutex
	tenants   map[string]*tenantRow
	apps      map[string]*applicationRow
	profiles  map[string]*deviceProfileRow
	gateways  map[lorawan.EUI64]*gatewayRow
	devices   map[lorawan.EUI64]*deviceRow
	keys      map[lorawan.EUI64]*deviceKeysRow
	sessions  map[lorawan.EUI64]*session
	byAddr    map[lorawan.DevAddr]map[lorawan.EUI64]*session // sessions by DevAddr (sessions.go)
	watchOnce sync.Once
	watch     *mqttconn.Watcher // the publishes of publishAsync
	apiKeys   map[string]*apiKeyRow
	gwJSON    map[lorawan.EUI64]bool
	downlinks map[uint32]*downlinkCtx
	collect   map[string]*frameSet
	closed    bool

	lis                net.Listener
	grpcSrv            *grpc.Server
	broker             *mqtt.Server
	mqttURL            string // without credentials
	mqttUser, mqttPass string
	mqcP               atomic.Pointer[paho.Client] // replaced by Restart while handlers may publish: read with mqc()
	// mqttReady: the gateway backend is connected and subscribed (restart.go).
	mqttReady atomic.Bool

	wg        sync.WaitGroup
	done      chan struct{} // closed by Close: waits in flight end
	closeOnce sync.Once
	closeErr  error
}

// Start starts the API, the MQTT gateway backend (and embedded broker when
// cfg.MQTTAddr is empty) and returns once the server is subscribed to gateway
// events, so no uplink published after Start returns is lost.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	s := &Server{
		cfg:       cfg,
		region:    strings.ToLower(cfg.Region),
		tenants:   map[string]*tenantRow{},
		apps:      map[string]*applicationRow{},
		profiles:  map[string]*deviceProfileRow{},
		gateways:  map[lorawan.EUI64]*gatewayRow{},
		devices:   map[lorawan.EUI64]*deviceRow{},
		keys:      map[lorawan.EUI64]*deviceKeysRow{},
		sessions:  map[lorawan.EUI64]*session{},
		byAddr:    map[lorawan.DevAddr]map[lorawan.EUI64]*session{},
		apiKeys:   map[string]*apiKeyRow{},
		gwJSON:    map[lorawan.EUI64]bool{},
		downlinks: map[uint32]*downlinkCtx{},
		collect:   map[string]*frameSet{},
		logf:      cfg.Logf,
		done:      make(chan struct{}),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.region == "" {
		s.region = "eu868"
	}
	if !strings.HasPrefix(s.region, "eu868") {
		return nil, fmt.Errorf("chirpstack: start: region %q not supported (only eu868)", cfg.Region)
	}
	s.regionCommon = common.Region_EU868
	if cfg.RXWindow < 0 || cfg.RXWindow > 2 {
		return nil, fmt.Errorf("chirpstack: start: rx_window %d: want 0 (RX1 and RX2), 1 (RX1) or 2 (RX2)", cfg.RXWindow)
	}
	if cfg.RX2DR > 7 || cfg.RX1DROffset > 5 {
		return nil, fmt.Errorf("chirpstack: start: rx2_dr %d / rx1_dr_offset %d: EU868 allows DR0–7 and offsets 0–5", cfg.RX2DR, cfg.RX1DROffset)
	}
	if cfg.RX1Delay > 15 {
		return nil, fmt.Errorf("chirpstack: start: rx1_delay %d s: at most 15", cfg.RX1Delay)
	}
	s.requireGateway = cfg.RequireGateway == nil || *cfg.RequireGateway
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	s.rng = mrand.New(mrand.NewPCG(seed, seed))
	s.dedupDelay = cfg.DeduplicationDelay
	if s.dedupDelay <= 0 {
		s.dedupDelay = 200 * time.Millisecond
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:0"
	}

	b, err := band.GetConfig(band.EU868, false, lorawan.DwellTimeNoLimit)
	if err != nil {
		return nil, fmt.Errorf("chirpstack: start: band: %w", err)
	}
	// chirpstack-docker region_eu868.toml extra_channels: 867.1–867.9 MHz DR0–5.
	// They end up in the JoinAccept CFList (type 0) like in ChirpStack.
	extra := cfg.ExtraChannels
	if extra == nil {
		extra = []uint32{867100000, 867300000, 867500000, 867700000, 867900000}
	}
	for _, f := range extra {
		if err := b.AddChannel(f, 0, 5); err != nil {
			return nil, fmt.Errorf("chirpstack: start: add channel %d: %w", f, err)
		}
	}
	s.band = b

	s.secret = make([]byte, 32)
	if _, err := rand.Read(s.secret); err != nil {
		return nil, fmt.Errorf("chirpstack: start: secret: %w", err)
	}
	// The initial migration of ChirpStack creates the "ChirpStack" tenant.
	now := time.Now()
	tid := newUUID()
	s.tenants[tid] = &tenantRow{pb: &api.Tenant{Id: tid, Name: "ChirpStack", CanHaveGateways: true}, created: now, updated: now}
	kid := newUUID()
	s.apiKeys[kid] = &apiKeyRow{name: "tap2join", isAdmin: true}
	if s.token, err = signJWT(s.secret, jwtClaims{Aud: "chirpstack", Iss: "chirpstack", Sub: kid, Typ: "key"}); err != nil {
		return nil, fmt.Errorf("chirpstack: start: sign api key: %w", err)
	}

	if err := s.startMQTT(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startAPI(cfg.APIAddr); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) startAPI(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("chirpstack: listen api %s: %w", addr, err)
	}
	s.lis = lis
	s.grpcSrv = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	)
	api.RegisterTenantServiceServer(s.grpcSrv, &tenantService{s: s})
	api.RegisterApplicationServiceServer(s.grpcSrv, &applicationService{s: s})
	api.RegisterDeviceProfileServiceServer(s.grpcSrv, &deviceProfileService{s: s})
	api.RegisterGatewayServiceServer(s.grpcSrv, &gatewayService{s: s})
	api.RegisterDeviceServiceServer(s.grpcSrv, &deviceService{s: s})
	// ChirpStack registers server reflection too (grpcurl works against it).
	reflection.Register(s.grpcSrv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpcSrv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.logf("chirpstack: api serve: %v", err)
		}
	}()
	s.logf("chirpstack: API listening on %s", lis.Addr())
	return nil
}

func (s *Server) startMQTT(ctx context.Context) error {
	s.mqttURL = s.cfg.MQTTAddr
	s.mqttUser, s.mqttPass = s.cfg.MQTTUsername, s.cfg.MQTTPassword
	// An account in MQTTAddr (tcp://user:password@host) moves out of the
	// URL, which logs and errors quote.
	if u, err := url.Parse(s.mqttURL); err == nil && u.User != nil {
		if s.mqttUser == "" {
			s.mqttUser = u.User.Username()
			s.mqttPass, _ = u.User.Password()
		}
		u.User = nil
		s.mqttURL = u.String()
	}
	if s.mqttURL == "" && s.mqttUser == "" && s.mqttPass == "" {
		pw := make([]byte, 18)
		if _, err := rand.Read(pw); err != nil {
			return fmt.Errorf("chirpstack: mqtt password: %w", err)
		}
		s.mqttUser, s.mqttPass = "chirpstack", base64.RawURLEncoding.EncodeToString(pw)
	}
	if s.mqttURL == "" {
		listen := s.cfg.MQTTListen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		if err := s.startBroker(listen); err != nil {
			return err
		}
	}
	return s.connectMQTT(ctx)
}

// startBroker starts the embedded broker on listen and sets mqttURL.
func (s *Server) startBroker(listen string) error {
	caps := mqtt.NewDefaultServerCapabilities()
	// mochi drops a message for a client with more than this many writes
	// pending (default 8,192): a fleet of 10,000 joining at once sends one
	// gateway more downlink commands than that, and the watcher of the
	// integration more events.
	caps.MaximumClientWritesPending = 1 << 18
	s.broker = mqtt.New(&mqtt.Options{
		InlineClient: false,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Capabilities: caps,
		// mochi gathers a client's queued packets into one write up to
		// this size (2 KB by default: about two integration events), and
		// writes at once when nothing more is queued — so a larger buffer
		// only saves write(2) calls under load (a fleet's event stream).
		ClientNetWriteBufferSize: 64 << 10,
	})
	if err := s.broker.AddHook(new(auth.Hook), &auth.Options{Ledger: s.brokerLedger()}); err != nil {
		return fmt.Errorf("chirpstack: mqtt broker hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: listen})
	if err := s.broker.AddListener(tcp); err != nil {
		return fmt.Errorf("chirpstack: mqtt broker listen: %w", err)
	}
	if err := s.broker.Serve(); err != nil {
		return fmt.Errorf("chirpstack: mqtt broker serve: %w", err)
	}
	s.mqttURL = "tcp://" + dialable(tcp.Address())
	s.logf("chirpstack: embedded MQTT broker on %s", s.mqttURL)
	return nil
}

// brokerLedger is the embedded broker's accounts: the one user (and, with
// MQTTAnonymous, any client); an authenticated client may use every topic
// (no ACL, as chirpstack-docker's Mosquitto).
func (s *Server) brokerLedger() *auth.Ledger {
	l := &auth.Ledger{
		Users: auth.Users{s.mqttUser: {Username: auth.RString(s.mqttUser), Password: auth.RString(s.mqttPass)}},
		ACL:   auth.ACLRules{{}},
	}
	if s.cfg.MQTTAnonymous {
		l.Auth = auth.AuthRules{{Allow: true}}
	}
	return l
}

// connectMQTT connects the gateway backend's client to mqttURL and returns
// once it is subscribed to gateway events.
func (s *Server) connectMQTT(ctx context.Context) error {
	subscribed := make(chan error, 1)
	topic := s.region + "/gateway/+/event/+"
	opts := paho.NewClientOptions().
		SetCustomOpenConnectionFn(mqttconn.Open). // buffered reads: a fleet moves ~200,000 messages
		AddBroker(s.mqttURL).
		SetUsername(s.mqttUser).SetPassword(s.mqttPass).
		SetClientID("chirpstack-emulator-" + newUUID()[:8]).
		SetCleanSession(true).
		SetAutoReconnect(true).
		// Handlers run on paho's router goroutine, in order (no goroutine
		// per message: a fleet sends 50,000); they decode and hand over,
		// never waiting on a paho token.
		SetOrderMatters(true).
		SetConnectTimeout(10 * time.Second)
	opts.SetOnConnectHandler(func(c paho.Client) {
		// (Re)subscribe on every connect, like ChirpStack's gateway backend
		// ("Subscribing to gateway event topic").
		s.logf("chirpstack: subscribing to gateway event topic %s", topic)
		t := c.Subscribe(topic, 0, s.onGatewayMessage)
		t.Wait()
		s.mqttReady.Store(t.Error() == nil)
		select {
		case subscribed <- t.Error():
		default:
		}
	})
	opts.SetConnectionLostHandler(func(paho.Client, error) { s.mqttReady.Store(false) })
	c := paho.NewClient(opts)
	s.mqcP.Store(&c)
	t := c.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("chirpstack: mqtt connect %s: %w", s.mqttURL, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("chirpstack: mqtt connect %s: %w", s.mqttURL, ctx.Err())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			return fmt.Errorf("chirpstack: mqtt subscribe %s: %w", topic, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("chirpstack: mqtt subscribe %s: %w", topic, ctx.Err())
	}
	return nil
}

// dialable turns a listen address into one a local client can dial: an
// unspecified host (":1883", "0.0.0.0:1883") becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// APIAddr returns host:port of the plaintext (h2c) gRPC API.
func (s *Server) APIAddr() string { return s.lis.Addr().String() }

// APIToken returns the admin API key created at start (a ChirpStack-style JWT).
func (s *Server) APIToken() string { return s.token }

// MQTTURL returns the broker URL for gateways and integration events, with
// the broker account in it (tcp://user:password@host:port): paho clients take
// their credentials from it. Log MQTTAddress, not this.
func (s *Server) MQTTURL() string {
	u, err := url.Parse(s.mqttURL)
	if err != nil || s.mqttUser == "" || u.User != nil {
		return s.mqttURL
	}
	u.User = url.UserPassword(s.mqttUser, s.mqttPass)
	return u.String()
}

// MQTTAddress is the broker URL without credentials.
func (s *Server) MQTTAddress() string { return s.mqttURL }

// MQTTCredentials are the broker account (MQTTUsername, MQTTPassword, or the
// ones made at Start).
func (s *Server) MQTTCredentials() (username, password string) { return s.mqttUser, s.mqttPass }

// Close stops the API, the MQTT client, pending de-duplication timers and the
// embedded broker. It is idempotent.
// mqc is the current MQTT client (nil before the first connect).
func (s *Server) mqc() paho.Client {
	if p := s.mqcP.Load(); p != nil {
		return *p
	}
	return nil
}

// logLate logs from a goroutine that may outlive Close.
func (s *Server) logLate(format string, args ...any) {
	s.lateLog.RLock()
	defer s.lateLog.RUnlock()
	if !s.lateLogOff {
		s.logf(format, args...)
	}
}

func (s *Server) Close() error {
	defer func() {
		s.lateLog.Lock()
		s.lateLogOff = true
		s.lateLog.Unlock()
	}()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for k, fs := range s.collect {
			if fs.timer.Stop() {
				s.wg.Done()
			}
			delete(s.collect, k)
		}
		s.mu.Unlock()
		if s.grpcSrv != nil {
			s.grpcSrv.Stop()
		}
		s.wg.Wait()
		if c := s.mqc(); c != nil {
			c.Disconnect(100)
		}
		s.watchOnce.Do(func() {}) // no watcher from now on
		if s.watch != nil {
			s.watch.Close()
		}
		if s.broker != nil {
			// mochi's Close waits for every client goroutine (ClientsWg), which
			// can block on a connection accepted but never completed (e.g. a
			// client reconnecting during shutdown). Bound it so Close always
			// returns; the listener is closed either way.
			// Stop accepting first, as RestartBroker does: mochi disconnects
			// clients before closing its listener, and a client reconnecting
			// in between would hold Close until the timeout below.
			if l, ok := s.broker.Listeners.Get("tcp"); ok {
				l.Close(func(string) {})
			}
			// The listener is now marked closed, so the broker's own Close
			// will not disconnect its clients: do it here.
			for _, cl := range s.broker.Clients.GetAll() {
				_ = s.broker.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
			done := make(chan error, 1)
			go func() { done <- s.broker.Close() }()
			select {
			case err := <-done:
				if err != nil {
					s.closeErr = fmt.Errorf("chirpstack: close broker: %w", err)
				}
			case <-time.After(5 * time.Second):
				s.closeErr = errors.New("chirpstack: close broker: clients did not disconnect within 5s")
			}
		}
	})
	return s.closeErr
}
