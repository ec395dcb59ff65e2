package nfc_test

// These tests run the driver against the emulated chip through NewDirect.
// Importing emulators/ is allowed here only: this is a _test.go file of
// package nfc_test; package nfc itself never imports emulators/.

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/fixtures/proto/ndef"
	"github.com/tap2join/tap2join/rigs/nfc"
)

const (
	i2cUser = 0x53
	i2cSys  = 0x57
)

// bench is a tag powered by the MCU (VCC) with a phone in the field.
func bench(t *testing.T, opts ...nfc.Option) (*st25dv.Tag, *nfc.ST25DV) {
	t.Helper()
	tag := st25dv.New(st25dv.Config{UID: uidMSB})
	tag.SetVCC(true)
	tag.FieldOn()
	return tag, nfc.NewST25DV(nfc.NewDirect(tag), opts...)
}

func i2cWrite(t *testing.T, tag *st25dv.Tag, dev uint16, addr int, data ...byte) {
	t.Helper()
	if err := tag.I2C().Tx(dev, append([]byte{byte(addr >> 8), byte(addr)}, data...), nil); err != nil {
		t.Fatalf("I2C write %04Xh: %v", addr, err)
	}
}

func i2cRead(t *testing.T, tag *st25dv.Tag, dev uint16, addr, n int) []byte {
	t.Helper()
	r := make([]byte, n)
	if err := tag.I2C().Tx(dev, []byte{byte(addr >> 8), byte(addr)}, r); err != nil {
		t.Fatalf("I2C read %04Xh: %v", addr, err)
	}
	return r
}

func TestEmulatedSystemInfo(t *testing.T) {
	ctx := context.Background()
	for _, opts := range [][]nfc.Option{nil, {nfc.WithAddressed(false)}, {nfc.WithHighDataRate(false)}} {
		_, d := bench(t, opts...)
		si, err := d.SystemInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := nfc.SystemInfo{UID: uidMSB, Blocks: 2048, BlockSize: 4, ICRef: 0x51}
		if si != want {
			t.Fatalf("SystemInfo = %+v, want %+v", si, want)
		}
	}
}

func TestEmulatedBlocks(t *testing.T) {
	ctx := context.Background()
	for _, opts := range [][]nfc.Option{nil, {nfc.WithMultiBlockWrite(true), nfc.WithFastCommands(true)}} {
		tag, d := bench(t, opts...)
		data := make([]byte, 4*10)
		for i := range data {
			data[i] = byte(i + 1)
		}
		// Blocks FBh..104h straddle the 1-byte block number limit.
		if err := d.WriteBlocks(ctx, 0xFB, data); err != nil {
			t.Fatal(err)
		}
		if got := i2cRead(t, tag, i2cUser, 0xFB*4, len(data)); !bytes.Equal(got, data) {
			t.Fatalf("I2C view % X", got)
		}
		all, err := d.ReadBlocks(ctx, 0, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 8192 || !bytes.Equal(all[0xFB*4:0xFB*4+len(data)], data) {
			t.Fatalf("whole memory read: %d bytes", len(all))
		}
	}
	// Past the end of memory: the tag's own error comes back typed.
	_, d := bench(t)
	_, err := d.ReadBlocks(context.Background(), 2048, 1)
	if !errors.Is(err, &nfc.ISOError{Code: nfc.CodeBlockNA}) {
		t.Fatalf("err = %v, want block not available", err)
	}
}

// TestEmulatedNDEF: the MCU writes its NDEF area over I2C with the shared
// codec; the phone reads it over RF.
func TestEmulatedNDEF(t *testing.T) {
	ctx := context.Background()
	tag, d := bench(t)
	if _, err := d.ReadNDEF(ctx); !errors.Is(err, ndef.ErrBadCC) {
		t.Fatalf("blank tag: %v, want ErrBadCC", err)
	}
	devEUI := []byte{0x00, 0x80, 0xE1, 0x15, 0x00, 0x0A, 0x12, 0x34}
	recs := []nfc.NDEFRecord{
		ndef.URIRecord("https://example.com/app"),
		ndef.AARRecord("com.example.app"),
		ndef.ExternalRecord("tap2join.io:deveui", devEUI),
		ndef.MediaRecord("application/octet-stream", bytes.Repeat([]byte{0xA5}, 400)), // long record, long TLV
	}
	img, err := nfc.EncodeNDEF(recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(img, []byte{0xE2, 0x40, 0x00, 0x01, 0x00, 0x00, 0x03, 0xFF}) {
		t.Fatalf("CC % X", img[:8])
	}
	for off := 0; off < len(img); off += 256 { // at most 256 bytes per I2C write (DS §6.4.2)
		i2cWrite(t, tag, i2cUser, off, img[off:min(off+256, len(img))]...)
	}
	got, err := d.ReadNDEF(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records", len(got))
	}
	for i := range recs {
		if got[i].TNF != recs[i].TNF || !bytes.Equal(got[i].Type, recs[i].Type) || !bytes.Equal(got[i].Payload, recs[i].Payload) {
			t.Errorf("record %d: %v, want %v", i, got[i], recs[i])
		}
	}
	// Initialised state: NDEF TLV with L = 0.
	i2cWrite(t, tag, i2cUser, 8, 0x03, 0x00, 0xFE)
	if got, err := d.ReadNDEF(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty NDEF: %v, %v", got, err)
	}
}

// TestEmulatedMailboxRoundTrip is the provisioning handshake in miniature:
// the phone authorises and enables FTM, writes a message; the MCU, woken by
// GPO RF_PUT_MSG, reads it over I2C and answers; the phone polls and reads
// the answer, which raises RF_GET_MSG for the MCU.
func TestEmulatedMailboxRoundTrip(t *testing.T) {
	ctx := t.Context()
	tag, d := bench(t, nfc.WithMaxMessageChunk(100))
	// MCU at boot: I2C session, GPO1 = GPO_EN | RF_PUT_MSG | RF_GET_MSG.
	i2cWrite(t, tag, i2cSys, 0x0900, append(append(make([]byte, 8), 0x09), make([]byte, 8)...)...) // present password 0
	i2cWrite(t, tag, i2cSys, 0x0000, 0x61)
	gpo := tag.GPO()
	drain, cancel := context.WithCancel(ctx)
	cancel()
	for gpo.WaitForEdge(drain) == nil {
	}

	// Phone: MB_MODE needs the configuration session; MB_EN does not.
	if err := d.SetMailbox(ctx, true); !errors.Is(err, &nfc.ISOError{Code: nfc.CodeUnknown}) {
		t.Fatalf("enable without MB_MODE: %v", err)
	}
	if err := d.WriteConfig(ctx, 0x0D, 0x01); err == nil {
		t.Fatal("WriteConfig without session accepted")
	}
	if err := d.PresentPassword(ctx, 0, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteConfig(ctx, 0x0D, 0x01); err != nil {
		t.Fatal(err)
	}
	if err := d.SetMailbox(ctx, true); err != nil {
		t.Fatal(err)
	}

	request := make([]byte, 256)
	for i := range request {
		request[i] = byte(i)
	}
	reply := bytes.Repeat([]byte{0x5C}, 230)

	mcu := make(chan error, 1)
	// gate holds the MCU back until the phone has checked that the mailbox
	// refuses a second message while the first is unread; without it that
	// check races the MCU's read.
	gate := make(chan struct{})
	go func() {
		mcu <- func() error {
			if err := gpo.WaitForEdge(ctx); err != nil { // RF_PUT_MSG
				return err
			}
			<-gate
			st := make([]byte, 2)
			if err := tag.I2C().Tx(i2cUser, []byte{0x20, 0x06}, st); err != nil {
				return err
			}
			if st[0] != 0x85 || st[1] != 0xFF {
				return errors.New("MCU: MB_CTRL_Dyn/MB_LEN_Dyn not 85h/FFh")
			}
			got := make([]byte, int(st[1])+1)
			if err := tag.I2C().Tx(i2cUser, []byte{0x20, 0x08}, got); err != nil {
				return err
			}
			if !bytes.Equal(got, request) {
				return errors.New("MCU: message corrupted")
			}
			if err := tag.I2C().Tx(i2cUser, append([]byte{0x20, 0x08}, reply...), nil); err != nil {
				return err
			}
			return gpo.WaitForEdge(ctx) // RF_GET_MSG: the phone took the reply
		}()
	}()

	if err := d.WriteMessage(ctx, request); err != nil {
		t.Fatal(err)
	}
	// The RF message is unread: a second Write Message is refused (0Fh).
	if err := d.WriteMessage(ctx, []byte{0}); !errors.Is(err, &nfc.ISOError{Code: nfc.CodeUnknown}) {
		t.Fatalf("write while busy: %v", err)
	}
	close(gate)
	// Phone polls until the host message is there (ant9000/st25dv_mailbox
	// lib/st25dv.dart does the same every 10 ms).
	for {
		st, err := d.MailboxStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.HostPut {
			break
		}
		select {
		case err := <-mcu:
			t.Fatalf("MCU ended early: %v", err)
		default:
		}
	}
	got, err := d.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("reply % X", got)
	}
	if err := <-mcu; err != nil {
		t.Fatal(err)
	}
	st, err := d.MailboxStatus(ctx)
	if err != nil || st.Raw != 0x41 {
		t.Fatalf("final status %v, %v; want 41h", st, err)
	}
}

func TestEmulatedSilence(t *testing.T) {
	tag, d := bench(t)
	if _, _, err := d.Inventory(context.Background()); err != nil {
		t.Fatal(err)
	}
	tag.FieldOff()
	if _, err := d.ReadBlocks(context.Background(), 0, 1); !errors.Is(err, nfc.ErrNoResponse) {
		t.Fatalf("lifted phone: %v", err)
	}
	// A driver addressed to another UID gets silence too.
	tag.FieldOn()
	other := nfc.NewST25DV(nfc.NewDirect(tag), nfc.WithUID([8]byte{0xE0, 0x02, 0x51, 0, 0, 0, 0, 2}))
	if _, err := other.ReadDynConfig(context.Background(), 0x0D); !errors.Is(err, nfc.ErrNoResponse) {
		t.Fatalf("wrong UID: %v", err)
	}
	tr := nfc.NewDirect(tag)
	_ = tr.Close()
	if _, err := tr.Transceive(context.Background(), []byte{0x26, 0x01, 0x00}); err == nil {
		t.Fatal("closed transport still works")
	}
}
