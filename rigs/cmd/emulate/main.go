// Command emulate brings up the bench a rig file describes and keeps it up
// until SIGINT or SIGTERM, so tools outside Go (a phone app under test,
// pcsc_scan, scriptor, a ChirpStack client) can use it:
//
//	go run ./rigs/cmd/emulate --rig rigs/emulated-pcsc.yaml
//
// Once the rig is up it prints exactly one JSON line on stdout with its
// endpoints, e.g.
//
//	{"rig":"emulated-pcsc","network":{"api":"127.0.0.1:41235","token":"…","mqtt":"tcp://127.0.0.1:40111"},
//	 "provisioning":{"url":"https://127.0.0.1:43117","token":"…","ca_file":"/tmp/tap2join-ca-….pem"},
//	 "boards":[{"name":"board-1","pcsc_reader":"Virtual PCD 00 00","serial_port":"/tmp/…/usb-STMicroelectronics_…"}]}
//
// serial_port is the board's AT console (a pty behind a stable link, 9600 8N1),
// "" for a board without one; ca_file holds the embedded provisioning
// backend's per-run CA certificate (PEM), removed on exit. Logs go to stderr.
//
// It lives beside rigcheck, not under emulators/: it brings a rig up, and no
// package under emulators/ imports rigs (the layering rule, README "Layout").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tap2join/tap2join/rigs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "emulate:", err)
		os.Exit(1)
	}
}

// Endpoints is the JSON line printed once the rig is up.
type Endpoints struct {
	Rig          string           `json:"rig"`
	Network      rigs.NetworkInfo `json:"network"`
	Provisioning Backend          `json:"provisioning"`
	Boards       []BoardEndpoints `json:"boards"`
}

// Backend says how to reach the provisioning backend (the phone app's server).
type Backend struct {
	URL    string `json:"url"`
	Token  string `json:"token"`
	CAFile string `json:"ca_file,omitempty"`
}

// BoardEndpoints says how to reach one board.
type BoardEndpoints struct {
	Name       string `json:"name"`
	PCSCReader string `json:"pcsc_reader"` // "" when the board's tag is on the direct transport
	SerialPort string `json:"serial_port"` // AT console pty; "" for a board without one
}

// run brings the rig up, prints the endpoints, waits for ctx, closes the rig.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rigPath := fs.String("rig", "rigs/emulated.yaml", "rig file")
	verbose := fs.Bool("v", false, "debug logging on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	lg := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	p, err := rigs.Find(*rigPath)
	if err != nil {
		return err
	}
	f, err := rigs.Load(p)
	if err != nil {
		return err
	}
	// The serial ports are for other programs: the rig keeps no reader on them.
	rig, err := rigs.Up(ctx, f, rigs.Options{Logger: lg, DetachedConsoles: true})
	if err != nil {
		return err
	}
	ep := Endpoints{Rig: f.Name, Network: rig.NetworkInfo, Boards: []BoardEndpoints{}}
	if rig.Backend != nil {
		ep.Provisioning = Backend{URL: rig.Backend.BaseURL, Token: rig.Backend.Token}
	}
	if len(rig.BackendCA) > 0 {
		ca, err := os.CreateTemp("", "tap2join-ca-*.pem")
		if err != nil {
			return errors.Join(fmt.Errorf("emulate: write backend CA: %w", err), rig.Close())
		}
		defer os.Remove(ca.Name())
		_, werr := ca.Write(rig.BackendCA)
		if err := errors.Join(werr, ca.Close()); err != nil {
			return errors.Join(fmt.Errorf("emulate: write backend CA: %w", err), rig.Close())
		}
		ep.Provisioning.CAFile = ca.Name()
	}
	for _, b := range rig.Boards {
		ep.Boards = append(ep.Boards, BoardEndpoints{Name: b.Name, PCSCReader: b.Reader(), SerialPort: b.SerialPath})
	}
	line, err := json.Marshal(ep)
	if err != nil {
		return errors.Join(err, rig.Close())
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return errors.Join(err, rig.Close())
	}
	lg.Info("rig up; SIGINT or SIGTERM stops it", "rig", f.Name)
	<-ctx.Done()
	lg.Info("stopping")
	return rig.Close()
}
