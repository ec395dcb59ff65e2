package reports

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// RunMeta is what the run driver knows about a run, written to
// <run folder>/run.json and read by t2jreport -run. Unknown fields are
// ignored; every field may be empty. Times are RFC 3339.
type RunMeta struct {
	RunID             string   `json:"run_id"`
	Mode              string   `json:"mode"`   // "emulate" | "lab"
	Status            string   `json:"status"` // "completed" | "interrupted" | "broken"
	Detail            string   `json:"detail"`
	Started           string   `json:"started"`
	Finished          string   `json:"finished"`
	DurationS         *float64 `json:"duration_s"`
	GinkgoExit        *int     `json:"ginkgo_exit"`
	Rig               string   `json:"rig"`
	RigName           string   `json:"rig_name"`
	Limits            string   `json:"limits"`
	LimitsSHA256      string   `json:"limits_sha256"`
	GitCommit         string   `json:"git_commit"`
	GitDirty          *bool    `json:"git_dirty"`
	Host              string   `json:"host"`
	GoVersion         string   `json:"go_version"`
	PcscdVersion      string   `json:"pcscd_version"`
	ChirpStackVersion string   `json:"chirpstack_version"`
	LabelFilter       string   `json:"label_filter"`
	Baseline          string   `json:"baseline"`

	// Path is where run.json was read from ("" without -run).
	Path string `json:"-"`
}

// LoadRunMeta reads and checks run.json.
func LoadRunMeta(file string) (*RunMeta, error) {
	return loadFile("run", file, ParseRunMeta)
}

func (m *RunMeta) setPath(file string) { m.Path = file }

// ParseRunMeta parses run.json.
func ParseRunMeta(raw []byte) (*RunMeta, error) {
	var m RunMeta
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a run.json: %w", err)
	}
	switch m.Status {
	case "", RunCompleted, RunInterrupted, RunBroken:
	default:
		return nil, fmt.Errorf("status %q: want %s, %s or %s", m.Status, RunCompleted, RunInterrupted, RunBroken)
	}
	return &m, nil
}

// Field is one line of run metadata: a label for people, a key for JUnit
// properties ("run.id", "git.commit", "firmware.board-1") and the value.
type Field struct{ Label, Key, Value string }

// Metadata is the run metadata a report shows: run.json's fields, filled in
// from the reports where run.json is absent or silent, plus what t2jreport
// itself read (the limits file's SHA-256) and the firmware each board
// reported.
type Metadata struct {
	RunMeta
	// LimitsSHA256Judged is the SHA-256 of the limits file t2jreport judged
	// against; a run.json naming another hash gets a warning.
	LimitsSHA256Judged string
	// Firmware is each board's firmware version, from the report entries
	// named "firmware <board>" (the suite kit adds one at bring-up); a board
	// seen with several versions lists them all, in order.
	Firmware map[string][]string
	// Warnings are inconsistencies between the inputs (shown, not judged).
	Warnings []string
}

// FirmwarePrefix names the report entry holding a board's firmware version:
// "firmware board-1" = "1.3.0 (Nov 23 2026)".
const FirmwarePrefix = "firmware "

// Firmware collects the firmware versions the boards reported (report
// entries "firmware <board>"), per board in first-seen order.
func Firmware(rs []types.Report) map[string][]string {
	out := map[string][]string{}
	for _, r := range rs {
		for _, s := range r.SpecReports {
			for _, e := range s.ReportEntries {
				board, ok := strings.CutPrefix(e.Name, FirmwarePrefix)
				board = strings.TrimSpace(board)
				if !ok || board == "" {
					continue
				}
				v := entryString(e)
				if v == "" {
					continue
				}
				dup := false
				for _, have := range out[board] {
					dup = dup || have == v
				}
				if !dup {
					out[board] = append(out[board], v)
				}
			}
		}
	}
	return out
}

// entryString is a report entry's value as plain text: a JSON string
// unquoted, else Ginkgo's representation, else its JSON.
func entryString(e types.ReportEntry) string {
	if raw := e.Value.GetRawValue(); raw != nil {
		if s, ok := raw.(string); ok {
			return strings.TrimSpace(s)
		}
	}
	var s string
	if e.Value.AsJSON != "" && json.Unmarshal([]byte(e.Value.AsJSON), &s) == nil {
		return strings.TrimSpace(s)
	}
	if e.Value.Representation != "" {
		return strings.TrimSpace(e.Value.Representation)
	}
	return strings.TrimSpace(entryText(e))
}

// FileSHA256 is the hex SHA-256 of a file's contents, or "" when unreadable.
func FileSHA256(file string) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// NewMetadata combines run.json (may be nil) with what the reports and the
// other inputs say.
func NewMetadata(meta *RunMeta, rs []types.Report, limits *Limits, rig *RigSummary, baseline string) Metadata {
	var md Metadata
	if meta != nil {
		md.RunMeta = *meta
	}
	if limits != nil && limits.Path != "" {
		md.LimitsSHA256Judged = FileSHA256(limits.Path)
		if md.Limits == "" {
			md.Limits = limits.Path
		}
		want := strings.ToLower(strings.TrimPrefix(md.LimitsSHA256, "sha256:"))
		if want != "" && md.LimitsSHA256Judged != "" && want != md.LimitsSHA256Judged {
			md.Warnings = append(md.Warnings, fmt.Sprintf("the limits file changed since the run: run.json says sha256 %s, %s now has %s",
				want, limits.Path, md.LimitsSHA256Judged))
		}
	}
	if rig != nil {
		if md.Rig == "" {
			md.Rig = rig.Path
		}
		if md.RigName == "" {
			md.RigName = rig.Name
		}
	}
	if md.Baseline == "" {
		md.Baseline = baseline
	}
	var start, end time.Time
	for _, r := range rs {
		if !r.StartTime.IsZero() && (start.IsZero() || r.StartTime.Before(start)) {
			start = r.StartTime
		}
		if r.EndTime.After(end) {
			end = r.EndTime
		}
		if md.LabelFilter == "" {
			md.LabelFilter = r.SuiteConfig.LabelFilter
		}
	}
	if md.Started == "" && !start.IsZero() {
		md.Started = start.UTC().Format(time.RFC3339)
	}
	if md.Finished == "" && !end.IsZero() {
		md.Finished = end.UTC().Format(time.RFC3339)
	}
	if md.DurationS == nil && !start.IsZero() && end.After(start) {
		d := end.Sub(start).Seconds()
		md.DurationS = &d
	}
	md.Firmware = Firmware(rs)
	return md
}

// Fields lists the metadata in display order; empty values are left out
// except the status, the commit and the firmware, whose absence matters
// to an auditor.
func (md Metadata) Fields() []Field {
	var f []Field
	add := func(label, key, v string) {
		if v != "" {
			f = append(f, Field{label, key, v})
		}
	}
	add("Run", "run.id", md.RunID)
	add("Mode", "run.mode", md.Mode)
	status := md.Status
	if status == "" {
		status = "(no run.json)"
	}
	f = append(f, Field{"Run status", "run.status", status})
	add("Detail", "run.detail", md.Detail)
	add("Started", "run.started", md.Started)
	add("Finished", "run.finished", md.Finished)
	if md.DurationS != nil {
		v := num3(*md.DurationS) + " s"
		if *md.DurationS >= 60 {
			v += " (" + time.Duration(*md.DurationS*float64(time.Second)).Round(time.Second).String() + ")"
		}
		f = append(f, Field{"Duration", "run.duration_s", v})
	}
	if md.GinkgoExit != nil {
		f = append(f, Field{"Ginkgo exit status", "ginkgo.exit", fmt.Sprint(*md.GinkgoExit)})
	}
	commit := md.GitCommit
	if commit == "" {
		commit = "(unknown)"
	}
	if md.GitDirty != nil && *md.GitDirty {
		commit += " (dirty: uncommitted changes)"
	} else if md.GitDirty != nil && md.GitCommit != "" {
		commit += " (clean)"
	}
	f = append(f, Field{"Git commit", "git.commit", commit})
	if md.GitDirty != nil {
		f = append(f, Field{"Git dirty", "git.dirty", fmt.Sprint(*md.GitDirty)})
	}
	add("Rig", "rig", md.Rig)
	add("Rig name", "rig.name", md.RigName)
	add("Limits", "limits", md.Limits)
	if md.LimitsSHA256 != "" {
		add("Limits SHA-256 (run)", "limits.sha256", md.LimitsSHA256)
	}
	if md.LimitsSHA256Judged != "" && md.LimitsSHA256Judged != strings.ToLower(strings.TrimPrefix(md.LimitsSHA256, "sha256:")) {
		add("Limits SHA-256 (judged)", "limits.sha256.judged", md.LimitsSHA256Judged)
	}
	add("Label filter", "label_filter", md.LabelFilter)
	add("Host", "host", md.Host)
	add("Go", "go.version", md.GoVersion)
	add("pcscd", "pcscd.version", md.PcscdVersion)
	add("ChirpStack", "chirpstack.version", md.ChirpStackVersion)
	add("Baseline", "baseline", md.Baseline)
	boards := make([]string, 0, len(md.Firmware))
	for b := range md.Firmware {
		boards = append(boards, b)
	}
	sort.Strings(boards)
	if len(boards) == 0 {
		f = append(f, Field{"Firmware", "firmware", "(not reported)"})
	}
	for _, b := range boards {
		f = append(f, Field{"Firmware " + b, "firmware." + b, strings.Join(md.Firmware[b], "; ")})
	}
	for i, w := range md.Warnings {
		f = append(f, Field{"Warning", fmt.Sprintf("warning.%d", i+1), w})
	}
	return f
}
