package stm32wl5

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

func sampleRecord(fill byte) record {
	r := record{state: provproto.StateProvisioned, devNonce: uint16(fill), joinNonce: uint32(fill) * 3, fCntUp: uint32(fill) * 7, hasKeyPair: true}
	for i := range r.rootKey {
		r.rootKey[i] = fill
		r.nwkSKey[i] = fill ^ 0x11
		r.appSKey[i] = fill ^ 0x22
	}
	for i := range r.joinEUI {
		r.joinEUI[i] = fill + byte(i)
	}
	for i := range r.priv {
		r.priv[i] = fill ^ byte(i)
	}
	r.devAddr = [4]byte{fill, 1, 2, 3}
	return r
}

// same compares the payload of two records (not the sequence number).
func same(a, b record) bool {
	a.seq, b.seq = 0, 0
	return a == b
}

func TestNVMRoundTripAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nvm.bin")
	n, _, found, err := openNVM(path)
	if err != nil || found {
		t.Fatalf("fresh NVM: found=%v err=%v", found, err)
	}
	for i := byte(1); i <= 5; i++ { // alternate slots several times
		if _, err := n.save(NVMWriteAny, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	_, got, found, err := openNVM(path)
	if err != nil || !found || !same(got, sampleRecord(5)) || got.seq != 5 {
		t.Fatalf("reopened: found=%v seq=%d err=%v", found, got.seq, err)
	}
	if m := sampleRecord(1).marshal(); len(m) != slotSize {
		t.Fatal("slot size")
	}
}

// TestNVMPowerLossEveryStep cuts the power at every step of a save and
// proves that after the "reboot" either the old or the new record is read,
// entirely, never a mix — and that the board can keep writing afterwards.
func TestNVMPowerLossEveryStep(t *testing.T) {
	oldR, newR := sampleRecord(0xA1), sampleRecord(0x5C)
	for k := 1; k <= SaveSteps; k++ {
		for _, history := range []int{1, 2} { // new record goes to slot B, or to slot A
			path := filepath.Join(t.TempDir(), "nvm.bin")
			n, _, _, err := openNVM(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < history; i++ {
				if _, err := n.save(NVMWriteAny, oldR); err != nil {
					t.Fatal(err)
				}
			}
			n.killAt = k
			if _, err := n.save(NVMWriteAny, newR); !errors.Is(err, ErrPowerLoss) {
				t.Fatalf("k=%d: save returned %v, want ErrPowerLoss", k, err)
			}
			if _, err := n.save(NVMWriteAny, newR); !errors.Is(err, ErrPowerLoss) {
				t.Fatalf("k=%d: dead NVM accepted a write", k)
			}
			n2, got, found, err := openNVM(path)
			if err != nil || !found {
				t.Fatalf("k=%d: reopen found=%v err=%v", k, found, err)
			}
			switch {
			case same(got, oldR):
				if k >= commitSteps {
					t.Errorf("k=%d: complete write lost", k)
				}
			case same(got, newR):
				if k < commitSteps {
					t.Errorf("k=%d: torn write read back as valid", k)
				}
			default:
				t.Fatalf("k=%d: mixed record %+v", k, got)
			}
			// Life goes on after the reboot.
			third := sampleRecord(0x33)
			if _, err := n2.save(NVMWriteAny, third); err != nil {
				t.Fatalf("k=%d: save after reboot: %v", k, err)
			}
			if _, got, _, _ := openNVM(path); !same(got, third) {
				t.Fatalf("k=%d: third record not read back", k)
			}
		}
	}
}

func TestNVMCorruptSlotFallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nvm.bin")
	n, _, _, _ := openNVM(path)
	n.save(NVMWriteAny, sampleRecord(1))
	n.save(NVMWriteAny, sampleRecord(2)) // slot B, seq 2
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[slotSize+20] ^= 0xFF // bit rot in the newer slot
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, got, found, _ := openNVM(path)
	if !found || !same(got, sampleRecord(1)) {
		t.Errorf("fallback: found=%v rec=%+v", found, got)
	}
}

// The session's RX1 delay survives a reset (layout 5), as LoRaMac-node's
// ReceiveDelay1 does in its NVM context; a layout-4 record (no RX1 delay)
// still reads, with the default 1 s.
func TestRX1DelaySurvivesReset(t *testing.T) {
	r := record{state: provproto.StateJoined, macSet: true, chMask: 0b111, macNbTrans: 1, rx1DelayS: 5}
	s := r.marshal()
	back, ok := unmarshalRecord(s[:])
	if !ok || back.rx1DelayS != 5 {
		t.Fatalf("layout 5: ok %v, rx1DelayS %d", ok, back.rx1DelayS)
	}
	ram := defaultRAMSettings(Config{}, back)
	if ram.rx1Delay != 5*time.Second || ram.rx2Delay != 6*time.Second {
		t.Errorf("restored RX delays %v / %v, want 5 s / 6 s", ram.rx1Delay, ram.rx2Delay)
	}

	// The same record as layout 4: magic T2J4, 200 bytes, CRC over 196.
	old := s
	copy(old[0:4], nvmMagic4[:])
	crc := crc32.ChecksumIEEE(old[:recordSize4-4])
	binary.LittleEndian.PutUint32(old[recordSize4-4:], crc)
	back, ok = unmarshalRecord(old[:])
	if !ok || back.rx1DelayS != 0 || !back.macSet {
		t.Fatalf("layout 4: ok %v, rx1DelayS %d, macSet %v", ok, back.rx1DelayS, back.macSet)
	}
	if ram := defaultRAMSettings(Config{}, back); ram.rx1Delay != receiveDelay1 {
		t.Errorf("layout 4 restored RX1 %v, want the default %v", ram.rx1Delay, receiveDelay1)
	}
}

// A cut aimed at one kind of write lets the others through, hits the first
// of its kind, and happens once: power back, the same kind writes again.
func TestNVMCutAimedAtOneKind(t *testing.T) {
	n, _, _, err := openNVM("")
	if err != nil {
		t.Fatal(err)
	}
	n.killAt, n.killOn = 3, NVMWriteFCnt
	if _, err := n.save(NVMWriteDevNonce, sampleRecord(1)); err != nil {
		t.Fatalf("a DevNonce write with the cut aimed at FCnt: %v", err)
	}
	if _, err := n.save(NVMWriteFCnt, sampleRecord(2)); !errors.Is(err, ErrPowerLoss) {
		t.Fatalf("the FCnt write: %v, want ErrPowerLoss", err)
	}
	if got, _ := n.current(); !same(got, sampleRecord(1)) {
		t.Fatal("a cut after 3 of the FCnt write's steps replaced the record")
	}
	n.dead = false // power back
	if _, err := n.save(NVMWriteFCnt, sampleRecord(3)); err != nil {
		t.Fatalf("the next FCnt write after the one cut: %v", err)
	}
}
