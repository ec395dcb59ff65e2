// Command mqttbroker is a minimal MQTT 3.1.1/5 broker (mochi-mqtt, shared
// subscriptions on) for the local container image set of
// fixtures/containers: it plays the part eclipse-mosquitto plays in
// chirpstack-docker, and builds as a static binary for a FROM scratch image.
//
// With -user and -password it takes that one account only (a Mosquitto with
// a password_file and allow_anonymous false): an anonymous client or a
// wrong password is refused. Without them it takes anyone, and says so.
//
// It prints "mqttbroker: listening on <addr>" once the listener is up; the
// container fixture waits for that line.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("listen", ":1883", "TCP listen address")
	verbose := flag.Bool("v", false, "log broker diagnostics on stderr")
	user := flag.String("user", "", "the one account's user name (with -password); empty: anonymous clients are taken")
	password := flag.String("password", "", "the account's password")
	flag.Parse()
	if (*user == "") != (*password == "") {
		fail(fmt.Errorf("-user and -password go together"))
	}

	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if *verbose {
		h = slog.NewTextHandler(os.Stderr, nil)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: slog.New(h)})
	if *user != "" {
		ledger := &auth.Ledger{
			Users: auth.Users{*user: {Username: auth.RString(*user), Password: auth.RString(*password)}},
			ACL:   auth.ACLRules{{}}, // an authenticated client may use every topic
		}
		if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
			fail(err)
		}
	} else {
		fmt.Fprintln(os.Stderr, "mqttbroker: no -user: anonymous clients are taken")
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			fail(err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})
	if err := srv.AddListener(tcp); err != nil {
		fail(err)
	}
	if err := srv.Serve(); err != nil {
		fail(err)
	}
	fmt.Printf("mqttbroker: listening on %s\n", tcp.Address())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mqttbroker:", err)
	os.Exit(1)
}
