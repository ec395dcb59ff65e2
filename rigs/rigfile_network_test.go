package rigs

import (
	"strings"
	"testing"
)

func TestContainersRigFileLoads(t *testing.T) {
	f, err := Load("emulated-containers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Network.Kind != "containers" || f.Network.ImageSet != "local" || f.Timing != "instant" {
		t.Fatalf("unexpected rig: %+v", f.Network)
	}
}

func TestNetworkImageSet(t *testing.T) {
	const board = "\nboards: [{emulated: true, unique_id: 0080E11500000001}]"
	for _, ok := range []string{"network: {kind: containers}", "network: {kind: containers, image_set: upstream}"} {
		if _, err := Parse([]byte(ok + board)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	_, err := Parse([]byte("network: {kind: containers, image_set: dockerhub}" + board))
	if err == nil || !strings.Contains(err.Error(), `network.image_set: "dockerhub"`) {
		t.Fatalf("bad image_set: %v", err)
	}
}

// network.events: json or protobuf for the rig's own server; an external
// server's setting is not the rig's to give.
func TestNetworkEvents(t *testing.T) {
	const board = "\nboards: [{emulated: true, unique_id: 0080E11500000001}]"
	for _, ok := range []string{"network: {events: protobuf}", "network: {kind: containers, events: json}", "network: {}"} {
		if _, err := Parse([]byte(ok + board)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for doc, want := range map[string]string{
		"network: {events: xml}": `network.events: "xml" is not json or protobuf`,
		"network: {kind: external, api: a:1, token: t, mqtt: tcp://m:1883, events: protobuf}": "network.events: only for the rig's own server",
	} {
		if _, err := Parse([]byte(doc + board)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
