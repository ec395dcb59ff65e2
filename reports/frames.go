package reports

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Frame is one captured LoRa frame, as written one JSON object per line to
// frames.jsonl by the radio emulator (or a sniffing gateway on a lab rig):
//
//	{"time":"2026-11-23T21:57:19.46Z","direction":"up","frequency":868100000,
//	 "sf":7,"bw":125,"cr":"4/5","rssi":-60,"snr":9,"airtime_ms":61.696,
//	 "sender":"board-1","phy":"00010000d07ed5b370..."}
//
// Frequency is in Hz, bw in kHz, rssi in dBm, snr in dB; phy is the
// PHYPayload in hex. Only time, direction and phy are required.
type Frame struct {
	Time      time.Time `json:"time"`
	Direction string    `json:"direction"` // "up" | "down"
	Frequency uint32    `json:"frequency"`
	SF        int       `json:"sf"`
	BW        int       `json:"bw"`
	CR        string    `json:"cr,omitempty"`
	RSSI      float64   `json:"rssi"`
	SNR       float64   `json:"snr"`
	AirtimeMS float64   `json:"airtime_ms,omitempty"`
	Sender    string    `json:"sender,omitempty"`
	PHY       string    `json:"phy"`
	// Spec is the full text of the spec whose rig sent the frame, when the
	// capture says (emulated rigs do).
	Spec string `json:"spec,omitempty"`
}

// MType names the LoRaWAN message type from the MHDR of the PHYPayload
// (LoRaWAN 1.0.4 §4.2.1), e.g. "JoinRequest".
func (f Frame) MType() string {
	if len(f.PHY) < 2 {
		return "?"
	}
	var b byte
	if _, err := fmt.Sscanf(f.PHY[:2], "%02x", &b); err != nil {
		return "?"
	}
	return [...]string{"JoinRequest", "JoinAccept", "UnconfirmedDataUp", "UnconfirmedDataDown",
		"ConfirmedDataUp", "ConfirmedDataDown", "RejoinRequest", "Proprietary"}[b>>5]
}

// LoadFrames reads a frames.jsonl file. A missing file is not an error: it
// yields no frames (a run without the radio emulator captures nothing).
func LoadFrames(file string) ([]Frame, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("frames: %w", err)
	}
	defer f.Close()
	fr, err := ReadFrames(f)
	if err != nil {
		return nil, fmt.Errorf("frames: %s: %w", file, err)
	}
	return fr, nil
}

// ReadFrames parses JSON lines of frames; blank lines are skipped.
func ReadFrames(r io.Reader) ([]Frame, error) {
	var out []Frame
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var f Frame
		if err := json.Unmarshal([]byte(t), &f); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		switch strings.ToLower(f.Direction) {
		case "up", "uplink":
			f.Direction = "up"
		case "down", "downlink":
			f.Direction = "down"
		default:
			return nil, fmt.Errorf("line %d: direction %q is not up or down", line, f.Direction)
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
