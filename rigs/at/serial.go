package at

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Config says how to reach a board's console.
type Config struct {
	// Port is the device path: /dev/ttyACM0, a /dev/serial/by-id link, or
	// the twin's pty link.
	Port string
	// USBSerial finds the port by USB serial number (the ST-LINK's, on a
	// NUCLEO) instead of by path, at the first open and at every re-open:
	// after re-enumeration the device may come back under another ttyACM
	// number.
	USBSerial string
	// Baud defaults to 9600 (LPUART1, STM32CubeWL LoRaWAN_AT_Slave
	// Core/Src/usart.c); the
	// frame is always 8N1 without flow control.
	Baud int
	// CommandTimeout bounds one command (default 5 s); ctx may end it earlier.
	CommandTimeout time.Duration
	// ResetTimeout bounds ATZ and AT+RFS until the board is ready again
	// (default 15 s).
	ResetTimeout time.Duration
	// ReopenPoll is the interval at which a vanished port is looked for
	// (default 20 ms).
	ReopenPoll time.Duration
	// ListPorts lists USB serial ports (default enumerator.GetDetailedPortsList).
	ListPorts func() ([]*enumerator.PortDetails, error)
}

// BannerEnd is the last line of the boot banner (STM32CubeWL LoRaWAN_AT_Slave
// lora_app.c LoRaWAN_Init).
const BannerEnd = "AT? to list all available functions"

// bannerLines are banner lines that are never a command's output.
var bannerLines = map[string]bool{
	"ATtention command interface": true,
	BannerEnd:                     true,
	"NVM DATA RESTORED":           true,
}

const (
	eventBuffer     = 256
	transcriptLimit = 20000
)

// Serial is a Console on a serial port.
type Serial struct {
	cfg  Config
	mode *serial.Mode

	cmdMu sync.Mutex // one command at a time: responses are not tagged

	mu         sync.Mutex
	port       serial.Port // nil while the port is absent
	path       string
	connected  chan struct{} // closed while connected
	pending    *pending
	transcript []Line
	reopens    int
	dropped    int
	closed     bool

	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup
}

var _ Console = (*Serial)(nil)

type result struct {
	status Status
	lines  []string
}

type pending struct {
	reset bool
	lines []string
	done  chan result   // buffered 1
	lost  chan struct{} // closed if the port vanished meanwhile
}

func newPending(reset bool) *pending {
	return &pending{reset: reset, done: make(chan result, 1), lost: make(chan struct{})}
}

// Open opens the console, retrying until the port exists or ctx ends, and
// starts its reader.
func Open(ctx context.Context, cfg Config) (*Serial, error) {
	if cfg.Port == "" && cfg.USBSerial == "" {
		return nil, errors.New("at: Config needs Port or USBSerial")
	}
	if cfg.Baud == 0 {
		cfg.Baud = 9600
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 5 * time.Second
	}
	if cfg.ResetTimeout == 0 {
		cfg.ResetTimeout = 15 * time.Second
	}
	if cfg.ReopenPoll == 0 {
		cfg.ReopenPoll = 20 * time.Millisecond
	}
	if cfg.ListPorts == nil {
		cfg.ListPorts = func() ([]*enumerator.PortDetails, error) { return enumerator.GetDetailedPortsList() }
	}
	s := &Serial{
		cfg:       cfg,
		mode:      &serial.Mode{BaudRate: cfg.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit},
		connected: make(chan struct{}),
		events:    make(chan Event, eventBuffer),
		done:      make(chan struct{}),
	}
	var lastErr error
	for {
		p, err := s.tryOpen()
		if err == nil {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.readLoop(p) }()
			return s, nil
		}
		lastErr = err
		t := time.NewTimer(cfg.ReopenPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("at: open %s: %w (last error: %v)", s.describe(), ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

func (s *Serial) describe() string {
	if s.cfg.USBSerial != "" {
		return "USB serial " + s.cfg.USBSerial
	}
	return s.cfg.Port
}

// resolve finds the port's path now.
func (s *Serial) resolve() (string, error) {
	if s.cfg.USBSerial == "" {
		return s.cfg.Port, nil
	}
	return FindUSB(s.cfg.ListPorts, s.cfg.USBSerial)
}

// FindUSB returns the path of the USB serial port with the given serial
// number (case-insensitive), using list (enumerator.GetDetailedPortsList).
func FindUSB(list func() ([]*enumerator.PortDetails, error), usbSerial string) (string, error) {
	ports, err := list()
	if err != nil {
		return "", fmt.Errorf("at: list serial ports: %w", err)
	}
	for _, p := range ports {
		if p.IsUSB && strings.EqualFold(p.SerialNumber, usbSerial) {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("at: no USB serial port with serial number %s", usbSerial)
}

// Ports describes the serial ports present, e.g. "/dev/ttyACM0 (USB serial
// 0026003A…, STLINK-V3)", for errors that must say what exists instead of
// what a rig file names.
func Ports() ([]string, error) {
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("at: list serial ports: %w", err)
	}
	var out []string
	for _, p := range ports {
		d := p.Name
		if p.IsUSB {
			d += fmt.Sprintf(" (USB serial %s, %s:%s %s)", p.SerialNumber, p.VID, p.PID, p.Product)
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Serial) tryOpen() (serial.Port, error) {
	path, err := s.resolve()
	if err != nil {
		return nil, err
	}
	p, err := serial.Open(path, s.mode)
	if err != nil {
		return nil, fmt.Errorf("at: open %s: %w", path, err)
	}
	// Output the board printed before we opened the port (a banner, old
	// events) is not an answer to anything we will send.
	if err := p.ResetInputBuffer(); err != nil {
		p.Close()
		return nil, fmt.Errorf("at: flush %s: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		p.Close()
		return nil, ErrClosed
	}
	s.port, s.path = p, path
	close(s.connected)
	s.noteLocked(fmt.Sprintf("port %s open (%d 8N1)", path, s.cfg.Baud))
	return p, nil
}

// Path is the path of the port currently open ("" while absent).
func (s *Serial) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == nil {
		return ""
	}
	return s.path
}

// Reopens counts how often the port vanished and was opened again.
func (s *Serial) Reopens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reopens
}

// DroppedEvents counts events dropped because nobody read Events().
func (s *Serial) DroppedEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Serial) noteLocked(text string) {
	s.appendLocked(Line{Time: time.Now(), Dir: Note, Text: Redact(text)})
}

func (s *Serial) appendLocked(l Line) {
	if len(s.transcript) >= transcriptLimit {
		s.transcript = s.transcript[len(s.transcript)-transcriptLimit/2:]
	}
	s.transcript = append(s.transcript, l)
}

// readLoop is the one reader: it splits lines, routes them, and re-opens
// the port when it vanishes.
func (s *Serial) readLoop(port serial.Port) {
	defer close(s.events)
	buf := make([]byte, 512)
	var line []byte
	for {
		n, err := port.Read(buf)
		for _, c := range buf[:max(n, 0)] {
			if c == '\r' || c == '\n' {
				if len(line) > 0 {
					s.onLine(string(line))
					line = line[:0]
				}
				continue
			}
			line = append(line, c)
		}
		if err == nil && n > 0 {
			continue
		}
		if s.isClosed() {
			return
		}
		s.portLost(port, err)
		line = line[:0]
		if port = s.reopen(); port == nil {
			return
		}
	}
}

func (s *Serial) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Serial) onLine(l string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendLocked(Line{Time: now, Dir: Received, Text: Redact(l)})
	if ev, ok := ParseEvent(l, now); ok {
		select {
		case s.events <- ev:
		default:
			s.dropped++
			select { // keep the newest: drop the oldest
			case <-s.events:
			default:
			}
			select {
			case s.events <- ev:
			default:
			}
		}
		return
	}
	p := s.pending
	if p == nil {
		return // banner, traces, late output
	}
	if st, ok := ParseStatus(l); ok {
		p.done <- result{status: st, lines: p.lines}
		s.pending = nil
		return
	}
	if p.reset && l == BannerEnd {
		p.done <- result{status: StatusOK, lines: p.lines}
		s.pending = nil
		return
	}
	if strings.HasPrefix(l, "######") || bannerLines[l] {
		return // middleware trace, or the banner of a reset we did not ask for
	}
	p.lines = append(p.lines, l)
}

func (s *Serial) portLost(port serial.Port, err error) {
	port.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.port = nil
	s.connected = make(chan struct{})
	why := "EOF"
	if err != nil {
		why = err.Error()
	}
	s.noteLocked("port lost: " + why)
	if p := s.pending; p != nil {
		s.pending = nil
		close(p.lost)
	}
}

// reopen waits for the port to come back; nil if the console was closed.
func (s *Serial) reopen() serial.Port {
	for {
		if s.isClosed() {
			return nil
		}
		if p, err := s.tryOpen(); err == nil {
			s.mu.Lock()
			s.reopens++
			s.mu.Unlock()
			return p
		}
		t := time.NewTimer(s.cfg.ReopenPoll)
		select {
		case <-s.done:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Events streams "+EVT:" lines; it is closed by Close. If nobody reads, the
// oldest events are dropped beyond 256.
func (s *Serial) Events() <-chan Event { return s.events }

// Transcript returns a copy of the transcript.
func (s *Serial) Transcript() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Line(nil), s.transcript...)
}

func isResetCommand(cmd string) bool { return cmd == "ATZ" || cmd == "AT+RFS" }

// Command sends cmd and waits for its status (see Console). ATZ and AT+RFS
// wait until the board is ready again: its banner's last line, or — when the
// port re-enumerated and the banner was missed — an "AT" answered OK.
func (s *Serial) Command(ctx context.Context, cmd string) ([]string, error) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	reset := isResetCommand(cmd)
	timeout := s.cfg.CommandTimeout
	if reset {
		timeout = s.cfg.ResetTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	red := Redact(cmd)
	p := newPending(reset)
	if err := s.send(ctx, p, cmd); err != nil {
		return nil, fmt.Errorf("at: %s: %w", red, err)
	}
	select {
	case r := <-p.done:
		return finish(red, r)
	case <-p.lost:
		if s.isClosed() {
			return nil, fmt.Errorf("at: %s: %w", red, ErrClosed)
		}
		if !reset {
			return nil, fmt.Errorf("at: %s: %w", red, ErrPortLost)
		}
		return nil, s.probeReady(ctx, red)
	case <-ctx.Done():
		s.abandon(p, red)
		return nil, fmt.Errorf("at: %s: %w (%w)", red, ErrTimeout, ctx.Err())
	}
}

func finish(red string, r result) ([]string, error) {
	if r.status == StatusOK {
		return r.lines, nil
	}
	lines := make([]string, len(r.lines))
	for i, l := range r.lines {
		lines[i] = Redact(l)
	}
	return r.lines, &ATError{Command: red, Status: r.status, Lines: lines}
}

// send waits for the port, registers p and writes the command.
func (s *Serial) send(ctx context.Context, p *pending, cmd string) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		port, connected := s.port, s.connected
		if port != nil {
			s.pending = p
			s.appendLocked(Line{Time: time.Now(), Dir: Sent, Text: Redact(cmd)})
			s.mu.Unlock()
			if _, err := port.Write([]byte(cmd + "\r\n")); err != nil {
				s.abandon(p, "")
				return fmt.Errorf("%w: write: %v", ErrPortLost, err)
			}
			return nil
		}
		s.mu.Unlock()
		select {
		case <-connected:
		case <-s.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("port absent: %w", ctx.Err())
		}
	}
}

func (s *Serial) abandon(p *pending, red string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == p {
		s.pending = nil
	}
	if red != "" {
		s.noteLocked("timeout: " + red)
	}
}

// probeReady sends "AT" until the rebooted board answers OK.
func (s *Serial) probeReady(ctx context.Context, red string) error {
	for {
		p := newPending(false)
		if err := s.send(ctx, p, "AT"); err != nil {
			return fmt.Errorf("at: %s: not ready after reset: %w", red, err)
		}
		t := time.NewTimer(300 * time.Millisecond) // an answer to AT takes milliseconds at 9600 baud
		select {
		case r := <-p.done:
			t.Stop()
			if r.status == StatusOK {
				return nil
			}
		case <-p.lost:
			t.Stop()
		case <-t.C:
			s.abandon(p, "")
		case <-ctx.Done():
			t.Stop()
			s.abandon(p, red)
			return fmt.Errorf("at: %s: not ready after reset: %w (%w)", red, ErrTimeout, ctx.Err())
		}
	}
}

// Close closes the port and stops the reader; Events() is closed.
func (s *Serial) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	port := s.port
	s.port = nil
	if p := s.pending; p != nil {
		s.pending = nil
		close(p.lost)
	}
	s.mu.Unlock()
	var err error
	if port != nil {
		err = port.Close()
	}
	s.wg.Wait()
	return err
}
