// Package reports turns a run into records people and CI can use. Ginkgo's
// JSON report is the record of truth; measurements are added to it as report
// entries by Record and read back by Measurements.
package reports

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// EntryPrefix marks report entries that are measurements.
const EntryPrefix = "measurement: "

// Measurement is one named value with its unit, e.g. the wall time of the
// "write key" phase for board-1.
type Measurement struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Board string  `json:"board,omitempty"`
	// Start is when the measured interval began, for timelines; zero when
	// unknown (reports then infer it from the report entry's time).
	Start time.Time `json:"start,omitzero"`
}

func (m Measurement) String() string {
	s := fmt.Sprintf("%s = %.3f %s", m.Name, m.Value, m.Unit)
	if m.Board != "" {
		s = m.Board + ": " + s
	}
	return s
}

// Duration makes a measurement in milliseconds.
func Duration(name, board string, d time.Duration) Measurement {
	return Measurement{Name: name, Value: float64(d) / float64(time.Millisecond), Unit: "ms", Board: board}
}

// Record adds m to the running spec's report (shown in verbose output and
// kept in the JSON report).
func Record(m Measurement) {
	ginkgo.AddReportEntry(EntryPrefix+m.Name, m)
}

// Measurements returns every measurement recorded in a report, in order.
func Measurements(r types.Report) []Measurement {
	var out []Measurement
	for _, s := range r.SpecReports {
		out = append(out, SpecMeasurements(s)...)
	}
	return out
}

// SpecMeasurements returns the measurements recorded by one spec.
func SpecMeasurements(s types.SpecReport) []Measurement {
	var out []Measurement
	for _, e := range s.ReportEntries {
		if m, ok := entryMeasurement(e); ok {
			out = append(out, m)
		}
	}
	return out
}

// entryMeasurement decodes a measurement report entry.
func entryMeasurement(e types.ReportEntry) (Measurement, bool) {
	return entryValue[Measurement](e, EntryPrefix)
}

// entryValue decodes the value of a report entry named with prefix (a
// measurement, a fleet) as a T.
func entryValue[T any](e types.ReportEntry, prefix string) (T, bool) {
	var zero T
	if !strings.HasPrefix(e.Name, prefix) {
		return zero, false
	}
	// In process (a ReportAfterSuite node) the entry holds the value itself;
	// read back from a JSON report it holds its JSON.
	switch v := e.Value.GetRawValue().(type) {
	case T:
		return v, true
	case *T:
		if v != nil {
			return *v, true
		}
	}
	js := e.Value.AsJSON
	if js == "" {
		b, err := json.Marshal(e.Value.GetRawValue())
		if err != nil {
			return zero, false
		}
		js = string(b)
	}
	var v T
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		return zero, false
	}
	return v, true
}
