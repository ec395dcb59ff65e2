package phone_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/tap2join/tap2join/rigs/phone"
)

// SendFirmware streams an image in 241-byte chunks (an Android phone's
// largest addressed Write Message) and the device confirms its SHA-256.
func TestSendFirmware(t *testing.T) {
	p := board(t, false, phone.Options{})
	img := make([]byte, 3000)
	for i := range img {
		img[i] = byte(i * 31)
	}
	var last phone.FirmwareProgress
	calls := 0
	res, err := p.SendFirmware(context.Background(), img, phone.FirmwareOptions{
		Chunk:    241,
		Progress: func(fp phone.FirmwareProgress) { last = fp; calls++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sha256.Sum256(img) || res.Size != 3000 || res.Chunks != 13 || res.Resumed != 0 {
		t.Errorf("result %+v", res)
	}
	if calls != 13 || last.Sent != 3000 || last.Size != 3000 {
		t.Errorf("progress: %d calls, last %+v", calls, last)
	}
	// The device is back to requests.
	if _, err := p.Identity(context.Background()); err != nil {
		t.Fatalf("identity after the transfer: %v", err)
	}
}
