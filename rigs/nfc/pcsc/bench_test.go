package pcsc_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/emulators/vpcd"
	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs/nfc"
	"github.com/tap2join/tap2join/rigs/nfc/pcsc"
)

// BenchmarkAPDURoundTrip times one APDU through the real stack: ebfe/scard →
// pcscd → vpcd → TCP → emulators/vpcd → ST25DV twin and back. It reports the
// median per APDU (ms/APDU-median; target ≤ 0.2 ms). "quickack" is the
// emulator as shipped; "no-quickack" shows the Nagle/delayed-ACK trap of
// vpcd 0.8 (~48 ms; length and body sent apart, fixed in vsmartcard PR #252)
// — run it with -benchtime=20x.
//
//	go test -run '^$' -bench APDURoundTrip -benchtime 2000x ./rigs/nfc/pcsc/
func BenchmarkAPDURoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name string
		opt  vpcd.Option
	}{{"quickack", vpcd.WithQuickAck(true)}, {"no-quickack", vpcd.WithQuickAck(false)}} {
		b.Run(tc.name, func(b *testing.B) {
			d := pcscd.Require(b)
			tag := st25dv.New(st25dv.Config{})
			tag.SetVCC(true)
			card := vpcd.NewCard(tag, tc.opt)
			tr, err := pcsc.Open(pcsc.Config{Reader: d.ReaderName(0)})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			// Wait for pcscd's reader states, not for events seen since
			// some moment: with a pcscd started by hand (kept across the
			// sub-benchmarks) the previous card may still be reported
			// present here, and a Watch started now would report it as the
			// tap — the Connect below then failed with "No smart card
			// inserted". The reader must be empty before the card goes in
			// (pcsc.WaitPresent says why), present after.
			ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
			defer cancel()
			if err := tr.WaitEmpty(ctx); err != nil {
				b.Fatal(err)
			}
			if err := card.Insert(ctx, d.VPCDAddr(0)); err != nil {
				b.Fatal(err)
			}
			defer card.Remove()
			if _, err := tr.WaitPresent(ctx); err != nil {
				b.Fatal(err)
			}

			sc, err := scard.EstablishContext()
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Release()
			c, err := sc.Connect(d.ReaderName(0), scard.ShareShared, scard.ProtocolAny)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Disconnect(scard.LeaveCard)
			getUID := []byte{0xFF, 0xCA, 0x00, 0x00, 0x00}
			per := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				rsp, err := c.Transmit(getUID)
				per = append(per, time.Since(t0))
				if err != nil || len(rsp) != 10 {
					b.Fatalf("% X, %v", rsp, err)
				}
			}
			b.StopTimer()
			slices.Sort(per)
			b.ReportMetric(float64(per[len(per)/2])/1e6, "ms/APDU-median")
			b.ReportMetric(float64(per[len(per)*99/100])/1e6, "ms/APDU-p99")
		})
	}
}

// BenchmarkST25DVOverPCSC times a driver call (Read Single Block through the
// transparent exchange: one FF C2 APDU + a PC/SC transaction) end to end.
func BenchmarkST25DVOverPCSC(b *testing.B) {
	bb := setup(b, vpcd.ProfileTransparent, pcsc.Transparent)
	d := nfc.NewST25DV(bb.tr)
	ctx := context.Background()
	if _, err := d.ReadBlocks(ctx, 0, 1); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.ReadBlocks(ctx, 0, 1); err != nil {
			b.Fatal(err)
		}
	}
}
