package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onsi/ginkgo/v2/types"
)

// LoadReports reads a Ginkgo JSON report (--json-report): a list of suite
// reports, or a single one.
func LoadReports(file string) ([]types.Report, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	rs, err := ParseReports(raw)
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", file, err)
	}
	return rs, nil
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

// Output file names written by WriteFiles.
const (
	JUnitFile    = "junit.xml"
	HTMLFile     = "report.html"
	MarkdownFile = "summary.md"
)

// WriteFiles writes junit.xml, report.html and summary.md into dir and
// returns their paths.
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
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return paths, fmt.Errorf("reports: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
