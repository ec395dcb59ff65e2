package stm32wl5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// NVM model.
//
// The STM32WL keeps its context in flash pages (2 KiB, erased to FFh,
// programmed in 64-bit double words — RM0453 §3.3). The twin keeps two slots
// ("A/B") and writes a complete record into the slot that does not hold the
// current one: erase the slot, then program it double word by double word. A
// record carries a sequence number and a CRC-32; at boot the valid slot with
// the highest sequence number wins. A power loss at any step therefore leaves
// either the old record (the new slot is torn: CRC fails) or the new one,
// never a mix (SPEC.md §5 rule 2).
//
// With a file path the two-slot image is also persisted to a file, itself
// replaced atomically (write temp, fsync, rename, fsync dir), so a test
// process killed mid-write cannot leave a half-written file either.

const (
	slotSize   = 256
	recordSize = 201 // bytes covered by the layout below, CRC included
	// recordSize4, recordSize3 and recordSize2 are the sizes of layout-4
	// records (before the RX1 delay), layout-3 ones (before the MAC
	// channel/ADR state) and layout-2 ones (before the LoRaWAN 1.1 session
	// keys); such records are still read at boot.
	recordSize4 = 200
	recordSize3 = 175
	recordSize2 = 143
	dwords      = slotSize / 8
	// SaveSteps is the number of flash steps one NVM write takes: one page
	// erase and one program operation per double word.
	SaveSteps = 1 + dwords
	// commitSteps is the step after which the new record is complete: the
	// double word holding the last CRC byte is programmed (the rest of the
	// slot is padding).
	commitSteps = 1 + (recordSize+7)/8
)

var (
	nvmMagic  = [4]byte{'T', '2', 'J', '5'} // layout 5: the session's RX1 delay added
	nvmMagic4 = [4]byte{'T', '2', 'J', '4'} // layout 4: MAC channel and ADR state added (read only)
	nvmMagic3 = [4]byte{'T', '2', 'J', '3'} // layout 3: LoRaWAN 1.1 session keys added (read only)
	nvmMagic2 = [4]byte{'T', '2', 'J', '2'} // layout 2: AT-shell settings added (read only)
)

// ErrPowerLoss is returned when a fault-injected power loss cuts an NVM write.
// The board is then dead until its power comes back: a new Run (or a new
// MCU on the same NVM file) boots from what the flash holds.
var ErrPowerLoss = errors.New("stm32wl5: power lost during NVM write")

// NVMWrite names what an NVM write stores, so a power cut can be aimed at
// one kind (MCU.CutPowerInNVMWrite).
type NVMWrite string

// The firmware's NVM writes.
const (
	NVMWriteAny       NVMWrite = ""          // whichever comes first
	NVMWriteProvision NVMWrite = "provision" // a PROVISION's key and state (SPEC §5.2)
	NVMWriteDevNonce  NVMWrite = "devnonce"  // the DevNonce, before a JoinRequest goes out
	NVMWriteSession   NVMWrite = "session"   // a JoinAccept's session (JoinNonce, keys, MAC state)
	NVMWriteFCnt      NVMWrite = "fcnt"      // the uplink frame counter, before the frame goes out
	NVMWriteKeyPair   NVMWrite = "keypair"   // the X25519 key pair, made at first boot
	NVMWriteContext   NVMWrite = "context"   // AT+CS (stock context persistence)
)

// NVMWrites lists the kinds a cut can be aimed at.
var NVMWrites = []NVMWrite{NVMWriteProvision, NVMWriteDevNonce, NVMWriteSession, NVMWriteFCnt, NVMWriteKeyPair, NVMWriteContext}

// record is everything the firmware keeps across resets. Layout in a slot
// (little-endian): magic(4) seq(4) state(1) flags(1) JoinEUI(8, MSB first)
// AppKey(16) DevNonce(2) JoinNonce(4) DevAddr(4, MSB first) NwkSKey(16)
// AppSKey(16) FCntUp(4) X25519 private key(32) DevEUI(8, MSB first; zero =
// the chip's unique id) ATAppKey(16) DR(1) settings(1: b0 ADR off, b1 DR set)
// NwkID(1) SNwkSIntKey(16) NwkSEncKey(16) CFList channels 3..7(5×4 Hz)
// ChMask(2) MAC DR(1) TXPower(1) NbTrans(1) RX1 delay(1, s) CRC-32(4),
// padded with FFh.
// settings b2: the MAC channel/ADR state is valid (LoRaMac-node keeps its
// channels, data rate, TX power and NbTrans in the MAC context it restores). flags: b0 key pair, b1 LoRaWAN 1.1 keys, b2 the
// session is a LoRaWAN 1.1 one (JoinAccept with OptNeg=1).
//
// LoRaWAN 1.1 (flags b1): rootKey holds the NwkKey (ST's NWK_KEY, the root
// key of the network side) and atAppKey the AppKey (ST's APP_KEY); nwkSKey
// holds FNwkSIntKey, and sNwkSIntKey/nwkSEncKey the other two network
// session keys. In 1.0.x the latter two are zero.
type record struct {
	seq        uint32
	state      provproto.State
	hasKeyPair bool
	lorawan11  bool // provisioned with LoRaWAN 1.1 keys (NwkKey + AppKey)
	session11  bool // the current session was negotiated as LoRaWAN 1.1 (OptNeg=1)
	joinEUI    [8]byte
	rootKey    [16]byte
	devNonce   uint16 // last DevNonce used (LoRaWAN 1.0.4 §6.2.5: never reused)
	joinNonce  uint32 // last accepted JoinNonce
	devAddr    [4]byte
	nwkSKey    [16]byte
	appSKey    [16]byte
	fCntUp     uint32
	priv       [32]byte

	// Settings the AT shell writes (STM32CubeWL lora_at.c setters).
	devEUI   [8]byte  // AT+DEUI; zero = LORAWAN_DEVICE_EUI all zero → GetUniqueId (sys_app.c)
	atAppKey [16]byte // ST's APP_KEY (AT+APPKEY); rootKey above is the 1.0.x AppKey, the root key, ST's NWK_KEY (LoRaMacCrypto.c)
	dr       byte     // AT+DR (valid if drSet)
	drSet    bool     // AT+DR was used; else Config.DataRate
	adrOff   bool     // AT+ADR=0 (ADR is on by default, Commissioning.h)
	nwkID    byte     // AT+NWKID

	// LoRaWAN 1.1 session keys besides nwkSKey (= FNwkSIntKey) and appSKey.
	sNwkSIntKey [16]byte
	nwkSEncKey  [16]byte

	// MAC state of the session (valid if macSet): the CFList channels
	// 3..7 (0 = none), the enabled-channel mask and what LinkADRReq set.
	macSet        bool
	chans         [5]uint32
	chMask        uint16
	macDR, macTXP byte
	macNbTrans    byte
	// rx1DelayS is the session's RX1 delay in seconds (JoinAccept RxDelay,
	// then RXTimingSetupReq); 0 = the default 1 s. LoRaMac-node keeps
	// ReceiveDelay1 in its NVM context (MacGroup2.MacParams).
	rx1DelayS byte
}

func (r record) marshal() [slotSize]byte {
	var s [slotSize]byte
	for i := range s {
		s[i] = 0xFF
	}
	b := s[:0]
	b = append(b, nvmMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, r.seq)
	b = append(b, byte(r.state), packBits(r.hasKeyPair, r.lorawan11, r.session11))
	b = append(b, r.joinEUI[:]...)
	b = append(b, r.rootKey[:]...)
	b = binary.LittleEndian.AppendUint16(b, r.devNonce)
	b = binary.LittleEndian.AppendUint32(b, r.joinNonce)
	b = append(b, r.devAddr[:]...)
	b = append(b, r.nwkSKey[:]...)
	b = append(b, r.appSKey[:]...)
	b = binary.LittleEndian.AppendUint32(b, r.fCntUp)
	b = append(b, r.priv[:]...)
	b = append(b, r.devEUI[:]...)
	b = append(b, r.atAppKey[:]...)
	b = append(b, r.dr, packBits(r.adrOff, r.drSet, r.macSet), r.nwkID)
	b = append(b, r.sNwkSIntKey[:]...)
	b = append(b, r.nwkSEncKey[:]...)
	for _, c := range r.chans {
		b = binary.LittleEndian.AppendUint32(b, c)
	}
	b = binary.LittleEndian.AppendUint16(b, r.chMask)
	b = append(b, r.macDR, r.macTXP, r.macNbTrans, r.rx1DelayS)
	binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return s
}

// packBits returns a byte with bit i set where bits[i] is true.
func packBits(bits ...bool) byte {
	var v byte
	for i, on := range bits {
		if on {
			v |= 1 << i
		}
	}
	return v
}

func unmarshalRecord(s []byte) (record, bool) {
	size := recordSize
	switch {
	case len(s) >= recordSize && [4]byte(s[0:4]) == nvmMagic:
	case len(s) >= recordSize4 && [4]byte(s[0:4]) == nvmMagic4:
		size = recordSize4
	case len(s) >= recordSize3 && [4]byte(s[0:4]) == nvmMagic3:
		size = recordSize3
	case len(s) >= recordSize2 && [4]byte(s[0:4]) == nvmMagic2:
		size = recordSize2
	default:
		return record{}, false
	}
	if binary.LittleEndian.Uint32(s[size-4:size]) != crc32.ChecksumIEEE(s[:size-4]) {
		return record{}, false
	}
	r := record{
		seq:        binary.LittleEndian.Uint32(s[4:8]),
		state:      provproto.State(s[8]),
		hasKeyPair: s[9]&1 != 0,
		lorawan11:  s[9]&2 != 0,
		session11:  s[9]&4 != 0,
		devNonce:   binary.LittleEndian.Uint16(s[34:36]),
		joinNonce:  binary.LittleEndian.Uint32(s[36:40]),
		fCntUp:     binary.LittleEndian.Uint32(s[76:80]),
		dr:         s[136],
		adrOff:     s[137]&1 != 0,
		drSet:      s[137]&2 != 0,
		nwkID:      s[138],
	}
	copy(r.joinEUI[:], s[10:18])
	copy(r.rootKey[:], s[18:34])
	copy(r.devAddr[:], s[40:44])
	copy(r.nwkSKey[:], s[44:60])
	copy(r.appSKey[:], s[60:76])
	copy(r.priv[:], s[80:112])
	copy(r.devEUI[:], s[112:120])
	copy(r.atAppKey[:], s[120:136])
	if size >= recordSize3 {
		copy(r.sNwkSIntKey[:], s[139:155])
		copy(r.nwkSEncKey[:], s[155:171])
	}
	if size >= recordSize {
		r.rx1DelayS = s[196]
	}
	if size >= recordSize4 {
		r.macSet = s[137]&4 != 0
		for i := range r.chans {
			r.chans[i] = binary.LittleEndian.Uint32(s[171+4*i:])
		}
		r.chMask = binary.LittleEndian.Uint16(s[191:193])
		r.macDR, r.macTXP, r.macNbTrans = s[193], s[194], s[195]
	}
	return r, true
}

// nvm is the two-slot store.
type nvm struct {
	path   string
	img    [2 * slotSize]byte
	active int // slot holding the current record, -1 if none
	// killAt: if > 0, the next save (of kind killOn, or any kind when
	// killOn is NVMWriteAny) loses power after killAt steps (killAt ≥
	// SaveSteps: after the last step, before the caller learns of success).
	// One cut: it is disarmed once it happened.
	killAt int
	killOn NVMWrite
	dead   bool
}

// openNVM loads the image from path ("" = fresh in-memory flash) and returns
// the current record, if any.
func openNVM(path string) (*nvm, record, bool, error) {
	n := &nvm{path: path, active: -1}
	for i := range n.img {
		n.img[i] = 0xFF // erased flash
	}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, record{}, false, fmt.Errorf("stm32wl5: nvm: read %s: %w", path, err)
		default:
			copy(n.img[:], b)
		}
	}
	cur, found := n.rescan()
	return n, cur, found, nil
}

// rescan picks the slot a boot reads, as the firmware does: the valid
// record (CRC) with the newest sequence number. After a power cut that came
// once a new record was complete, that is the new one, though the write
// never returned.
func (n *nvm) rescan() (record, bool) {
	var cur record
	n.active = -1
	for i := range 2 {
		r, ok := unmarshalRecord(n.img[i*slotSize : (i+1)*slotSize])
		if ok && (n.active < 0 || int32(r.seq-cur.seq) > 0) {
			cur, n.active = r, i
		}
	}
	return cur, n.active >= 0
}

// save writes r (with the next sequence number) into the inactive slot and
// returns the record as stored.
func (n *nvm) save(kind NVMWrite, r record) (record, error) {
	if n.dead {
		return record{}, ErrPowerLoss
	}
	target := 0
	if n.active == 0 {
		target = 1
	}
	if n.active >= 0 {
		cur, _ := unmarshalRecord(n.img[n.active*slotSize : (n.active+1)*slotSize])
		r.seq = cur.seq + 1
	} else {
		r.seq = 1
	}
	data := r.marshal()
	slot := n.img[target*slotSize : (target+1)*slotSize]
	// The steps a cut can fall between: the page erase, then each double
	// word programmed (step i > 0 writes double word i-1).
	step := func(i int) {
		if i == 0 {
			for j := range slot {
				slot[j] = 0xFF
			}
			return
		}
		d := i - 1
		copy(slot[d*8:d*8+8], data[d*8:d*8+8])
	}
	const steps = SaveSteps
	killAt := 0
	if n.killOn == NVMWriteAny || n.killOn == kind {
		killAt = n.killAt
	}
	for i := range steps {
		if killAt > 0 && i == killAt {
			return record{}, n.powerLoss()
		}
		step(i)
	}
	if killAt >= steps {
		// Power lost right after the last double word: the record is
		// complete and valid, the caller just never hears about it.
		return record{}, n.powerLoss()
	}
	if err := n.persist(); err != nil {
		// The flash image is written; what failed is the host file. Keep the
		// in-memory view consistent with what the next boot will read.
		return record{}, err
	}
	n.active = target
	return r, nil
}

// current returns the record a boot reads now (what openNVM would return).
func (n *nvm) current() (record, bool) {
	if n.active < 0 {
		return record{}, false
	}
	return unmarshalRecord(n.img[n.active*slotSize : (n.active+1)*slotSize])
}

// erase erases both slots, as AT+RFS erases the context page (STM32CubeWL
// LoRaWAN_AT_Slave lora_at.c AT_restore_factory_settings).
func (n *nvm) erase() error {
	if n.dead {
		return ErrPowerLoss
	}
	for i := range n.img {
		n.img[i] = 0xFF
	}
	n.active = -1
	return n.persist()
}

func (n *nvm) powerLoss() error {
	n.dead, n.killAt, n.killOn = true, 0, NVMWriteAny
	if err := n.persist(); err != nil {
		return errors.Join(ErrPowerLoss, err)
	}
	return ErrPowerLoss
}

func (n *nvm) persist() error {
	if n.path == "" {
		return nil
	}
	dir := filepath.Dir(n.path)
	f, err := os.CreateTemp(dir, filepath.Base(n.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("stm32wl5: nvm: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(n.img[:]); err != nil {
		f.Close()
		return fmt.Errorf("stm32wl5: nvm: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("stm32wl5: nvm: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stm32wl5: nvm: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, n.path); err != nil {
		return fmt.Errorf("stm32wl5: nvm: rename: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}
