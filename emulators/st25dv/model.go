package st25dv

import "time"

// The timing model of airtime.go as figures a suite can compare measured wall
// time with (DS §7 frame timing, Table 102, Table 255). Request and response
// lengths are the frame bytes without CRC, as the Transceive API carries
// them; the CRC, SOF and EOF are added here. All figures are for the tag
// answering at the high data rate with one subcarrier and the reader sending
// 1-of-4, the conditions of DS Table 255 and of every NFC Forum reader.

// uidBytes is what Address_flag adds to a request (the UID, DS §7.2).
func uidBytes(addressed bool) int {
	if addressed {
		return 8
	}
	return 0
}

// ExchangeTime is the modelled duration of one non-write RF exchange, from
// the request's SOF to the response's EOF: T_req + t1 + T_resp (DS Table 102).
// reqLen and respLen exclude the CRC; highRate selects the tag's response
// data rate (26.48 kbit/s, else 6.62 kbit/s); fast halves the response time
// (ST fast commands, DS Appendix A).
func ExchangeTime(reqLen, respLen int, highRate, fast bool) time.Duration {
	rate := rateLow
	if highRate {
		rate = rateHigh
	}
	return requestTime(reqLen) + T1 + responseTime(respLen, rate, fast)
}

// MailboxWriteTime is the modelled duration of a Write Message (AAh) carrying
// n message bytes: flags, AAh, 02h, [UID], MSGLength, n bytes; the answer is
// the flags byte after t1, no programming time (DS §7.6.31). 256 bytes non
// addressed: 80.79 ms (DS Table 255: 80.7 ms typ).
func MailboxWriteTime(n int, addressed bool) time.Duration {
	return ExchangeTime(4+uidBytes(addressed)+n, 1, true, false)
}

// MailboxReadTime is the modelled duration of a Read Message (ACh) returning
// n bytes: flags, ACh, 02h, [UID], MBpointer, NbBytes; the answer is the
// flags byte and n bytes (DS §7.6.33). 256 bytes non addressed: 81.09 ms (DS
// Table 255: 81 ms typ).
func MailboxReadTime(n int, addressed bool) time.Duration {
	return ExchangeTime(5+uidBytes(addressed), 1+n, true, false)
}

// MailboxLengthTime is the modelled duration of a Read Message Length (ABh).
func MailboxLengthTime(addressed bool) time.Duration {
	return ExchangeTime(3+uidBytes(addressed), 2, true, false)
}

// DynConfigReadTime is the modelled duration of a Read Dynamic Configuration
// (ADh), the phone's MB_CTRL_Dyn poll.
func DynConfigReadTime(addressed bool) time.Duration {
	return ExchangeTime(4+uidBytes(addressed), 2, true, false)
}

// I2CMailboxReadTime is the modelled bus time of the MCU reading an n-byte
// message at 2008h in one transaction at hz (SCL): device select, two
// address bytes, repeated START, device select, n bytes (9 clocks per byte,
// our arithmetic: 256 bytes ≈ 5.8 ms at 400 kHz, 2.3 ms at 1 MHz; ST's
// estimate in the ST community thread "Data Rate of st25dv?" is ~3 ms at
// 1 MHz). hz ≤ 0 means 400 kHz,
// the twin's default.
func I2CMailboxReadTime(n, hz int) time.Duration {
	if hz <= 0 {
		hz = 400_000
	}
	return (&Tag{i2cHz: hz}).i2cTime(2, n)
}
