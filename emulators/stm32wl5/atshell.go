package stm32wl5

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tap2join/tap2join/emulators/radio"
	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// The AT command interface of ST's LoRaWAN_AT_Slave (STM32CubeWL v1.3.1),
// as implemented in that release's Projects/NUCLEO-WL55JC/Applications/LoRaWAN/
// LoRaWAN_AT_Slave (LoRaWAN/App/lora_command.c, lora_at.c, lora_at.h; ST's
// AN5481 "LoRaWAN AT commands for STM32CubeWL" was not retrievable, so the
// source is the authority here).
//
// Line discipline (lora_command.c CMD_Process): no echo; a command runs
// when CR or LF arrives, empty lines are ignored, backspace deletes, a line
// reaching 539 characters prints AT_TEST_PARAM_OVERFLOW and is discarded.
// Input that arrives while the MCU boots (after ATZ/AT+RFS, before the
// banner's last line) is lost, as the UART is not running yet.
//
// Parsing (lora_command.c parse_cmd): the line must start with "AT" (else AT_ERROR);
// "AT" → OK; "AT?" → the syntax reminder and every help line, OK; then the
// command table is searched by prefix, in order, case-sensitively, and the
// rest selects the operation: "" run, "=?" get, "=<v>" set, "?" help. An
// operation the command does not have, or anything else, is AT_ERROR. Every
// command ends with exactly one status printed as "\r\n<TOKEN>\r\n", value
// lines ("…\r\n") come first; ATZ and AT+RFS print no status (the MCU resets).
//
// What is modelled and what is not:
//   - Identity, keys, join (OTAA one attempt per AT+JOIN=1, ABP), send
//     (unconfirmed/confirmed, +EVT:SEND_CONFIRMED), ADR flag, DR 0–5, TX power
//     0–7 (recorded only), class A/C (C recorded; no continuous RX), RX1/RX2
//     and JoinAccept delays, RX2 frequency/DR, duty-cycle flag, verbose level,
//     battery (Config.BatteryMV), local time (unsynchronised: time since
//     boot), AT+LINKC (LinkCheckReq on the next uplink; maccommand.go).
//   - Only EU868 is compiled in (ST's default also has US915): AT+BAND=8
//     answers AT_PARAM_ERROR like a region that is not compiled in.
//   - Not modelled (answer AT_ERROR, as unknown commands do): Class
//     B and AT+PGSLOT, the RF test commands (AT+TTONE … AT+TOFF), AT+CERTIF.
//   - There is no AT+JOINEUI in ST's set (the JoinEUI is AT+APPEUI, lora_at.h).
//   - Key reads (AT+APPKEY=?, AT+NWKKEY=?, AT+APPSKEY=?, AT+NWKSKEY=?) print
//     the key only with Config.KeyReadBack (ST's KEY_EXTRACTABLE 1, the
//     default build). Otherwise they answer AT_ERROR: lora_at.c AT_AppKey_get
//     returns AT_ERROR when LmHandlerGetKey fails, which it does in a
//     KEY_EXTRACTABLE 0 build (soft-se.c only extracts keys when
//     KEY_EXTRACTABLE is 1 — that last step is read from the middleware's
//     structure and is UNCONFIRMED on hardware).
//   - Setters of DevEUI, JoinEUI, keys, DevAddr and region are refused with
//     AT_ERROR while joined (LmHandler.c LmHandlerSetKey, LmHandlerSetDevEUI/
//     AppEUI, LmHandlerSetActiveRegion refuse while joined; AT+BAND answers
//     AT_PARAM_ERROR), and with AT_BUSY_ERROR while the MAC is joining or
//     sending (the twin's choice: LmHandler's busy status).
//   - Settings written by the AT shell live in RAM; AT+CS writes them (and,
//     with StockContextPersistence, the MAC counters) to NVM. The tap2join
//     firmware also writes the whole context whenever it stores a DevNonce or
//     frame counter, so settings become persistent at the next join/uplink.
//
// tap2join's own events (not in ST's set, same "+EVT:" framing):
//
//	+EVT:NFC_PROVISIONED KCV=XXXXXX   a key arrived over NFC (key check value only)
//	+EVT:NFC_REJECTED <STATUS>        a PROVISION was refused (SPEC.md status name)

// atStatus is a final status of lora_at.h ATEerror_t.
type atStatus int

const (
	atOK atStatus = iota
	atError
	atParamError
	atBusyError
	atParamOverflow
	atNoNetJoined
	atRXError
	atNoClassB
	atDutyCycleRestricted
	atCryptoError
	atNoStatus // ATZ, AT+RFS: nothing is printed
)

// atTokens are the printed strings (lora_command.c ATError_description,
// lora_at.h enum). Note AT_NO_NET_JOINED prints AT_NO_NETWORK_JOINED.
var atTokens = map[atStatus]string{
	atOK:                  "OK",
	atError:               "AT_ERROR",
	atParamError:          "AT_PARAM_ERROR",
	atBusyError:           "AT_BUSY_ERROR",
	atParamOverflow:       "AT_TEST_PARAM_OVERFLOW",
	atNoNetJoined:         "AT_NO_NETWORK_JOINED",
	atRXError:             "AT_RX_ERROR",
	atNoClassB:            "AT_NO_CLASS_B_ENABLE",
	atDutyCycleRestricted: "AT_DUTYCYCLE_RESTRICTED",
	atCryptoError:         "AT_CRYPTO_ERROR",
}

// cmdSize is lora_command.c CMD_SIZE: a line of cmdSize-1 characters overflows.
const cmdSize = 540

// maxAppPayload is LORAWAN_APP_DATA_BUFFER_MAX_SIZE (lora_at.c).
const maxAppPayload = 242

// Version strings of the boot banner and AT+VER=? (lora_app.c LoRaWAN_Init,
// app_version.h, lorawan_version.h, subghz_phy_version.h; each part
// printed with %X). The MW/radio/spec values are those of CubeWL v1.3.1
// (derived from the version macros, UNCONFIRMED on hardware).
const (
	mwLoRaWANVersion = "V2.6.1"
	mwRadioVersion   = "V1.3.1"
	l2SpecVersion    = "V1.0.4"
	rpSpecVersion    = "V2-1.0.3"
)

// ramSettings are the MAC/app settings that live in RAM and are reset to the
// firmware defaults by every boot (Commissioning.h, lora_app.h, EU868
// defaults of RP002-1.0.3 as in brocaar/lorawan band GetDefaults and
// ChirpStack v4 lrwn/src/region/eu868.rs).
type ramSettings struct {
	vl                 int // AT+VL, VLEVEL_M by default (sys_conf.h)
	dr                 int
	txPower            int
	dcs                bool // AT+DCS, on by default in EU868
	classC             bool
	jn1Delay, jn2Delay time.Duration
	rx1Delay, rx2Delay time.Duration
	rx2DR              int
	rx2Freq            uint32
	rx1DROffset        int // RX1 DR = max(uplink DR − offset, 0) (RP002 EU868); JoinAccept / RXParamSetupReq
	bootedAt           time.Time
	// channels are the defined uplink channels (Hz; index = channel number):
	// the three EU868 defaults, plus the JoinAccept's CFList. chMask enables
	// them (LinkADRReq), nbRep is NbTrans (recorded; repetitions are not
	// sent by this twin).
	channels []uint32
	chMask   uint16
	nbRep    int
}

func defaultRAMSettings(cfg Config, r record) ramSettings {
	dr := cfg.DataRate
	if r.drSet {
		dr = int(r.dr)
	}
	ram := ramSettings{vl: 2, dr: dr, dcs: true,
		jn1Delay: joinAcceptDelay1, jn2Delay: joinAcceptDelay2, rx1Delay: receiveDelay1, rx2Delay: receiveDelay2,
		rx2DR: 0, rx2Freq: rx2Frequency, bootedAt: time.Now(),
		channels: append([]uint32(nil), eu868Channels[:]...), chMask: 0b111, nbRep: 1}
	// A restored session brings its MAC state back: the CFList channels and
	// what LinkADRReq last set (LoRaMac-node restores them with the context).
	if r.state == provproto.StateJoined && r.macSet {
		ram.channels = append(ram.channels, r.chans[:]...)
		for len(ram.channels) > len(eu868Channels) && ram.channels[len(ram.channels)-1] == 0 {
			ram.channels = ram.channels[:len(ram.channels)-1]
		}
		ram.chMask = r.chMask
		ram.dr, ram.txPower, ram.nbRep = int(r.macDR), int(r.macTXP), max(int(r.macNbTrans), 1)
		if r.rx1DelayS > 0 {
			d := time.Duration(r.rx1DelayS) * time.Second
			ram.rx1Delay, ram.rx2Delay = d, d+time.Second
		}
	}
	return ram
}

// console is the firmware's UART TX side: lines go to the serial port's
// writer. Like a UART whose DMA buffer is full, it drops output rather than
// stall the firmware.
type console struct {
	out     chan []byte
	onReset func() // the serial port's reaction to an MCU reset
}

func newConsole() *console { return &console{out: make(chan []byte, 1024)} }

func (c *console) write(s string) {
	select {
	case c.out <- []byte(s):
	default:
	}
}

func (c *console) reset() {
	if c.onReset != nil {
		c.onReset()
	}
}

func (b *MCU) atPrint(s string) {
	if b.con != nil {
		b.con.write(s)
	}
}

// atValue prints a getter's value line.
func (b *MCU) atValue(format string, a ...any) { b.atPrint(fmt.Sprintf(format, a...) + "\r\n") }

// atEvent prints an asynchronous "+EVT:" line (lora_at.c AT_event_*).
func (b *MCU) atEvent(body string) { b.atPrint("+EVT:" + body + "\r\n") }

// trace prints a middleware trace line at verbose level M or higher
// (APP_LOG at VLEVEL_M, Core/Inc/sys_conf.h; hosts must ignore such lines). The
// exact text of ST's traces is paraphrased.
func (b *MCU) trace(line string) {
	b.mu.Lock()
	vl := b.ram.vl
	b.mu.Unlock()
	if vl >= 2 {
		b.atPrint(line + "\r\n")
	}
}

func (b *MCU) atStatusLine(st atStatus) {
	if st == atNoStatus {
		return
	}
	tok, ok := atTokens[st]
	if !ok {
		tok = "error unknown"
	}
	b.atPrint("\r\n" + tok + "\r\n")
}

func (b *MCU) versionLines() []string {
	fw := b.cfg.Firmware
	return []string{
		fmt.Sprintf("APPLICATION_VERSION: V%X.%X.%X", fw[0], fw[1], fw[2]),
		"MW_LORAWAN_VERSION:  " + mwLoRaWANVersion,
		"MW_RADIO_VERSION:    " + mwRadioVersion,
		"L2_SPEC_VERSION:     " + l2SpecVersion,
		"RP_SPEC_VERSION:     " + rpSpecVersion,
	}
}

// printBanner prints the start of the boot banner (lora_app.c LoRaWAN_Init,
// LmHandler.c, soft-se.c SecureElementPrintKeys): versions,
// NVM DATA RESTORED, the secure element's dump. Keys are dumped only by a
// KEY_EXTRACTABLE build (KeyReadBack); the identifiers always (whether ST
// prints them without KEY_EXTRACTABLE is UNCONFIRMED).
func (b *MCU) printBanner() {
	if b.con == nil {
		return
	}
	var out []string
	out = append(out, b.versionLines()...)
	b.mu.Lock()
	rec, restored, devEUI := b.rec, b.restored, b.devEUI
	b.mu.Unlock()
	if restored {
		out = append(out, "NVM DATA RESTORED")
	}
	if b.cfg.KeyReadBack {
		out = append(out,
			"###### AppKey:      "+colonHex(rec.atAppKey[:]),
			"###### NwkKey:      "+colonHex(rec.rootKey[:]),
			"###### AppSKey:     "+colonHex(rec.appSKey[:]),
			"###### NwkSKey:     "+colonHex(rec.nwkSKey[:]))
	}
	out = append(out,
		"###### DevEUI:      "+colonHex(devEUI[:]),
		"###### AppEUI:      "+colonHex(rec.joinEUI[:]),
		"###### DevAddr:     "+colonHex(rec.devAddr[:]))
	b.atPrint(strings.Join(out, "\r\n") + "\r\n")
}

// printReady ends the banner: the UART now takes commands.
func (b *MCU) printReady() {
	b.atPrint("ATtention command interface\r\nAT? to list all available functions\r\n")
}

func colonHex(p []byte) string {
	parts := make([]string, len(p))
	for i, c := range p {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// parseColonHex parses n colon-separated bytes of 1–2 hex digits each, as
// lora_at.c's sscanf("%hhx:%hhx:…") does.
func parseColonHex(s string, n int) ([]byte, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != n {
		return nil, false
	}
	out := make([]byte, n)
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return nil, false
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, false
		}
		out[i] = byte(v)
	}
	return out, true
}

// atLine is the command line being received.
type atLine struct{ buf []byte }

// atInput feeds received UART bytes to the shell (serial reader goroutine).
func (b *MCU) atInput(p []byte) {
	for _, c := range p {
		b.mu.Lock()
		up := b.booted
		b.mu.Unlock()
		if !up {
			b.at.buf = b.at.buf[:0]
			continue
		}
		switch c {
		case '\r', '\n':
			if len(b.at.buf) == 0 {
				continue
			}
			line := string(b.at.buf)
			b.at.buf = b.at.buf[:0]
			b.atStatusLine(b.atExec(line))
		case '\b':
			if n := len(b.at.buf); n > 0 {
				b.at.buf = b.at.buf[:n-1]
			}
		default:
			if len(b.at.buf) >= cmdSize-1 {
				b.at.buf = b.at.buf[:0]
				b.atStatusLine(atParamOverflow)
				continue
			}
			b.at.buf = append(b.at.buf, c)
		}
	}
}

// atCommand is one entry of the command table (lora_command.c Commands[]).
type atCommand struct {
	name string // after "AT", e.g. "+DEUI" or "Z"
	help string
	run  func(b *MCU) atStatus
	get  func(b *MCU) atStatus
	set  func(b *MCU, v string) atStatus
}

// atExec parses and runs one line and returns its status.
func (b *MCU) atExec(line string) atStatus {
	rest, ok := strings.CutPrefix(line, "AT")
	if !ok {
		return atError
	}
	switch rest {
	case "":
		return atOK
	case "?":
		b.atPrint("AT+<CMD>?        : help on <CMD>\r\n" +
			"AT+<CMD>         : run <CMD>\r\n" +
			"AT+<CMD>=<value> : set the value\r\n" +
			"AT+<CMD>=?       : get the value\r\n")
		for _, c := range atCommands {
			b.atValue("AT%s%s", c.name, c.help)
		}
		return atOK
	}
	for _, c := range atCommands {
		arg, ok := strings.CutPrefix(rest, c.name)
		if !ok {
			continue
		}
		var st atStatus
		op := "run"
		switch {
		case arg == "":
			st = atError
			if c.run != nil {
				st = c.run(b)
			}
		case arg == "=?":
			op = "get"
			st = atError
			if c.get != nil {
				st = c.get(b)
			}
		case arg[0] == '=':
			op = "set" // the value may be a key: never logged
			st = atError
			if c.set != nil {
				st = c.set(b, arg[1:])
			}
		case arg[0] == '?':
			op = "help"
			b.atValue("AT%s%s", c.name, c.help)
			st = atOK
		default:
			st = atError
		}
		if st != atNoStatus {
			b.logf("at: AT%s %s → %s", c.name, op, atTokens[st])
		}
		return st
	}
	return atError
}

// Helpers for the command table.

func (b *MCU) joinedLocked() bool { return b.rec.state == provproto.StateJoined }

// lockedSetter runs f with b.mu held after the common "not while joined /
// busy" checks of LmHandler setters.
func (b *MCU) lockedSetter(whenJoined atStatus, f func() atStatus) atStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.joining || b.sending {
		return atBusyError
	}
	if b.joinedLocked() {
		return whenJoined
	}
	st := f()
	if st == atOK {
		b.ctxDirty = true
	}
	return st
}

// keyGetter reads a key; gated by KeyReadBack (see the file comment).
func keyGetter(pick func(r *record) []byte) func(*MCU) atStatus {
	return func(b *MCU) atStatus {
		if !b.cfg.KeyReadBack {
			return atError
		}
		b.mu.Lock()
		k := append([]byte(nil), pick(&b.rec)...)
		b.mu.Unlock()
		b.atValue("%s", colonHex(k))
		return atOK
	}
}

func keySetter(pick func(r *record) []byte) func(*MCU, string) atStatus {
	return func(b *MCU, v string) atStatus {
		k, ok := parseColonHex(v, 16)
		if !ok {
			return atParamError
		}
		return b.lockedSetter(atError, func() atStatus {
			copy(pick(&b.rec), k)
			return atOK
		})
	}
}

// getter prints, with format, the value pick reads under b.mu.
func getter[T any](format string, pick func(b *MCU) T) func(*MCU) atStatus {
	return func(b *MCU) atStatus {
		b.mu.Lock()
		v := pick(b)
		b.mu.Unlock()
		b.atValue(format, v)
		return atOK
	}
}

// setLocked runs f with b.mu held: a setting that takes effect at once.
func (b *MCU) setLocked(f func()) atStatus {
	b.mu.Lock()
	f()
	b.mu.Unlock()
	return atOK
}

// flagSetter takes "0" or "1"; anything else is AT_PARAM_ERROR.
func flagSetter(apply func(b *MCU, on bool)) func(*MCU, string) atStatus {
	return func(b *MCU, s string) atStatus {
		if s != "0" && s != "1" {
			return atParamError
		}
		return b.setLocked(func() { apply(b, s == "1") })
	}
}

func uintSetter(lo, hi uint64, apply func(b *MCU, v uint64) atStatus) func(*MCU, string) atStatus {
	return func(b *MCU, s string) atStatus {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil || v < lo || v > hi {
			return atParamError
		}
		return apply(b, v)
	}
}

func msSetting(pick func(r *ramSettings) *time.Duration) (func(*MCU) atStatus, func(*MCU, string) atStatus) {
	get := getter("%d", func(b *MCU) int64 { return pick(&b.ram).Milliseconds() })
	set := uintSetter(0, 0xFFFFFFFF, func(b *MCU, v uint64) atStatus {
		return b.setLocked(func() { *pick(&b.ram) = time.Duration(v) * time.Millisecond })
	})
	return get, set
}

var bandNames = [...]string{"AS923", "AU915", "CN470", "CN779", "EU433", "EU868", "KR920", "IN865", "US915", "RU864"}

const bandEU868 = 5

// eu868MaxPayload is the maximum application payload N per DR, no repeater
// (RP002-1.0.3; brocaar/lorawan band_eu863_870.go).
func eu868MaxPayload(dr int) int {
	switch {
	case dr <= 2:
		return 51
	case dr == 3:
		return 115
	}
	return 242
}

var atCommands []atCommand

func init() {
	jn1Get, jn1Set := msSetting(func(r *ramSettings) *time.Duration { return &r.jn1Delay })
	jn2Get, jn2Set := msSetting(func(r *ramSettings) *time.Duration { return &r.jn2Delay })
	rx1Get, rx1Set := msSetting(func(r *ramSettings) *time.Duration { return &r.rx1Delay })
	rx2Get, rx2Set := msSetting(func(r *ramSettings) *time.Duration { return &r.rx2Delay })
	atCommands = []atCommand{
		{name: "Z", help: ": Trig a MCU reset", run: func(b *MCU) atStatus {
			b.requestReset(resetMCU)
			return atNoStatus
		}},
		{name: "+VER", help: ": Get the FW version", get: func(b *MCU) atStatus {
			for _, l := range b.versionLines() {
				b.atValue("%s", l)
			}
			return atOK
		}},
		{name: "+VL", help: "=<Level><CR><LF>: Set the verbose level 0..3", get: getter("%d", func(b *MCU) int { return b.ram.vl }),
			set: func(b *MCU, s string) atStatus {
				v, err := strconv.Atoi(s)
				if err != nil || v < 0 || v > 3 {
					b.atValue("AT+VL: verbose level is not 0..3")
					return atParamError
				}
				return b.setLocked(func() { b.ram.vl = v })
			}},
		{name: "+LTIME", help: ": Get the local time in UTC format", get: func(b *MCU) atStatus {
			// Unsynchronised system time (no DeviceTimeReq): seconds since
			// boot from the epoch, −18 s GPS leap, +2 h (lora_at.c).
			b.mu.Lock()
			up := time.Since(b.ram.bootedAt)
			b.mu.Unlock()
			t := time.Unix(0, 0).UTC().Add(up - 18*time.Second + 2*time.Hour)
			b.atValue("LTIME:%02dh%02dm%02ds on %02d/%02d/%04d", t.Hour(), t.Minute(), t.Second(), t.Day(), int(t.Month()), t.Year())
			return atOK
		}},
		{name: "+RFS", help: ": Restore EEPROM Factory Settings", run: func(b *MCU) atStatus {
			b.requestReset(resetFactory)
			return atNoStatus
		}},
		{name: "+CS", help: ": Store current context", run: atStoreContext},
		{name: "+APPEUI", help: "=<XX:XX:XX:XX:XX:XX:XX:XX><CR><LF>: Get or Set the App Eui", get: getter("%s", func(b *MCU) string { return colonHex(b.rec.joinEUI[:]) }), set: func(b *MCU, s string) atStatus {
			v, ok := parseColonHex(s, 8)
			if !ok {
				return atParamError
			}
			st := b.lockedSetter(atError, func() atStatus { copy(b.rec.joinEUI[:], v); return atOK })
			if st == atOK {
				b.markNDEFDirty() // the NDEF identity carries the JoinEUI
			}
			return st
		}},
		{name: "+NWKKEY", help: "=<XX:...:XX><CR><LF>: Get or Set the Network Key", get: keyGetter(func(r *record) []byte { return r.rootKey[:] }),
			set: keySetter(func(r *record) []byte { return r.rootKey[:] })},
		{name: "+APPKEY", help: "=<XX:...:XX><CR><LF>: Get or Set the Application Key", get: keyGetter(func(r *record) []byte { return r.atAppKey[:] }),
			set: keySetter(func(r *record) []byte { return r.atAppKey[:] })},
		{name: "+NWKSKEY", help: "=<XX:...:XX><CR><LF>: Get or Set the Network Session Key", get: keyGetter(func(r *record) []byte { return r.nwkSKey[:] }),
			set: keySetter(func(r *record) []byte { return r.nwkSKey[:] })},
		{name: "+APPSKEY", help: "=<XX:...:XX><CR><LF>: Get or Set the Application Session Key", get: keyGetter(func(r *record) []byte { return r.appSKey[:] }),
			set: keySetter(func(r *record) []byte { return r.appSKey[:] })},
		{name: "+DADDR", help: "=<XXXXXXXX><CR><LF>: Get or Set the Device address", get: getter("%s", func(b *MCU) string { return colonHex(b.rec.devAddr[:]) }), set: func(b *MCU, s string) atStatus {
			// The help says XXXXXXXX but the setter parses colon-separated
			// bytes (lora_at.c AT_DevAddr_set).
			v, ok := parseColonHex(s, 4)
			if !ok {
				return atParamError
			}
			return b.lockedSetter(atError, func() atStatus { copy(b.rec.devAddr[:], v); return atOK })
		}},
		{name: "+DEUI", help: "=<XX:XX:XX:XX:XX:XX:XX:XX><CR><LF>: Get or Set the Device EUI", get: func(b *MCU) atStatus {
			v := b.DevEUI()
			b.atValue("%s", colonHex(v[:]))
			return atOK
		}, set: func(b *MCU, s string) atStatus {
			v, ok := parseColonHex(s, 8)
			if !ok {
				return atParamError
			}
			st := b.lockedSetter(atError, func() atStatus {
				copy(b.rec.devEUI[:], v)
				b.devEUI = b.effectiveDevEUI(b.rec)
				return atOK
			})
			if st == atOK {
				b.markNDEFDirty()
			}
			return st
		}},
		{name: "+NWKID", help: "=<NwkID><CR><LF>: Get or Set the Network ID 0..127", get: getter("%d", func(b *MCU) byte { return b.rec.nwkID }), set: uintSetter(0, 127, func(b *MCU, v uint64) atStatus {
			return b.lockedSetter(atError, func() atStatus { b.rec.nwkID = byte(v); return atOK })
		})},
		{name: "+JOIN", help: "=<Mode><CR><LF>: Join network operation: 0 ABP, 1 OTAA", set: atJoin},
		// lora_command.c AT_LINKC → lora_at.c AT_Link_Check →
		// LmHandlerLinkCheckReq: an MLME_LINK_CHECK that piggybacks a
		// LinkCheckReq on the next uplink; the answer shows as DMODM/GWN on
		// the +EVT:RX line.
		{name: "+LINKC", help: ": Piggyback a Link Check Request to the next uplink", run: func(b *MCU) atStatus {
			b.queueLinkCheck()
			return atOK
		}},
		{name: "+SEND", help: "=<Port>:<Ack>:<Payload><CR><LF>: Send binary data with the application port, the acknowledge flag and the hex payload", set: atSend},
		{name: "+ADR", help: "=<ADR><CR><LF>: Get or Set the Adaptive Data Rate setting. (0: off, 1: on)", get: getter("%d", func(b *MCU) int { return boolInt(!b.rec.adrOff) }),
			set: flagSetter(func(b *MCU, on bool) { b.rec.adrOff, b.ctxDirty = !on, true })},
		{name: "+DR", help: "=<DataRate><CR><LF>: Get or Set the Tx DataRate (0..7)", get: getter("%d", func(b *MCU) int { return b.ram.dr }), set: uintSetter(0, 15, func(b *MCU, v uint64) atStatus {
			if v > 5 {
				// DR6 (SF7BW250), DR7 (FSK) and above are not modelled by
				// this air: the MAC refuses them (LmHandlerSetTxDatarate).
				return atError
			}
			return b.setLocked(func() {
				b.ram.dr, b.rec.dr, b.rec.drSet, b.rec.macDR, b.ctxDirty = int(v), byte(v), true, byte(v), true
			})
		})},
		{name: "+BAND", help: "=<BandID><CR><LF>: Get or Set the Active Region BandID", get: func(b *MCU) atStatus {
			b.atValue("%d:%s", bandEU868, bandNames[bandEU868])
			return atOK
		}, set: uintSetter(0, 9, func(b *MCU, v uint64) atStatus {
			if v != bandEU868 {
				return atParamError // region not compiled in
			}
			return b.lockedSetter(atParamError, func() atStatus { return atOK })
		})},
		{name: "+CLASS", help: "=<Class><CR><LF>: Get or Set the Device Class (A, B, C)", get: getter("%s", func(b *MCU) string {
			return map[bool]string{false: "A", true: "C"}[b.ram.classC]
		}), set: atClass},
		{name: "+DCS", help: "=<DutyCycle><CR><LF>: Get or Set the ETSI Duty Cycle setting - 0=disable, 1=enable - Only for testing", get: getter("%d", func(b *MCU) int { return boolInt(b.ram.dcs) }),
			set: flagSetter(func(b *MCU, on bool) { b.ram.dcs = on })},
		{name: "+JN1DL", help: "=<Delay><CR><LF>: Get or Set the Join Accept Delay between the end of the Tx and the Join Rx Window 1 in ms", get: jn1Get, set: jn1Set},
		{name: "+JN2DL", help: "=<Delay><CR><LF>: Get or Set the Join Accept Delay between the end of the Tx and the Join Rx Window 2 in ms", get: jn2Get, set: jn2Set},
		{name: "+RX1DL", help: "=<Delay><CR><LF>: Get or Set the delay between the end of the Tx and the Rx Window 1 in ms", get: rx1Get, set: rx1Set},
		{name: "+RX2DL", help: "=<Delay><CR><LF>: Get or Set the delay between the end of the Tx and the Rx Window 2 in ms", get: rx2Get, set: rx2Set},
		{name: "+RX2DR", help: "=<DataRate><CR><LF>: Get or Set the Rx2 window DataRate (0..7)", get: getter("%d", func(b *MCU) int { return b.ram.rx2DR }), set: uintSetter(0, 15, func(b *MCU, v uint64) atStatus {
			if v > 5 {
				return atError
			}
			return b.setLocked(func() { b.ram.rx2DR = int(v) })
		})},
		{name: "+RX2FQ", help: "=<Freq><CR><LF>: Get or Set the Rx2 window frequency in Hz", get: getter("%d", func(b *MCU) uint32 { return b.ram.rx2Freq }), set: uintSetter(863000000, 870000000, func(b *MCU, v uint64) atStatus {
			return b.setLocked(func() { b.ram.rx2Freq = uint32(v) })
		})},
		{name: "+TXP", help: "=<Power><CR><LF>: Get or Set the Transmit Power (0..7 in EU868)", get: getter("%d", func(b *MCU) int { return b.ram.txPower }), set: uintSetter(0, 7, func(b *MCU, v uint64) atStatus {
			return b.setLocked(func() { b.ram.txPower = int(v) })
		})},
		{name: "+BAT", help: ": Get the battery Level in mV", get: func(b *MCU) atStatus {
			b.atValue("%d", b.cfg.BatteryMV)
			return atOK
		}},
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// atStoreContext is AT+CS (lora_at.c AT_store_context; LmHandler.c
// LmHandlerNvmDataStore).
func atStoreContext(b *MCU) atStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.joining || b.sending {
		return atBusyError
	}
	if !b.ctxDirty {
		b.atValue("NVM DATA UP TO DATE")
		return atOK
	}
	if err := b.saveLocked(NVMWriteContext, b.rec); err != nil {
		b.atValue("NVM DATA STORE FAILED")
		return atError
	}
	b.atValue("NVM DATA STORED")
	return atOK
}

// atJoin is AT+JOIN=<0|1>: returns at once; the result comes as +EVT:JOINED
// or +EVT:JOIN FAILED (one attempt; lora_at.c AT_Join, AT_event_join).
func atJoin(b *MCU, s string) atStatus {
	switch s {
	case "1":
		b.mu.Lock()
		ctx, busy := b.runCtx, b.joining || b.sending
		b.mu.Unlock()
		if busy || !b.startJoin(ctx, 1, false) {
			return atBusyError
		}
		return atOK
	case "0":
		b.mu.Lock()
		if b.joining || b.sending {
			b.mu.Unlock()
			return atBusyError
		}
		b.rec.state = provproto.StateJoined // ABP: the session is what AT+DADDR/NWKSKEY/APPSKEY set
		b.ctxDirty = true
		addr := b.rec.devAddr
		b.mu.Unlock()
		b.emit(JoinAccepted, "ABP DevAddr %X", addr[:])
		b.atEvent("JOINED")
		b.markNDEFDirty()
		return atOK
	}
	return atParamError
}

// atSend is AT+SEND=<port>:<ack>:<hex> (lora_at.c AT_Send).
func atSend(b *MCU, s string) atStatus {
	portS, rest, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(portS, 10, 8)
	if !ok || err != nil {
		b.atValue("AT+SEND without the application port")
		return atParamError
	}
	ackS, data, ok := strings.Cut(rest, ":")
	if !ok || (ackS != "0" && ackS != "1") {
		b.atValue("AT+SEND without the acknowledge flag")
		return atParamError
	}
	if len(data)%2 != 0 || len(data)/2 > maxAppPayload {
		return atParamError
	}
	payload, err := hex.DecodeString(data)
	if err != nil {
		return atParamError
	}
	if port == 0 || port > 223 {
		return atParamError // 0 carries MAC commands, 224+ are reserved (TS001 §4.3.2)
	}
	b.mu.Lock()
	joined, busy, ram, ctx := b.joinedLocked(), b.joining || b.sending, b.ram, b.runCtx
	fCnt := b.rec.fCntUp
	b.mu.Unlock()
	if !joined {
		return atNoNetJoined
	}
	if busy {
		return atBusyError
	}
	if len(payload) > eu868MaxPayload(ram.dr) {
		return atError // LORAMAC_STATUS_LENGTH_ERROR
	}
	// The MAC's own duty-cycle check (AT+DCS): with an air that refuses
	// violating frames, a restricted band answers AT_DUTYCYCLE_RESTRICTED;
	// with a delaying air the frame is scheduled later, as LoRaMac-node does.
	_, ch := uplinkChannel(ram, fCnt)
	if ram.dcs && b.cfg.Air.DutyCyclePolicy().Mode == radio.DutyCycleRefuse && b.cfg.Air.DutyCycleWait(b.sender(), ch) > 0 {
		return atDutyCycleRestricted
	}
	if err := b.claimSend(); err != nil {
		return atBusyError
	}
	b.joinWG.Add(1)
	go func() {
		defer b.joinWG.Done()
		if err := b.sendUplink(ctx, uint8(port), ackS == "1", payload); err != nil && ctx.Err() == nil {
			b.logf("lorawan: %v", err)
		}
	}()
	return atOK
}

// atClass is AT+CLASS=<A|B|C>.
func atClass(b *MCU, s string) atStatus {
	switch s {
	case "A", "C":
	case "B":
		return atNoClassB // LORAMAC_CLASSB_ENABLED 0 in the default build
	default:
		return atParamError
	}
	b.mu.Lock()
	if !b.joinedLocked() {
		b.mu.Unlock()
		return atNoNetJoined
	}
	c := s == "C"
	changed := b.ram.classC != c
	b.ram.classC = c
	b.mu.Unlock()
	if changed {
		b.atEvent("SWITCH_TO_CLASS_" + s)
	}
	return atOK
}
