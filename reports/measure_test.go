package reports

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func TestMeasurementsRoundTripThroughReportEntries(t *testing.T) {
	m := Duration("phase write key", "board-1", 1500*time.Microsecond)
	if m.Value != 1.5 || m.Unit != "ms" {
		t.Fatalf("Duration = %+v", m)
	}
	raw, _ := json.Marshal(m)
	r := types.Report{SpecReports: types.SpecReports{{ReportEntries: types.ReportEntries{
		{Name: "unrelated", Value: types.WrapEntryValue("x")},
		{Name: EntryPrefix + m.Name, Value: types.ReportEntryValue{AsJSON: string(raw)}},
	}}}}
	got := Measurements(r)
	if len(got) != 1 || got[0] != m {
		t.Fatalf("Measurements = %+v", got)
	}
	if s := m.String(); s != "board-1: phase write key = 1.500 ms" {
		t.Fatalf("String = %q", s)
	}
}

// In a ReportAfterSuite node the entries hold the values themselves, not yet
// their JSON.
func TestMeasurementsReadInProcess(t *testing.T) {
	m := Measurement{Name: "tap to first uplink", Value: 207, Unit: "ms", Board: "board-1"}
	s := types.SpecReport{ReportEntries: types.ReportEntries{
		{Name: EntryPrefix + m.Name, Value: types.WrapEntryValue(m)},
		{Name: EntryPrefix + "p", Value: types.WrapEntryValue(&m)},
	}}
	if got := SpecMeasurements(s); len(got) != 2 || got[0] != m || got[1] != m {
		t.Fatalf("SpecMeasurements = %+v", got)
	}
}
