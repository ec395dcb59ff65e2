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
