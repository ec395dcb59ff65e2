package phone_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/timing"
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

// In a testing/synctest bubble, realistic timing runs on the bubble's
// virtual clock: the drain waits are exact timers (no yielding loop, which
// would never see that clock move), so a transfer takes the same modelled
// time on every run — up to the order of two goroutines that wake at the
// same virtual instant (the phone's status poll and the MCU's I2C read of a
// chunk may meet; under load either may go first: one poll more or less,
// seen once as 1.6066 s vs 1.6136 s) — bounded by the RF limit, in little
// wall time.
func TestSendFirmwareOnVirtualTime(t *testing.T) {
	img := make([]byte, 4096)
	for i := range img {
		img[i] = byte(i * 17)
	}
	wallStart := time.Now()
	var results []phone.FirmwareResult
	for range 2 {
		synctest.Test(t, func(t *testing.T) {
			p, _ := boardTagOn(t, timing.NewClock(timing.Realistic), false, phone.Options{})
			res, err := p.SendFirmware(t.Context(), img, phone.FirmwareOptions{Chunk: 256})
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, res)
		})
	}
	a, b := results[0], results[1]
	if a.Size != b.Size || a.SHA256 != b.SHA256 || a.Chunks != b.Chunks || a.Resumed != b.Resumed {
		t.Errorf("two runs on virtual time differ:\n%+v\n%+v", a, b)
	}
	// A wall-clock run differs by milliseconds of host time per chunk
	// (16 chunks here); two virtual ones by at most a few polls.
	if d := (a.Wall - b.Wall).Abs(); d > 4*st25dv.MailboxReadTime(1, true) || (a.Polls-b.Polls) > 2 || (b.Polls-a.Polls) > 2 {
		t.Errorf("two runs on virtual time differ by %v and %d polls:\n%+v\n%+v", d, a.Polls-b.Polls, a, b)
	}
	// Never above the RF limit (addressed frames: the default driver), and
	// not far under it (this board's I2C runs at the tag twin's default
	// clock, slower than a rig's 1 MHz, and 4 KiB carries FW_BEGIN/FW_END).
	limit := 256 / st25dv.MailboxWriteTime(256, true).Seconds()
	if r := results[0].BytesPerSecond() / limit; r < 0.75 || r > 1 {
		t.Errorf("%.0f B/s is %.1f %% of the RF limit (%.0f B/s); result %+v", results[0].BytesPerSecond(), 100*r, limit, results[0])
	}
	// On the wall clock the two transfers cannot take less than the time
	// they model (the emulators sleep it); on virtual time they do.
	if wall := time.Since(wallStart); wall >= a.Wall+b.Wall {
		t.Errorf("two modelled transfers of %v and %v took %v of wall time: not on virtual time", a.Wall, b.Wall, wall)
	}
}
