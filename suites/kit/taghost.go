package kit

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tap2join/tap2join/rigs"
)

// The MCU's side of an ST25DV64KC, for a spec that plays the firmware over
// rigs.TagHost (a board with rig file `firmware: none`): the I2C accesses
// and configuration sequences the STM32WL5 firmware runs (DS13519 §6; ST
// x-cube-nfc7 st25dvxxkc driver). Each one fails the spec on a NACK.

// I2C device selects of the ST25DV (DS13519 §6.2, Table 88, E0 = 1).
const (
	TagUser   = 0x53 // user memory, dynamic registers, mailbox
	TagSystem = 0x57 // system configuration
)

// Registers and areas the MCU uses; a 16-bit address, MSB first.
const (
	RegFTM        = 0x000D // TagSystem: static FTM, b0 MB_MODE, b3..1 MB_WDG (DS Table 16)
	RegI2CPwd     = 0x0900 // TagSystem: I2C password present/write (DS §6.6)
	RegMBCtrl     = 0x2006 // TagUser: MB_CTRL_Dyn, b0 MB_EN (DS §5.1.2)
	RegMBLen      = 0x2007 // TagUser: MB_LEN_Dyn, message length − 1
	MailboxBuffer = 0x2008 // TagUser: the 256-byte mailbox
	EEPROMRow     = 16     // one EEPROM programming cycle writes up to one row (DS §6.4.2)
)

// TagI2CWrite writes data from addr on device dev in one transaction.
func TagI2CWrite(h rigs.TagHost, dev uint16, addr int, data ...byte) {
	GinkgoHelper()
	Expect(h.TagI2C(dev, append([]byte{byte(addr >> 8), byte(addr)}, data...), nil)).
		To(Succeed(), "I2C write %02Xh:%04Xh", dev, addr)
}

// TagI2CRead reads n bytes from addr on device dev in one transaction.
func TagI2CRead(h rigs.TagHost, dev uint16, addr, n int) []byte {
	GinkgoHelper()
	r := make([]byte, n)
	Expect(h.TagI2C(dev, []byte{byte(addr >> 8), byte(addr)}, r)).
		To(Succeed(), "I2C read %02Xh:%04Xh", dev, addr)
	return r
}

// TagAckPoll waits for the end of an EEPROM programming cycle: the chip
// NACKs its device select while it programs (DS §6.4.3, Figure 34).
func TagAckPoll(h rigs.TagHost, dev uint16) {
	GinkgoHelper()
	Eventually(func() error { return h.TagI2C(dev, nil, nil) }).
		WithTimeout(time.Second).WithPolling(100*time.Microsecond).Should(Succeed(), "ACK polling %02Xh", dev)
}

// TagPresentI2CPassword presents pwd (DS §6.6.1: 0900h, the password, 09h,
// the password again): the right one opens the I2C security session, a
// wrong one closes it.
func TagPresentI2CPassword(h rigs.TagHost, pwd [8]byte) {
	GinkgoHelper()
	TagI2CWrite(h, TagSystem, RegI2CPwd, slices.Concat(pwd[:], []byte{0x09}, pwd[:])...)
}

// TagSetFTM writes the static FTM register as the firmware does once (it is
// EEPROM, it persists): open the I2C security session with the factory
// password (all zero), write 000Dh alone, ACK-poll until programmed, read it
// back, close the session with a wrong password.
func TagSetFTM(h rigs.TagHost, v byte) {
	GinkgoHelper()
	TagPresentI2CPassword(h, [8]byte{})
	TagI2CWrite(h, TagSystem, RegFTM, v)
	TagAckPoll(h, TagSystem)
	Expect(TagI2CRead(h, TagSystem, RegFTM, 1)).To(Equal([]byte{v}), "FTM written")
	TagPresentI2CPassword(h, [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
}
