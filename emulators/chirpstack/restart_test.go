package chirpstack

import (
	"context"
	"testing"
	"time"
)

// A broker restart and a server restart come back on the same addresses;
// the gateway backend reconnects and the API key stays valid.
func TestRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	api, mqttURL, token := s.APIAddr(), s.MQTTURL(), s.APIToken()
	ready := func(what string) {
		t.Helper()
		for !s.MQTTReady() {
			if ctx.Err() != nil {
				t.Fatalf("%s: gateway backend not subscribed again", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := s.RestartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	if s.MQTTURL() != mqttURL {
		t.Fatalf("broker moved: %s → %s", mqttURL, s.MQTTURL())
	}
	ready("broker restart")
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.APIAddr() != api || s.APIToken() != token {
		t.Fatalf("API moved or token changed: %s → %s", api, s.APIAddr())
	}
	ready("server restart")
}
