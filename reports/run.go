package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/onsi/ginkgo/v2/types"
)

// LoadReports reads a Ginkgo JSON report (--json-report): a list of suite
// reports, or a single one.
func LoadReports(file string) ([]types.Report, error) {
	return loadFile("report", file, ParseReports)
}

// loadFile reads file and parses it; errors start with what, and a parse
// error names the file too. A document that keeps its path (setPath) is
// told file.
func loadFile[T any](what, file string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	raw, err := os.ReadFile(file)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	v, err := parse(raw)
	if err != nil {
		return zero, fmt.Errorf("%s: %s: %w", what, file, err)
	}
	if p, ok := any(v).(interface{ setPath(string) }); ok {
		p.setPath(file)
	}
	return v, nil
}

// ParseReports parses a Ginkgo JSON report.
func ParseReports(raw []byte) ([]types.Report, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty file")
	}
	var rs []types.Report
	if raw[0] == '{' {
		var r types.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("not a Ginkgo JSON report: %w", err)
		}
		rs = []types.Report{r}
	} else if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("not a Ginkgo JSON report: %w", err)
	}
	if len(rs) == 0 {
		return nil, errors.New("the report holds no suite")
	}
	return rs, nil
}

// ReadReports reads a Ginkgo JSON report as far as it can: for a report cut
// short (a run killed while writing it) it returns the suites read before
// the cut with an error saying so; for a missing or unreadable one, no suite
// and the error.
func ReadReports(file string) ([]types.Report, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	rs, err := ParseReports(raw)
	if err == nil {
		return rs, nil
	}
	if part := salvageReports(raw); len(part) > 0 {
		return part, fmt.Errorf("report: %s is partial: only its first %d suite%s could be read: %w", file, len(part), plural(len(part)), err)
	}
	return nil, fmt.Errorf("report: %s: %w", file, err)
}

// salvageReports decodes the complete suite reports at the start of a
// truncated JSON list.
func salvageReports(raw []byte) []types.Report {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil
	}
	var out []types.Report
	for dec.More() {
		var r types.Report
		if err := dec.Decode(&r); err != nil {
			break
		}
		out = append(out, r)
	}
	return out
}

// Output file names written by WriteFiles.
const (
	JUnitFile    = "junit.xml"
	HTMLFile     = "report.html"
	MarkdownFile = "summary.md"
)

// OutputFiles are the files WriteFiles writes.
var OutputFiles = []string{JUnitFile, HTMLFile, MarkdownFile}

// RemoveOutputs deletes the outputs of an earlier run from dir, so a run
// that cannot write its own never leaves another's behind.
func RemoveOutputs(dir string) error {
	var errs []error
	for _, f := range OutputFiles {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("reports: %w", err))
		}
	}
	return errors.Join(errs...)
}

// WriteFiles writes junit.xml, report.html and summary.md into dir and
// returns their paths. Each file is written under a temporary name and
// renamed into place, so a reader never sees half a report.
func (run *Run) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	var paths []string
	for _, out := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{JUnitFile, func(b *bytes.Buffer) error { return run.WriteJUnit(b) }},
		{HTMLFile, func(b *bytes.Buffer) error { return run.WriteHTML(b) }},
		{MarkdownFile, func(b *bytes.Buffer) error { return run.WriteMarkdown(b) }},
	} {
		var b bytes.Buffer
		if err := out.write(&b); err != nil {
			return paths, err
		}
		p := filepath.Join(dir, out.name)
		tmp := filepath.Join(dir, "."+out.name+".tmp")
		if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
			return paths, fmt.Errorf("reports: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return paths, fmt.Errorf("reports: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
