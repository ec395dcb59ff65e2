package stm32wl5

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// rfPending reports whether the phone's last message is still unread.
func (t *fakeTag) rfPending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ctrl&mbRFPut != 0
}

// sendChunk writes one raw chunk and waits until the firmware has read it.
func (r *rig) sendChunk(t *testing.T, chunk []byte) {
	t.Helper()
	eventually(t, "mailbox free for a chunk", func() bool { return r.tag.phoneWrite(chunk) })
	eventually(t, "chunk read by the firmware", func() bool { return !r.tag.rfPending() })
}

func (r *rig) fwExchange(t *testing.T, req []byte, want provproto.Type) provproto.Frame {
	t.Helper()
	f, err := provproto.Unmarshal(r.phone.exchange(t, req))
	if err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	if f.Type != want {
		t.Fatalf("device answered %s (%x), want %s", f.Type, f.Body, want)
	}
	return f
}

func fwBegin(t *testing.T, img []byte, sum [32]byte) []byte {
	t.Helper()
	b, err := provproto.FWBegin{Size: uint32(len(img)), SHA256: sum}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fwResult(t *testing.T, f provproto.Frame) provproto.FWResult {
	t.Helper()
	res, err := provproto.ParseFWResult(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func randomImage(t *testing.T, n int) []byte {
	t.Helper()
	img := make([]byte, n)
	if _, err := rand.Read(img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFirmwareTransfer(t *testing.T) {
	r := newRig(t, nil)
	img := randomImage(t, 1000) // 3 × 256 + 232: a short last chunk
	sum := sha256.Sum256(img)
	f := r.fwExchange(t, fwBegin(t, img, sum), provproto.TypeFWReady)
	if off, _ := provproto.ParseFWReady(f.Body); off != 0 {
		t.Fatalf("fresh transfer resumes at %d", off)
	}
	for off := 0; off < len(img); off += 256 {
		r.sendChunk(t, img[off:min(off+256, len(img))])
	}
	res := fwResult(t, r.fwExchange(t, provproto.MarshalFWEnd(), provproto.TypeFWResult))
	if res.Status != provproto.OK || res.Size != 1000 || res.SHA256 != sum {
		t.Fatalf("FW_RESULT %s", res)
	}
	st := r.board.StagedFirmware()
	if st == nil || !bytes.Equal(st.Data, img) {
		t.Fatal("image not staged")
	}
	// Back to frames: a request is a request again.
	r.identity(t)
}

func TestFirmwareMismatchOverflowAndNoTransfer(t *testing.T) {
	r := newRig(t, nil)
	res := fwResult(t, r.fwExchange(t, provproto.MarshalFWEnd(), provproto.TypeFWResult))
	if res.Status != provproto.NoTransfer {
		t.Fatalf("FW_END without transfer: %s", res)
	}

	img := randomImage(t, 300)
	r.fwExchange(t, fwBegin(t, img, sha256.Sum256([]byte("another image"))), provproto.TypeFWReady)
	r.sendChunk(t, img[:256])
	r.sendChunk(t, img[256:])
	res = fwResult(t, r.fwExchange(t, provproto.MarshalFWEnd(), provproto.TypeFWResult))
	if res.Status != provproto.ImageMismatch || res.SHA256 != sha256.Sum256(img) {
		t.Fatalf("wrong announced hash: %s", res)
	}
	if r.board.StagedFirmware() != nil {
		t.Fatal("a mismatching image was staged")
	}

	// A chunk beyond the announced size: ERROR BAD_LENGTH, transfer dropped.
	r.fwExchange(t, fwBegin(t, img, sha256.Sum256(img)), provproto.TypeFWReady)
	r.sendChunk(t, img[:256])
	f := r.fwExchange(t, img[:256], provproto.TypeError)
	if st, _ := provproto.StatusOf(provproto.ParseError(f.Body)); st != provproto.BadLength {
		t.Fatalf("overflowing chunk: %x", f.Body)
	}
	r.identity(t)

	// Too large for the slot.
	big := make([]byte, FirmwareSlotSize+1)
	f = r.fwExchange(t, fwBegin(t, big, sha256.Sum256(big)), provproto.TypeError)
	if st, _ := provproto.StatusOf(provproto.ParseError(f.Body)); st != provproto.Unsupported {
		t.Fatalf("oversized image: %x", f.Body)
	}
}

// An abandoned transfer (the phone was lifted) frees the device after the
// idle timeout, and the same image resumes where it stopped.
func TestFirmwareIdleTimeoutAndResume(t *testing.T) {
	old := fwIdleTimeout
	fwIdleTimeout = 50 * time.Millisecond
	t.Cleanup(func() { fwIdleTimeout = old })
	r := newRig(t, nil)
	img := randomImage(t, 600)
	sum := sha256.Sum256(img)
	r.fwExchange(t, fwBegin(t, img, sum), provproto.TypeFWReady)
	r.sendChunk(t, img[:256])
	if r.board.fwOffset() != 256 {
		t.Fatalf("offset %d", r.board.fwOffset())
	}
	eventually(t, "transfer abandoned", func() bool {
		// Before the timeout GET_IDENTITY is taken as image data (no answer,
		// which would hang an exchange): wait on the clock the device uses.
		r.board.fw.mu.Lock()
		defer r.board.fw.mu.Unlock()
		return time.Since(r.board.fw.last) > fwIdleTimeout
	})
	r.identity(t)
	f := r.fwExchange(t, fwBegin(t, img, sum), provproto.TypeFWReady)
	if off, _ := provproto.ParseFWReady(f.Body); off != 256 {
		t.Fatalf("resume offset %d, want 256", off)
	}
	r.sendChunk(t, img[256:512])
	r.sendChunk(t, img[512:])
	if res := fwResult(t, r.fwExchange(t, provproto.MarshalFWEnd(), provproto.TypeFWResult)); res.Status != provproto.OK {
		t.Fatalf("resumed transfer: %s", res)
	}
}
