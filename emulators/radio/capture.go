package radio

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CaptureRecord is one line of a capture file (JSON lines): what a
// spectrum-side sniffer would log per LoRa frame, in the frames.jsonl format
// reports/ reads (reports/frames.go Frame; frequency Hz, bw kHz, rssi dBm,
// snr dB, phy = hex PHYPayload). PHYPayloads are LoRaWAN frames as sent on
// the air (ciphertext or public join frames; no root keys).
type CaptureRecord struct {
	Time             string  `json:"time"`      // RFC 3339, UTC, ns
	Direction        string  `json:"direction"` // "up" | "down"
	Frequency        uint32  `json:"frequency"`
	SF               int     `json:"sf"`
	Bandwidth        int     `json:"bw"`
	CodeRate         string  `json:"cr"`
	RSSI             float64 `json:"rssi"`
	SNR              float64 `json:"snr"`
	AirtimeMS        float64 `json:"airtime_ms"`
	DutyCycleDelayMS float64 `json:"duty_cycle_delay_ms,omitempty"`
	Sender           string  `json:"sender"`
	PHYPayload       string  `json:"phy"` // hex
	// Spec names what the capture was for (CaptureOptions.Spec): in a test
	// run, the full text of the spec whose rig put the frame on the air,
	// which links the frame to the spec in the report.
	Spec string `json:"spec,omitempty"`
	// Collision and NoDemodulator are the collision model's findings
	// (Frame.Collision, Frame.NoDemodulator; collision.go): "lost" or
	// "captured", and how many gateways had no demodulator free.
	Collision     string `json:"collision,omitempty"`
	NoDemodulator int    `json:"no_demodulator,omitempty"`
}

// Record converts f to its capture line.
func (f Frame) Record() CaptureRecord {
	dir := "down"
	if f.Uplink {
		dir = "up"
	}
	return CaptureRecord{
		Time: f.Time.UTC().Format(time.RFC3339Nano), Direction: dir, Frequency: f.Frequency, SF: f.SF,
		Bandwidth: f.Bandwidth, CodeRate: f.codeRate(), RSSI: f.RSSI, SNR: f.SNR,
		AirtimeMS: float64(f.Airtime) / float64(time.Millisecond), DutyCycleDelayMS: float64(f.DutyCycleDelay) / float64(time.Millisecond),
		Sender: f.Sender, PHYPayload: hex.EncodeToString(f.PHYPayload),
		Collision: f.Collision, NoDemodulator: f.NoDemodulator,
	}
}

type captureSink struct {
	spec string
	mu   sync.Mutex
	w    *bufio.Writer
	c    io.Closer
	err  error
}

// write appends f; nil-safe. Errors are kept for Stop.
func (s *captureSink) write(f Frame) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	rec := f.Record()
	rec.Spec = s.spec
	b, err := json.Marshal(rec)
	if err == nil {
		b = append(b, '\n')
		_, err = s.w.Write(b)
	}
	if err == nil {
		err = s.w.Flush() // one line per frame is on disk even if the run dies
	}
	s.err = err
}

// CaptureOptions says what a capture is for.
type CaptureOptions struct {
	// Spec goes into every record (CaptureRecord.Spec).
	Spec string
}

// CaptureTo writes every frame transmitted from now on to w as JSON lines
// (replacing an earlier capture). stop flushes and, if w is an io.Closer,
// closes it, and returns the first write error.
func (a *Air) CaptureTo(w io.Writer, opts CaptureOptions) (stop func() error) {
	s := &captureSink{w: bufio.NewWriter(w), spec: opts.Spec}
	if c, ok := w.(io.Closer); ok {
		s.c = c
	}
	a.mu.Lock()
	a.capture = s
	a.mu.Unlock()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			a.mu.Lock()
			if a.capture == s {
				a.capture = nil
			}
			a.mu.Unlock()
			s.mu.Lock()
			defer s.mu.Unlock()
			err = s.err
			if ferr := s.w.Flush(); err == nil {
				err = ferr
			}
			if s.c != nil {
				if cerr := s.c.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				err = fmt.Errorf("radio: capture: %w", err)
			}
		})
		return err
	}
}

// CaptureFile appends the capture to path (creating it and its directory):
// several rigs of a run, and several suites, share one frames.jsonl.
func (a *Air) CaptureFile(path string, opts CaptureOptions) (stop func() error, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("radio: capture: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("radio: capture: %w", err)
	}
	return a.CaptureTo(f, opts), nil
}
