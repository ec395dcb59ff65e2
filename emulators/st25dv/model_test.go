package st25dv_test

import (
	"testing"
	"time"

	"github.com/tap2join/tap2join/emulators/st25dv"
)

// The exported model is what the tag accounts for the same exchanges.
func TestModelMatchesAccounting(t *testing.T) {
	tag := newTag(t, st25dv.Config{})
	enableMailbox(t, tag, 0)
	for _, n := range []int{1, 17, 256} {
		msg := make([]byte, n)
		d, resp := modelled(t, tag, append([]byte{0x02, 0xAA, 0x02, byte(n - 1)}, msg...))
		if fmtHex(resp) != "00" || d != st25dv.MailboxWriteTime(n, false) {
			t.Errorf("write %d B: accounted %v, model %v (%s)", n, d, st25dv.MailboxWriteTime(n, false), fmtHex(resp))
		}
		i2cR(t, tag, devUser, 0x2008, n)
		mustW(t, tag, devUser, 0x2008, msg...)
		if d, _ := modelled(t, tag, hx("02 AB 02")); d != st25dv.MailboxLengthTime(false) {
			t.Errorf("length: accounted %v, model %v", d, st25dv.MailboxLengthTime(false))
		}
		if d, _ := modelled(t, tag, hx("02 AC 02 00 00")); d != st25dv.MailboxReadTime(n, false) {
			t.Errorf("read %d B: accounted %v, model %v", n, d, st25dv.MailboxReadTime(n, false))
		}
	}
	if d, _ := modelled(t, tag, hx("02 AD 02 0D")); d != st25dv.DynConfigReadTime(false) {
		t.Errorf("dyn config: accounted %v, model %v", d, st25dv.DynConfigReadTime(false))
	}
	if got := st25dv.I2CMailboxReadTime(256, 1_000_000); got < 2300*time.Microsecond || got > 2400*time.Microsecond {
		t.Errorf("I2C 256 B at 1 MHz: %v, want ≈ 2.35 ms (I2C at 9 clocks per byte)", got)
	}
}
