package chirpstack

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connect tries one MQTT 3.1.1 connection to addr with the given
// credentials (user "" = none) and returns the broker's verdict.
func connect(t *testing.T, addr, user, pass string) error {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(addr).SetClientID("auth-test").
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	if user != "" {
		opts.SetUsername(user).SetPassword(pass)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("no CONNACK within 10 s")
	}
	if tok.Error() == nil {
		c.Disconnect(0)
	}
	return tok.Error()
}

// The embedded broker takes only its account: an anonymous client (one
// that could subscribe to # and read every uplink and every integration
// event) and a wrong password are refused with MQTT 3.1.1 §3.2.2.3's CONNACK
// 5 "not authorized" (paho: packets.ErrorRefusedNotAuthorised) — mochi-mqtt
// answers every failed authentication with 5 (packets/codes.go); whether
// Mosquitto answers a wrong password with 4 or 5 is UNCONFIRMED (server.go).
func TestEmbeddedBrokerRefusesAnonymousAndWrongCredentials(t *testing.T) {
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := s.MQTTCredentials()
	if user == "" || len(pass) < 20 {
		t.Fatalf("credentials %q / %d-character password: want a user and a random password", user, len(pass))
	}
	if strings.Contains(s.MQTTAddress(), pass) {
		t.Fatal("MQTTAddress carries the password")
	}
	addr := s.MQTTAddress()
	for _, tc := range []struct {
		name, user, pass string
	}{{"anonymous", "", ""}, {"wrong password", user, pass + "x"}, {"unknown user", "admin", pass}} {
		err := connect(t, addr, tc.user, tc.pass)
		if err == nil {
			t.Errorf("%s: connected", tc.name)
			continue
		}
		if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Errorf("%s: %v, want CONNACK 5 not authorised", tc.name, err)
		}
	}
	if err := connect(t, addr, user, pass); err != nil {
		t.Errorf("the account: %v", err)
	}
	// MQTTURL carries the account, so paho clients given it authenticate.
	u, err := url.Parse(s.MQTTURL())
	if err != nil || u.User == nil || u.User.Username() != user {
		t.Fatalf("MQTTURL %v: want the account in it", err)
	}
	if err := connect(t, s.MQTTURL(), "", ""); err != nil {
		t.Errorf("MQTTURL: %v", err)
	}
}

// The account survives a broker restart, and MQTTAnonymous opens the
// broker to clients without credentials (chirpstack-docker's
// allow_anonymous true).
func TestEmbeddedBrokerAuthAfterRestartAndAnonymousOption(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{MQTTUsername: "gw", MQTTPassword: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RestartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, s.MQTTAddress(), "", ""); err == nil {
		t.Error("anonymous client connected after a broker restart")
	}
	if err := connect(t, s.MQTTAddress(), "gw", "s3cret-pass"); err != nil {
		t.Errorf("the account after a restart: %v", err)
	}

	open, err := Start(ctx, Config{MQTTAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := connect(t, open.MQTTAddress(), "", ""); err != nil {
		t.Errorf("MQTTAnonymous: anonymous client: %v", err)
	}
}
