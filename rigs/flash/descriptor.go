package flash

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// The tap2join image descriptor: 32 bytes a firmware image carries (a
// `const` in its .rodata, 4-byte aligned, marked used so the linker keeps
// it) to say which MCU it is built for and which version it is, so a bench
// refuses an image for another target before flashing it and the emulated
// board runs the version the image says:
//
//	offset size
//	 0      8   magic "T2J-IMG1"
//	 8     16   target, ASCII, NUL-padded (e.g. "STM32WL55")
//	24      3   version major, minor, patch
//	27      1   flags (0)
//	28      4   CRC-32/IEEE of bytes 0..27, little-endian
//
// In C:
//
//	__attribute__((used, aligned(4))) static const struct {
//	    char magic[8]; char target[16]; uint8_t ver[3]; uint8_t flags; uint32_t crc;
//	} t2j_image = { "T2J-IMG1", "STM32WL55", {1, 3, 1}, 0, 0x… };

// DescriptorMagic opens a descriptor.
const DescriptorMagic = "T2J-IMG1"

// DescriptorSize is a descriptor's length.
const DescriptorSize = 32

// Descriptor is what an image says about itself.
type Descriptor struct {
	Target  string // e.g. STM32WL55
	Version [3]byte
}

// VersionString is major.minor.patch.
func (d Descriptor) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", d.Version[0], d.Version[1], d.Version[2])
}

// Marshal encodes d; the target must be 1–16 printable ASCII characters.
func (d Descriptor) Marshal() ([]byte, error) {
	if d.Target == "" || len(d.Target) > 16 || strings.IndexFunc(d.Target, func(r rune) bool { return r < 0x21 || r > 0x7E }) >= 0 {
		return nil, fmt.Errorf("flash: descriptor target %q: 1–16 printable ASCII characters", d.Target)
	}
	b := make([]byte, DescriptorSize)
	copy(b, DescriptorMagic)
	copy(b[8:24], d.Target)
	copy(b[24:27], d.Version[:])
	binary.LittleEndian.PutUint32(b[28:], crc32.ChecksumIEEE(b[:28]))
	return b, nil
}

// ParseDescriptor decodes one descriptor.
func ParseDescriptor(b []byte) (Descriptor, error) {
	if len(b) < DescriptorSize || string(b[:8]) != DescriptorMagic {
		return Descriptor{}, fmt.Errorf("flash: no %s descriptor", DescriptorMagic)
	}
	if got, want := binary.LittleEndian.Uint32(b[28:32]), crc32.ChecksumIEEE(b[:28]); got != want {
		return Descriptor{}, fmt.Errorf("flash: descriptor CRC %08X, computed %08X", got, want)
	}
	if b[27] != 0 {
		return Descriptor{}, fmt.Errorf("flash: descriptor flags %02X: this tool knows none", b[27])
	}
	target := string(bytes.TrimRight(b[8:24], "\x00"))
	if target == "" || strings.ContainsRune(target, 0) {
		return Descriptor{}, fmt.Errorf("flash: descriptor target %q", b[8:24])
	}
	var d Descriptor
	d.Target = target
	copy(d.Version[:], b[24:27])
	return d, nil
}

// FindDescriptor finds the descriptor in an image (.bin or .elf): the
// magic at a 4-byte aligned offset (in an ELF, at one of the file, which
// holds for sections aligned to 4). ok is false when there is none; two
// different ones are an error.
func FindDescriptor(image []byte) (d Descriptor, ok bool, err error) {
	magic := []byte(DescriptorMagic)
	for off := 0; off+DescriptorSize <= len(image); {
		i := bytes.Index(image[off:], magic)
		if i < 0 {
			break
		}
		at := off + i
		off = at + 1
		if at%4 != 0 || at+DescriptorSize > len(image) {
			continue
		}
		found, err := ParseDescriptor(image[at : at+DescriptorSize])
		if err != nil {
			return Descriptor{}, false, fmt.Errorf("descriptor at 0x%X: %w", at, err)
		}
		if ok && found != d {
			return Descriptor{}, false, fmt.Errorf("two descriptors (%s %s and %s %s)", d.Target, d.VersionString(), found.Target, found.VersionString())
		}
		d, ok = found, true
	}
	return d, ok, nil
}

// CheckTarget refuses an image whose descriptor names another MCU than
// target (compared case-insensitively; an image without a descriptor passes:
// nothing says it is wrong).
func (img Image) CheckTarget(target string) error {
	if img.Descriptor == nil || strings.EqualFold(img.Descriptor.Target, target) {
		return nil
	}
	return fmt.Errorf("%w: %s is built for %s, the board is a %s", ErrImage, img.Path, img.Descriptor.Target, target)
}
