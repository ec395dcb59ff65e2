package st25dv

import "time"

// Air-interface and I2C timing model (DS §7 frame timing, Table 102, Table
// 255; ISO 15693 bit coding as in Proxmark3 armsrc/iso15693.c). All RF
// durations are multiples of 1/fc.
//
//	VCD→tag, 1-of-4 coding (26.48 kbit/s): SOF 75.52 µs, 302.08 µs per byte, EOF 37.76 µs
//	tag→VCD, high data rate, one subcarrier (26.48 kbit/s): SOF 151.04 µs, 302.08 µs per byte, EOF 151.04 µs
//	low data rate: ×4; fast commands (C0h..CEh): ÷2 (DS Appendix A)
//	t1 = 4352/fc ≈ 320.9 µs (request EOF → response SOF, DS Table 102)
//	Wt = t1 + N·4096/fc for writes (DS §7.6.8); N ≈ 16 per EEPROM block reproduces
//	     Wt_Block 5.2 ms / 19.7 ms, N ≈ 15 Wt_Byte 4.9 ms (DS Table 255; the N fit is
//	     ours, UNCONFIRMED)
//
// Frame byte counts include the 2 CRC bytes the Transceive API leaves out.
// With these constants a 256-byte Write Message comes to 80.79 ms and a
// 256-byte Read Message to 81.09 ms, against 80.7 / 81 ms typ in DS Table 255.

const fc = 13.56e6 // carrier frequency, Hz

// cycles converts a number of carrier cycles to a duration.
func cycles(n float64) time.Duration { return time.Duration(n*1e9/fc + 0.5) }

const (
	crcLen        = 2
	byteCycles    = 4096 // one byte, both directions at 26.48 kbit/s
	vcdSOFCycles  = 1024
	vcdEOFCycles  = 512
	tagSOFCycles  = 2048
	tagEOFCycles  = 2048
	t1Cycles      = 4352
	wtPerBlockN   = 16
	wtPerSysByteN = 15
)

// T1 is the nominal tag response delay t1.
var T1 = cycles(t1Cycles)

type respRate int

const (
	rateHigh respRate = iota // Data_rate flag set
	rateLow
)

// requestTime is the duration of a VCD request of n bytes (without CRC),
// SOF to EOF, 1-of-4 coding.
func requestTime(n int) time.Duration {
	return cycles(vcdSOFCycles + float64(n+crcLen)*byteCycles + vcdEOFCycles)
}

// responseTime is the duration of a tag response of n bytes (without CRC).
func responseTime(n int, rate respRate, fast bool) time.Duration {
	c := float64(tagSOFCycles + (n+crcLen)*byteCycles + tagEOFCycles)
	if rate == rateLow {
		c *= 4
	}
	if fast {
		c /= 2
	}
	return cycles(c)
}

// writeWait is Wt for N write periods.
func writeWait(n int) time.Duration { return cycles(t1Cycles + float64(n)*byteCycles) }

// exchangeTime is a whole request/response exchange: request + wait (t1 or
// Wt) + response; silence costs the request only (the reader's timeout is
// the reader's business).
func exchangeTime(reqLen int, resp []byte, silent bool, wait time.Duration, rate respRate, fast bool) time.Duration {
	d := requestTime(reqLen)
	if silent {
		return d
	}
	if wait == 0 {
		wait = T1
	}
	return d + wait + responseTime(len(resp), rate, fast)
}

// i2cTime is the bus time of one I2C transaction: 9 clocks per byte (8 bits
// + ACK) for the device selects and every byte, plus START/STOP (≈1 clock each).
func (t *Tag) i2cTime(w, r int) time.Duration {
	clocks := 9*(1+w) + 2
	if r > 0 {
		clocks += 9*(1+r) + 1 // repeated START + device select (R)
	}
	return time.Duration(float64(clocks) * 1e9 / float64(t.i2cHz))
}

// i2cProgramTime is the EEPROM programming time after STOP: tW for every
// 16-byte row touched by n bytes written at a (DS §6.4.2).
func (t *Tag) i2cProgramTime(a, n int) time.Duration {
	rows := (a+n-1)/16 - a/16 + 1
	return time.Duration(rows) * t.tW
}
