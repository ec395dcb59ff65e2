// Command chirpstack runs tap2join's embedded ChirpStack v4 stand-in
// (emulators/chirpstack) as a process: the gRPC API subset, the MQTT gateway
// backend and the application integration, against an external MQTT broker or
// an embedded one.
//
// It is what the local container image of fixtures/containers runs (FROM
// scratch + this binary built with CGO_ENABLED=0), and it is handy on a laptop
// to point grpcurl, the provisioning backend or a real gateway bridge at.
//
// When the server is ready (API listening, subscribed to gateway events) it
// prints one JSON line on stdout:
//
//	{"api":"127.0.0.1:8080","mqtt":"tcp://127.0.0.1:1883","mqtt_user":"chirpstack","mqtt_password":"<random>","region":"eu868","token":"<jwt>"}
//
// The embedded broker takes one account (-mqtt-user with
// $TAP2JOIN_MQTT_PASSWORD, else user chirpstack and a random password;
// -mqtt-anonymous also lets clients without credentials in). With
// -token-file the API token is written to that file (mode 0600) instead,
// the broker password to <token-file>.mqtt, and the JSON line carries
// "token_file" rather than either, so container logs never hold a
// credential. An account in -mqtt's URL (an external broker) is used and
// never printed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tap2join/tap2join/emulators/chirpstack"
)

// Ready is the JSON line printed once the server is ready. The broker URL
// carries no credentials; the broker account is mqtt_user and, like the API
// token, mqtt_password only when no -token-file takes the secrets off the
// console (then the password is in <token-file>.mqtt, mode 0600).
type Ready struct {
	API          string `json:"api"`
	MQTT         string `json:"mqtt"`
	MQTTUser     string `json:"mqtt_user,omitempty"`
	MQTTPassword string `json:"mqtt_password,omitempty"`
	Region       string `json:"region"`
	Token        string `json:"token,omitempty"`
	TokenFile    string `json:"token_file,omitempty"`
}

func main() {
	api := flag.String("api", "127.0.0.1:8080", "gRPC API listen address (host:port)")
	mqttURL := flag.String("mqtt", "embedded", `MQTT broker URL (tcp://host:port), or "embedded" to run a broker in-process`)
	mqttListen := flag.String("mqtt-listen", "127.0.0.1:1883", "listen address of the embedded broker")
	region := flag.String("region", "eu868", "region config id and gateway topic prefix")
	allowUnknown := flag.Bool("allow-unknown-gateways", false, "accept uplinks from gateways not registered through the API")
	dedup := flag.Duration("deduplication-delay", 200*time.Millisecond, "network.deduplication_delay")
	tokenFile := flag.String("token-file", "", "write the admin API token to this file instead of stdout")
	verbose := flag.Bool("v", false, "log diagnostics on stderr (never key material)")
	mqttUser := flag.String("mqtt-user", "", "the embedded broker's account (with $TAP2JOIN_MQTT_PASSWORD); default: user chirpstack, a random password")
	mqttAnon := flag.Bool("mqtt-anonymous", false, "the embedded broker also takes clients without credentials")
	eventsJSON := flag.Bool("integration-json", true, "integration.mqtt.json: events as JSON (true) or Protobuf (false)")
	flag.Parse()

	cfg := chirpstack.Config{Region: *region, APIAddr: *api, DeduplicationDelay: *dedup,
		MQTTUsername: *mqttUser, MQTTPassword: os.Getenv("TAP2JOIN_MQTT_PASSWORD"), MQTTAnonymous: *mqttAnon,
		ProtobufEvents: !*eventsJSON}
	if (cfg.MQTTUsername == "") != (cfg.MQTTPassword == "") {
		fmt.Fprintln(os.Stderr, "chirpstack: -mqtt-user and $TAP2JOIN_MQTT_PASSWORD go together")
		os.Exit(2)
	}
	if *mqttURL != "embedded" {
		cfg.MQTTAddr = *mqttURL
	} else {
		cfg.MQTTListen = *mqttListen
	}
	if *allowUnknown {
		f := false
		cfg.RequireGateway = &f
	}
	if *verbose {
		cfg.Logf = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds).Printf
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, *tokenFile); err != nil {
		fmt.Fprintln(os.Stderr, "chirpstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg chirpstack.Config, tokenFile string) error {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chirpstack.Start(startCtx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	user, pass := s.MQTTCredentials()
	ready := Ready{API: s.APIAddr(), MQTT: s.MQTTAddress(), MQTTUser: user, Region: cfg.Region}
	if ready.Region == "" {
		ready.Region = "eu868"
	}
	if tokenFile != "" {
		if err := os.MkdirAll(filepath.Dir(tokenFile), 0o755); err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		if err := os.WriteFile(tokenFile, []byte(s.APIToken()+"\n"), 0o600); err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		ready.TokenFile = tokenFile
		if pass != "" {
			if err := os.WriteFile(tokenFile+".mqtt", []byte(pass+"\n"), 0o600); err != nil {
				return fmt.Errorf("mqtt password file: %w", err)
			}
		}
	} else {
		ready.Token = s.APIToken()
		ready.MQTTPassword = pass
	}
	line, err := json.Marshal(ready)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	<-ctx.Done()
	return nil
}
