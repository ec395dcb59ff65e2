package reports

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

//go:embed report.html.tmpl
var htmlTemplate string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower":    func(s any) string { return strings.ToLower(strings.ReplaceAll(fmt.Sprint(s), " ", "-")) },
	"delta":    func(d *Delta) string { return d.Text() },
	"num":      num3,
	"dur":      func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"truncate": truncate,
}).Parse(htmlTemplate))

// MaxFrameRows caps the captured frames table of report.html.
const MaxFrameRows = 1000

// TapToFirstUplink is the measurement whose distribution report.html plots:
// the wall time from the tap (NDEF read) to the first uplink the network
// server decrypted.
const TapToFirstUplink = "tap to first uplink"

type htmlSpec struct {
	Name, State, Labels, Duration string
	Attempts, Measurements        int
	Failed                        bool
	Anchor                        string
	ID                            string // the row's id, for links from frames
}

type htmlEntry struct {
	Name, Value, Time string
	Multiline         bool
}

type htmlTranscript struct {
	Spec, Name, Text string
}

type htmlFailure struct {
	Name, Anchor, State, Message, Location, NodeType, Panic string
	Additional, Progress, GinkgoWriter, StdOutErr           string
	Entries                                                 []htmlEntry
}

type htmlSuite struct {
	Name, Path, Start, Duration string
	Succeeded                   bool
	Reasons                     []string
}

// htmlFleet is one fleet's charts (fleet.go).
type htmlFleet struct {
	Name            string
	Joins, Attempts template.HTML
}

type htmlFrame struct {
	N                                        int
	Offset, Dir, MType, Freq, Mod, RSSI, SNR string
	Airtime, Sender, PHY                     string
	Spec, SpecID                             string // the spec that sent it, its row's id
}

type htmlData struct {
	Title       string
	Generated   string
	Outcome     Outcome
	Line        string
	Limits      *Limits
	Suites      []htmlSuite
	Specs       []htmlSpec
	Failures    []htmlFailure
	Checks      []Check
	Unchecked   []Recorded
	Marginals   []Check
	NotRun      []NotRun
	Meta        []Field
	Compared    bool
	Baseline    string
	SpecsRan    string
	Incomplete  bool
	Transcripts []htmlTranscript
	Stacked     template.HTML
	Gantt       template.HTML
	Histogram   template.HTML
	Fleets      []htmlFleet
	Bullet      template.HTML
	Rig         *RigSummary
	RigCols     []string
	RigRows     [][]string
	RigOther    []Setting
	Frames      []htmlFrame
	FramesCut   int
	FrameCount  int
}

// WriteHTML writes report.html: one self-contained page (inline CSS and SVG,
// no scripts, no external resources) with the verdict, charts, the specs,
// what each failed spec printed, the rig and the captured frames.
func (run *Run) WriteHTML(w io.Writer) error {
	d := htmlData{
		Title:     "tap2join run report",
		Generated: time.Now().UTC().Format(time.RFC3339),
		Outcome:   run.Outcome,
		Line:      run.Outcome.Line(),
		Limits:    run.Limits,
		Checks:    run.Outcome.Checks,
		Unchecked: run.Outcome.Unchecked,
		Marginals: run.Outcome.Marginals(),
		NotRun:    run.Outcome.NotRun,
		Meta:      run.Meta.Fields(),
		Compared:  run.Outcome.Compared,
		Baseline:  run.Meta.Baseline,
		Rig:       run.Rig,
	}
	if st := run.Outcome.Status; st == StatusInterrupted || st == StatusBroken {
		d.Incomplete = true
		d.SpecsRan = specsRan(run.Reports)
	}
	specIDs := map[string]string{} // full text → the id of its first row
	for _, r := range run.Reports {
		d.Suites = append(d.Suites, htmlSuite{
			Name: r.SuiteDescription, Path: r.SuitePath, Succeeded: r.SuiteSucceeded,
			Start: r.StartTime.UTC().Format(time.RFC3339), Duration: r.RunTime.Round(time.Millisecond).String(),
			Reasons: r.SpecialSuiteFailureReasons,
		})
		for _, s := range r.SpecReports {
			if _, ok := specIDs[s.FullText()]; !ok {
				specIDs[s.FullText()] = fmt.Sprintf("spec-%d", len(d.Specs)+1)
			}
			hs := htmlSpec{
				ID:   fmt.Sprintf("spec-%d", len(d.Specs)+1),
				Name: SpecName(s), State: s.State.String(), Labels: strings.Join(s.Labels(), ", "),
				Duration: s.RunTime.Round(time.Microsecond).String(), Attempts: s.NumAttempts,
				Measurements: len(SpecMeasurements(s)), Failed: s.Failed(),
			}
			if s.Failed() {
				hs.Anchor = fmt.Sprintf("failed-%d", len(d.Failures)+1)
				d.Failures = append(d.Failures, failureOf(s, hs.Anchor))
			} else {
				d.Transcripts = append(d.Transcripts, transcriptsOf(s)...)
			}
			d.Specs = append(d.Specs, hs)
		}
	}

	rows := phaseRows(run.Reports)
	d.Stacked = template.HTML(stackedPhasesSVG(rows))
	d.Gantt = template.HTML(ganttSVG(rows))
	var ttj []float64
	var ttjLimit *Limit
	for _, r := range run.Reports {
		for _, m := range Measurements(r) {
			if m.Name != TapToFirstUplink {
				continue
			}
			if v, ok := convert(m.Value, m.Unit, "ms"); ok {
				ttj = append(ttj, v)
			}
		}
	}
	if run.Limits != nil {
		for i, l := range run.Limits.Entries {
			if l.Measurement == TapToFirstUplink && l.Board == "" && l.Spec == "" && l.Suite == "" {
				ttjLimit = &run.Limits.Entries[i]
			}
		}
	}
	d.Histogram = template.HTML(histogramSVG(fmt.Sprintf("Distribution of %s times over %d measurement(s) (ms)", TapToFirstUplink, len(ttj)), ttj, ttjLimit))
	for _, f := range Fleets(run.Reports) {
		d.Fleets = append(d.Fleets, htmlFleet{Name: f.Name, Joins: template.HTML(fleetJoinsSVG(f)), Attempts: template.HTML(fleetAttemptsSVG(f))})
	}
	var comparable []Check
	for _, c := range run.Outcome.Checks {
		if _, ok := convert(c.Measurement.Value, c.Measurement.Unit, c.Limit.Unit); ok {
			comparable = append(comparable, c)
		}
	}
	d.Bullet = template.HTML(bulletSVG(comparable))

	if run.Rig != nil {
		d.RigCols, d.RigRows = run.Rig.Boards()
		for _, s := range run.Rig.Settings {
			if !strings.HasPrefix(s.Key, "boards[") {
				d.RigOther = append(d.RigOther, s)
			}
		}
	}

	d.FrameCount = len(run.Frames)
	var t0 time.Time
	for i, f := range run.Frames {
		if i == 0 {
			t0 = f.Time
		}
		if i >= MaxFrameRows {
			d.FramesCut = len(run.Frames) - MaxFrameRows
			break
		}
		hf := htmlFrame{
			N: i + 1, Offset: "+" + f.Time.Sub(t0).Round(time.Microsecond).String(), Dir: f.Direction, MType: f.MType(),
			Freq: fmt.Sprintf("%.3f", float64(f.Frequency)/1e6), Mod: fmt.Sprintf("SF%d BW%d", f.SF, f.BW),
			RSSI: num3(f.RSSI), SNR: num3(f.SNR), Sender: f.Sender, PHY: f.PHY,
			Spec: f.Spec, SpecID: specIDs[f.Spec],
		}
		if f.CR != "" {
			hf.Mod += " " + f.CR
		}
		if f.AirtimeMS > 0 {
			hf.Airtime = num3(f.AirtimeMS) + " ms"
		}
		d.Frames = append(d.Frames, hf)
	}
	if err := reportTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("html: %w", err)
	}
	return nil
}

func failureOf(s types.SpecReport, anchor string) htmlFailure {
	f := htmlFailure{
		Name: SpecName(s), Anchor: anchor, State: s.State.String(), Message: s.Failure.Message,
		NodeType: s.Failure.FailureNodeType.String(), Panic: s.Failure.ForwardedPanic,
		GinkgoWriter: s.CapturedGinkgoWriterOutput, StdOutErr: s.CapturedStdOutErr,
	}
	if loc := s.Failure.Location; loc.FileName != "" {
		f.Location = fmt.Sprintf("%s:%d", loc.FileName, loc.LineNumber)
	}
	if af := s.Failure.AdditionalFailure; af != nil {
		f.Additional = af.Failure.Message
	}
	if pr := s.Failure.ProgressReport; !pr.IsZero() {
		f.Progress = strings.TrimSpace(pr.CurrentStepText + "\n" + pr.CapturedGinkgoWriterOutput)
	}
	entries := append(types.ReportEntries(nil), s.ReportEntries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.Before(entries[j].Time) })
	for _, e := range entries {
		v := entryDisplay(e)
		f.Entries = append(f.Entries, htmlEntry{Name: e.Name, Value: v, Time: e.Time.UTC().Format("15:04:05.000000"),
			Multiline: strings.Contains(v, "\n")})
	}
	return f
}

// transcriptsOf lists what a spec that did not fail printed: its
// GinkgoWriter output and its multi-line report entries (console
// transcripts), shown folded as preformatted text.
func transcriptsOf(s types.SpecReport) []htmlTranscript {
	var out []htmlTranscript
	name := SpecName(s)
	if s.CapturedGinkgoWriterOutput != "" {
		out = append(out, htmlTranscript{Spec: name, Name: "GinkgoWriter output", Text: s.CapturedGinkgoWriterOutput})
	}
	for _, e := range s.ReportEntries {
		if strings.HasPrefix(e.Name, EntryPrefix) {
			continue
		}
		if v := entryDisplay(e); strings.Contains(v, "\n") {
			out = append(out, htmlTranscript{Spec: name, Name: e.Name, Text: v})
		}
	}
	return out
}

// entryDisplay is a report entry's value for people: a JSON string
// unquoted (so a transcript keeps its lines), else as Ginkgo shows it.
func entryDisplay(e types.ReportEntry) string {
	if raw, ok := e.Value.GetRawValue().(string); ok {
		return raw
	}
	var s string
	if e.Value.AsJSON != "" && json.Unmarshal([]byte(e.Value.AsJSON), &s) == nil {
		return s
	}
	return entryText(e)
}
