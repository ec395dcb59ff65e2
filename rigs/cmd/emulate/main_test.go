package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"testing"
)

// TestPrintsOneLineAndStops runs the default rig: one JSON line with the
// endpoints, then a clean stop when the context (the signal) ends.
func TestPrintsOneLineAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--rig", "rigs/emulated.yaml"}, pw, io.Discard); pw.Close() }()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no line: %v", <-done)
	}
	var ep Endpoints
	if err := json.Unmarshal(sc.Bytes(), &ep); err != nil {
		t.Fatalf("%q: %v", sc.Text(), err)
	}
	if ep.Rig != "emulated" || ep.Network.API == "" || ep.Network.MQTT == "" || ep.Network.Token == "" ||
		len(ep.Boards) != 1 || ep.Boards[0].Name != "board-1" || ep.Boards[0].PCSCReader != "" {
		t.Fatalf("endpoints %+v", ep)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
