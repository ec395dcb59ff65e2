package phone_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
	"github.com/tap2join/tap2join/rigs/phone"
)

var st25ftmOpts = phone.Options{MailboxProtocol: phone.MailboxST25FTM}

// Over ST25FTM the requests and answers are the same frames: the identity
// read either way is the same, and the device's log — a LOG answer longer
// than one device packet (253 bytes) — arrives whole across two packets.
func TestST25FTMCarriesTheSameFrames(t *testing.T) {
	ctx := context.Background()
	p := board(t, false, st25ftmOpts)
	id, err := p.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := board(t, false, phone.Options{}).Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.DevEUI != plain.DevEUI || id.State != plain.State {
		t.Errorf("identity over ST25FTM %+v, over tap2join framing %+v", id, plain)
	}
	logOver, err := p.ReadLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(logOver) == 0 || !bytes.Contains(logOver, []byte("Booted fw")) {
		t.Errorf("log over ST25FTM: %q", logOver)
	}
}

// A request posted by a phone that was then lifted leaves its status byte
// (and then its answer) in the mailbox: the next exchange reads it out,
// aborts the old answer with 83h, counts one stale answer and gets its own
// answer, not the old one (GET_LOG posted, GET_IDENTITY asked).
func TestST25FTMStaleAnswer(t *testing.T) {
	ctx := context.Background()
	_, drv := boardTag(t, false, st25ftmOpts)
	tag := phone.NFCTag(drv)
	p := phone.New(tag, nil, st25ftmOpts)
	if err := p.Post(ctx, provproto.MarshalGetLog(0)); err != nil {
		t.Fatal(err)
	}
	// The device posts the request's status byte; the lifted phone never
	// reads it.
	for i := 0; ; i++ {
		_, host, err := tag.MailboxPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if host {
			break
		}
		if i > 100000 {
			t.Fatal("no status from the device")
		}
	}
	id, err := p.Identity(ctx) // exchangeAs: an answer other than IDENTITY fails
	if err != nil {
		t.Fatal(err)
	}
	if id.DevEUI == (provproto.EUI64{}) {
		t.Error("empty identity")
	}
	if n := p.StaleAnswers(); n != 1 {
		t.Errorf("stale answers %d, want 1", n)
	}
	// And once more: nothing stale left behind.
	if _, err := p.Identity(ctx); err != nil || p.StaleAnswers() != 1 {
		t.Errorf("second identity: %v, stale %d", err, p.StaleAnswers())
	}
}

// Post then PendingAnswer is an exchange in two halves (a re-tap reading
// the answer the device kept).
func TestST25FTMPendingAnswer(t *testing.T) {
	ctx := context.Background()
	p := board(t, false, st25ftmOpts)
	if err := p.Post(ctx, provproto.MarshalGetIdentity()); err != nil {
		t.Fatal(err)
	}
	f, err := p.PendingAnswer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != provproto.TypeIdentity {
		t.Errorf("pending answer %s, want IDENTITY", f.Type)
	}
}

// A firmware image goes as one ST25FTM command, progress per segment (each
// ≤ 1048 image bytes), and the device confirms its SHA-256.
func TestST25FTMSendFirmware(t *testing.T) {
	p := board(t, false, st25ftmOpts)
	img := make([]byte, 5000)
	for i := range img {
		img[i] = byte(i * 7)
	}
	var sent []int
	res, err := p.SendFirmware(context.Background(), img, phone.FirmwareOptions{
		Chunk:    241,
		Progress: func(fp phone.FirmwareProgress) { sent = append(sent, fp.Sent) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sha256.Sum256(img) || res.Size != len(img) {
		t.Errorf("result %+v", res)
	}
	// 5001 command bytes in segments of 1048 data bytes: 5 segments.
	if len(sent) != 5 || sent[len(sent)-1] != len(img) || sent[0] != 1047 {
		t.Errorf("progress %v", sent)
	}
}

// ST's demo commands go through Command; a tap2join board has none.
func TestCommand(t *testing.T) {
	ctx := context.Background()
	ans, err := board(t, false, st25ftmOpts).Command(ctx, []byte{0x07})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ans, []byte{0x87, 0x84}) {
		t.Errorf("unknown command answered % X, want 87 84", ans)
	}
	if _, err := board(t, false, phone.Options{}).Command(ctx, []byte{0x00}); err == nil {
		t.Error("Command on a tap2join board: no error")
	}
	huge := make([]byte, 200<<10)
	huge[0] = provproto.FTMFirmware
	if _, err := board(t, false, st25ftmOpts).Command(ctx, huge); !errors.Is(err, phone.ErrFTMAborted) {
		t.Errorf("200 KiB command: %v, want ErrFTMAborted", err)
	}
}

// A packet whose ctrl byte is corrupted on the air (71h → 41h: its ack
// bits cleared) leaves the device waiting for the rest of the segment, so
// no status comes: after the ack timeout the phone sends the segment again
// (ST25FTM's sender rule) and is answered.
func TestST25FTMAckTimeoutResends(t *testing.T) {
	opts := st25ftmOpts
	opts.FieldReturn = 50 * time.Millisecond
	_, drv := boardTag(t, false, opts)
	tag := &ctrlCorrupter{Tag: phone.NFCTag(drv)}
	p := phone.New(tag, nil, opts)
	if _, err := p.Identity(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !tag.done || p.Resumes() != 1 {
		t.Errorf("corrupted %v, resumes %d, want one resend", tag.done, p.Resumes())
	}
}

type ctrlCorrupter struct {
	phone.Tag
	done bool
}

func (c *ctrlCorrupter) WriteMessage(ctx context.Context, msg []byte) error {
	if !c.done && len(msg) > 1 && msg[0] == 0x71 {
		c.done = true
		msg = append([]byte{0x41}, msg[1:]...)
	}
	return c.Tag.WriteMessage(ctx, msg)
}
