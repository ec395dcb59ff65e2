// Package at drives the serial AT console of an STM32WL5 board running
// ST's LoRaWAN_AT_Slave command set (STM32CubeWL v1.3.1,
// Projects/NUCLEO-WL55JC/Applications/LoRaWAN/LoRaWAN_AT_Slave; ST AN5481
// describes it, the source is the authority) or the tap2join firmware built on it —
// a real NUCLEO-WL55JC on /dev/ttyACM*, or the firmware twin's pty
// (emulators/stm32wl5), through the same go.bug.st/serial code.
//
// Protocol facts the driver relies on (Core/Src/usart.c, readme.txt,
// LoRaWAN/App/lora_command.c CMD_Process/parse_cmd, lora_at.c AT_event_*):
//   - 9600 baud, 8N1, no flow control; the board does not echo; commands end
//     with CR LF.
//   - A command prints value lines, then exactly one status line: OK or an
//     error token (AT_ERROR, AT_PARAM_ERROR, AT_BUSY_ERROR, …). Empty lines
//     are framing. ATZ and AT+RFS print no status: the MCU resets and prints
//     its banner, ending with "AT? to list all available functions".
//   - "+EVT:" lines arrive at any time, also in the middle of a response;
//     middleware traces ("###### …") and other unknown lines too. The driver
//     routes events to Events(), keeps traces in the transcript only, and
//     gives a command the other lines it printed.
//
// The port may vanish and come back (a USB CDC device re-enumerating after a
// reset): the single reader goroutine re-opens it — by path, or on real
// hardware by USB serial number through go.bug.st/serial/enumerator — and a
// command waits for it within its own timeout.
//
// Key material: the transcript and every error text go through Redact, which
// replaces anything shaped like a 16-byte key with its key check value.
// Command returns the raw lines (a security check must see what the board
// printed) — callers must not log them.
package at

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tap2join/tap2join/fixtures/proto/provproto"
)

// Console is an AT console: the seam between suites and a board's serial port.
type Console interface {
	// Command sends one command line (without CR LF) and returns the lines
	// the board printed before the final status. A status other than OK is
	// an *ATError (errors.Is against ErrAT, ErrParam, …).
	Command(ctx context.Context, cmd string) ([]string, error)
	// Events streams the board's "+EVT:" lines.
	Events() <-chan Event
	// Transcript returns everything sent and received so far, timestamped,
	// with key-shaped values redacted.
	Transcript() []Line
	Close() error
}

// Status is a final status token (lora_command.c ATError_description).
type Status string

// Status tokens as printed (lora_command.c ATError_description, lora_at.h).
// AT_NO_NET_JOINED prints as
// AT_NO_NETWORK_JOINED.
const (
	StatusOK              Status = "OK"
	StatusError           Status = "AT_ERROR"
	StatusParamError      Status = "AT_PARAM_ERROR"
	StatusBusy            Status = "AT_BUSY_ERROR"
	StatusParamOverflow   Status = "AT_TEST_PARAM_OVERFLOW"
	StatusNoNetworkJoined Status = "AT_NO_NETWORK_JOINED"
	StatusRXError         Status = "AT_RX_ERROR"
	StatusNoClassB        Status = "AT_NO_CLASS_B_ENABLE"
	StatusDutyCycle       Status = "AT_DUTYCYCLE_RESTRICTED"
	StatusCryptoError     Status = "AT_CRYPTO_ERROR"
	StatusUnknown         Status = "error unknown"
)

var statuses = map[string]Status{}

func init() {
	for _, s := range []Status{StatusOK, StatusError, StatusParamError, StatusBusy, StatusParamOverflow,
		StatusNoNetworkJoined, StatusRXError, StatusNoClassB, StatusDutyCycle, StatusCryptoError, StatusUnknown} {
		statuses[string(s)] = s
	}
}

// ParseStatus reports whether line is a final status token.
func ParseStatus(line string) (Status, bool) {
	s, ok := statuses[line]
	return s, ok
}

// ATError is a command that ended with an error status.
type ATError struct {
	Command string // redacted
	Status  Status
	Lines   []string // redacted value/message lines printed before the status
}

func (e *ATError) Error() string {
	if e.Command == "" {
		return "at: " + string(e.Status)
	}
	s := fmt.Sprintf("at: %s: %s", e.Command, e.Status)
	if len(e.Lines) > 0 {
		s += " (" + strings.Join(e.Lines, "; ") + ")"
	}
	return s
}

// Is matches the sentinels (an *ATError without Command) by status.
func (e *ATError) Is(target error) bool {
	t, ok := target.(*ATError)
	return ok && t.Command == "" && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrAT            = &ATError{Status: StatusError}
	ErrParam         = &ATError{Status: StatusParamError}
	ErrBusy          = &ATError{Status: StatusBusy}
	ErrParamOverflow = &ATError{Status: StatusParamOverflow}
	ErrNotJoined     = &ATError{Status: StatusNoNetworkJoined}
	ErrRX            = &ATError{Status: StatusRXError}
	ErrNoClassB      = &ATError{Status: StatusNoClassB}
	ErrDutyCycle     = &ATError{Status: StatusDutyCycle}
	ErrCrypto        = &ATError{Status: StatusCryptoError}
	ErrUnknownStatus = &ATError{Status: StatusUnknown}
)

// Errors that are not AT statuses.
var (
	ErrTimeout   = errors.New("at: no status before the command timeout")
	ErrPortLost  = errors.New("at: serial port vanished during the command")
	ErrClosed    = errors.New("at: console closed")
	ErrNoConsole = errors.New("at: this board has no serial console")
)

// Event is one "+EVT:" line.
type Event struct {
	Time time.Time
	Line string // the whole line, e.g. "+EVT:RX_1, PORT 2, DR 0, RSSI -60, SNR 9"
	// Name is the event: "JOINED", "JOIN FAILED", "RX_1", "SEND_CONFIRMED",
	// "NFC_PROVISIONED", "DATA" (for "+EVT:<port>:<len>:<hex>") …
	Name string
	// Args is the rest: "PORT 2, DR 0, …", "KCV=1A2B3C", "2:04:CAFE0102".
	Args string
}

// ParseEvent parses a "+EVT:" line.
func ParseEvent(line string, t time.Time) (Event, bool) {
	body, ok := strings.CutPrefix(line, "+EVT:")
	if !ok {
		return Event{}, false
	}
	e := Event{Time: t, Line: line}
	switch {
	case body != "" && body[0] >= '0' && body[0] <= '9':
		e.Name, e.Args = "DATA", body
	case body == "JOIN FAILED":
		e.Name = body
	default:
		cut := strings.IndexAny(body, ", ")
		if cut < 0 {
			e.Name = body
		} else {
			e.Name, e.Args = body[:cut], strings.TrimLeft(body[cut:], ", ")
		}
	}
	return e, true
}

// Direction of a transcript line.
type Direction string

// Transcript directions.
const (
	Sent     Direction = ">"
	Received Direction = "<"
	Note     Direction = "#" // driver notes: port lost, re-opened, timeouts
)

// Line is one transcript line.
type Line struct {
	Time time.Time
	Dir  Direction
	Text string // redacted
}

func (l Line) String() string {
	return fmt.Sprintf("%s %s %s", l.Time.Format("15:04:05.000000"), l.Dir, l.Text)
}

// FormatTranscript renders a transcript, one line per entry.
func FormatTranscript(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

var (
	colonKey = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){15}\b`)
	plainKey = regexp.MustCompile(`(?i)\b[0-9a-f]{32}\b`)
)

// Redact replaces every 16-byte value in s (16 colon-separated hex bytes,
// as the AT interface prints keys, or 32 hex digits) with its key check value.
func Redact(s string) string {
	repl := func(m string) string {
		b, err := hex.DecodeString(strings.ReplaceAll(m, ":", ""))
		if err != nil || len(b) != 16 {
			return "<redacted>"
		}
		return "<16 bytes KCV " + provproto.CheckValue([16]byte(b)).String() + ">"
	}
	return plainKey.ReplaceAllStringFunc(colonKey.ReplaceAllStringFunc(s, repl), repl)
}

// ParseKey parses a 16-byte value as the AT interface prints it
// (XX:XX:…:XX) — for checks that compare a printed key by its KCV.
func ParseKey(s string) ([16]byte, bool) {
	var k [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != 16 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// FormatEUI prints an EUI as the AT interface does: XX:XX:…, MSB first.
func FormatEUI(e [8]byte) string {
	parts := make([]string, len(e))
	for i, c := range e {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// none is the Console of a board without a serial port.
type none struct{ ch chan Event }

// None returns a Console whose commands fail with ErrNoConsole, so suites
// can hold a Console for every board (and Skip on ErrNoConsole).
func None() Console { return none{ch: make(chan Event)} }

func (n none) Command(context.Context, string) ([]string, error) { return nil, ErrNoConsole }
func (n none) Events() <-chan Event                              { return n.ch }
func (n none) Transcript() []Line                                { return nil }
func (n none) Close() error                                      { return nil }
