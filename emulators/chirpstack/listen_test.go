package chirpstack

import (
	"context"
	"strings"
	"testing"
)

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		":1883": "127.0.0.1:1883", "0.0.0.0:1883": "127.0.0.1:1883", "[::]:1883": "127.0.0.1:1883",
		"127.0.0.1:1883": "127.0.0.1:1883", "broker:1883": "broker:1883",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

// The embedded broker can listen on every interface (what the container
// image does) and the server still reaches it.
func TestEmbeddedBrokerListenAddress(t *testing.T) {
	s, err := Start(context.Background(), Config{MQTTListen: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.MQTTAddress(), "tcp://127.0.0.1:") {
		t.Fatalf("MQTTAddress = %q", s.MQTTAddress())
	}
}
