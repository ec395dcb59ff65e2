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
