package reports

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits is a limits file: the declared bounds a run's measurements must keep
// for the run to pass. One file per rig or per firmware, under
// reports/limits/<name>.yaml. The format is documented in reports/README.md.
type Limits struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Regression is the default tolerance for a change against a baseline
	// run (t2jreport -baseline), a percentage ("10%"); nil: deltas are shown,
	// not judged.
	Regression *Tolerance `yaml:"regression"`
	Entries    []Limit    `yaml:"limits"`

	// Path is where the file was read from (not part of the YAML).
	Path string `yaml:"-"`
}

// Limit bounds one measurement name, optionally for some boards only. Low and
// High are inclusive; either may be absent. A value inside the limits but in
// the marginal band passes and is reported MARGINAL.
type Limit struct {
	Measurement string    `yaml:"measurement"`
	Unit        string    `yaml:"unit"`
	Low         *float64  `yaml:"low"`
	High        *float64  `yaml:"high"`
	Marginal    *Marginal `yaml:"marginal"`
	// Board is a board name or a glob (path.Match syntax, e.g. "board-*");
	// empty means every board.
	Board string `yaml:"board"`
	// Spec narrows the limit to measurements recorded by specs whose full
	// text matches this glob ("*" any text, "?" one character, case
	// insensitive); empty means every spec. Suite narrows it to suites whose
	// directory name or description matches a glob, or one of several
	// separated by "|" ("ftm", "provisioning|lorawan"). Either also says
	// which spec records the measurement, so a skipped spec or a suite that
	// did not run makes the limit "not run" instead of missing.
	Spec  string `yaml:"spec"`
	Suite string `yaml:"suite"`
	// Regression overrides the file's regression tolerance for this limit:
	// "5%", an absolute change in the limit's unit (50), or "off".
	Regression *Tolerance `yaml:"regression"`
	// Optional: a run that never records the measurement is not an error.
	Optional    bool   `yaml:"optional"`
	Description string `yaml:"description"`

	// marginalLow/High are the resolved marginal thresholds: a passing value
	// below marginalLow or above marginalHigh is MARGINAL.
	marginalLow, marginalHigh *float64
	specRE, suiteRE           *regexp.Regexp
}

// Tolerance is how much a measurement may get worse against a baseline run
// before it counts as a regression: a percentage of the baseline value
// ("10%"), an absolute change in the limit's unit (50), or "off".
type Tolerance struct {
	Percent float64 // for "N%"
	Abs     float64 // for a plain number
	Off     bool
	IsPct   bool
	text    string
}

// UnmarshalYAML accepts "10%", 50 or "off".
func (t *Tolerance) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: regression: want \"N%%\", a number or off", n.Line)
	}
	s := strings.TrimSpace(n.Value)
	t.text = s
	switch strings.ToLower(s) {
	case "off", "none", "false":
		t.Off = true
		return nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 {
			return fmt.Errorf("line %d: regression %q: want a percentage ≥ 0", n.Line, s)
		}
		t.Percent, t.IsPct = v, true
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: regression %q: want \"N%%\", a change ≥ 0 in the limit's unit, or off", n.Line, s)
	}
	t.Abs = v
	return nil
}

func (t *Tolerance) String() string {
	switch {
	case t == nil:
		return ""
	case t.Off:
		return "off"
	case t.IsPct:
		return num(t.Percent) + "%"
	}
	return num(t.Abs)
}

// Marginal is the marginal band of a limit, written as a percentage of the
// limit span ("10%"), an absolute band width in the limit's unit (50), or
// absolute thresholds ({low: 20, high: 900}, OpenHTF's marginal_minimum and
// marginal_maximum).
type Marginal struct {
	Percent   float64  // > 0 for "N%"
	Width     float64  // > 0 for a plain number
	Low, High *float64 // absolute thresholds
	text      string
}

// UnmarshalYAML accepts "10%", 50 or {low: x, high: y}.
func (m *Marginal) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		s := strings.TrimSpace(n.Value)
		m.text = s
		if p, ok := strings.CutSuffix(s, "%"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || v <= 0 || v >= 100 {
				return fmt.Errorf("line %d: marginal %q: want a percentage between 0 and 100", n.Line, s)
			}
			m.Percent = v
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("line %d: marginal %q: want \"N%%\", a positive band width or {low, high}", n.Line, s)
		}
		m.Width = v
		return nil
	case yaml.MappingNode:
		var abs struct {
			Low  *float64 `yaml:"low"`
			High *float64 `yaml:"high"`
		}
		if err := n.Decode(&abs); err != nil {
			return fmt.Errorf("line %d: marginal: %w", n.Line, err)
		}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "low" && k != "high" {
				return fmt.Errorf("line %d: marginal: unknown key %q (want low, high)", n.Content[i].Line, k)
			}
		}
		if abs.Low == nil && abs.High == nil {
			return fmt.Errorf("line %d: marginal: give low, high or both", n.Line)
		}
		m.Low, m.High = abs.Low, abs.High
		return nil
	}
	return fmt.Errorf("line %d: marginal: want \"N%%\", a number or {low, high}", n.Line)
}

func (m *Marginal) String() string {
	if m == nil {
		return ""
	}
	if m.text != "" {
		return m.text
	}
	var parts []string
	if m.Low != nil {
		parts = append(parts, "low "+num(*m.Low))
	}
	if m.High != nil {
		parts = append(parts, "high "+num(*m.High))
	}
	return strings.Join(parts, ", ")
}

// LoadLimits reads and validates a limits file.
func LoadLimits(file string) (*Limits, error) {
	return loadFile("limits", file, ParseLimits)
}

func (l *Limits) setPath(file string) { l.Path = file }

// ParseLimits parses and validates limits YAML. Unknown keys are errors.
func ParseLimits(raw []byte) (*Limits, error) {
	var l Limits
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var errs []error
	for i := range l.Entries {
		if err := l.Entries[i].resolve(); err != nil {
			errs = append(errs, fmt.Errorf("limits[%d] (%s): %w", i, l.Entries[i].Measurement, err))
		}
	}
	if len(l.Entries) == 0 {
		errs = append(errs, errors.New("limits: the file declares no limit"))
	}
	if t := l.Regression; t != nil && !t.Off && !t.IsPct {
		errs = append(errs, fmt.Errorf("regression %q: the file's default tolerance must be a percentage (an absolute one belongs to a limit)", t.text))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &l, nil
}

// resolve validates a limit and turns its marginal band into thresholds.
func (l *Limit) resolve() error {
	if l.Measurement == "" {
		return errors.New("measurement: missing")
	}
	if l.Unit == "" {
		return errors.New("unit: missing")
	}
	if l.Low == nil && l.High == nil {
		return errors.New("give low, high or both")
	}
	if l.Low != nil && l.High != nil && *l.Low > *l.High {
		return fmt.Errorf("low %s is above high %s", num(*l.Low), num(*l.High))
	}
	if l.Board != "" {
		if _, err := path.Match(l.Board, ""); err != nil {
			return fmt.Errorf("board %q: %w", l.Board, err)
		}
	}
	if l.Spec != "" {
		l.specRE = globRE(l.Spec)
	}
	if l.Suite != "" {
		l.suiteRE = globRE(strings.Split(l.Suite, "|")...)
	}
	m := l.Marginal
	if m == nil {
		return nil
	}
	if m.Low != nil || m.High != nil {
		if m.Low != nil {
			if l.Low == nil {
				return errors.New("marginal.low needs a low limit")
			}
			if *m.Low < *l.Low || (l.High != nil && *m.Low > *l.High) {
				return fmt.Errorf("marginal.low %s is outside the limits", num(*m.Low))
			}
		}
		if m.High != nil {
			if l.High == nil {
				return errors.New("marginal.high needs a high limit")
			}
			if *m.High > *l.High || (l.Low != nil && *m.High < *l.Low) {
				return fmt.Errorf("marginal.high %s is outside the limits", num(*m.High))
			}
		}
		l.marginalLow, l.marginalHigh = m.Low, m.High
		return nil
	}
	band := m.Width
	if m.Percent > 0 {
		var span float64
		switch {
		case l.Low != nil && l.High != nil:
			span = *l.High - *l.Low
		case l.High != nil:
			span = math.Abs(*l.High)
		default:
			span = math.Abs(*l.Low)
		}
		band = span * m.Percent / 100
	}
	if l.Low != nil {
		v := *l.Low + band
		l.marginalLow = &v
	}
	if l.High != nil {
		v := *l.High - band
		l.marginalHigh = &v
	}
	return nil
}

// Applies reports whether the limit covers a measurement of that name and
// board (whatever spec recorded it; see Covers).
func (l Limit) Applies(m Measurement) bool {
	if m.Name != l.Measurement {
		return false
	}
	if l.Board == "" {
		return true
	}
	ok, _ := path.Match(l.Board, m.Board)
	return ok
}

// Covers reports whether the limit covers m recorded by the spec named spec
// (SpecName) of the suite at suitePath described as suiteDesc.
func (l Limit) Covers(m Measurement, suitePath, suiteDesc, spec string) bool {
	return l.Applies(m) && l.coversSpec(suitePath, suiteDesc, spec)
}

// coversSpec reports whether the limit's spec and suite fields admit a spec.
func (l Limit) coversSpec(suitePath, suiteDesc, spec string) bool {
	if l.specRE != nil && !l.specRE.MatchString(spec) {
		return false
	}
	if l.suiteRE != nil && !l.suiteRE.MatchString(filepath.Base(suitePath)) && !l.suiteRE.MatchString(suiteDesc) {
		return false
	}
	return true
}

// globRE turns globs ("*" any text, "?" one character) into an anchored,
// case-insensitive regular expression matching any of them.
func globRE(globs ...string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^(?:")
	for i, g := range globs {
		if i > 0 {
			b.WriteString("|")
		}
		for _, r := range strings.TrimSpace(g) {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
	}
	b.WriteString(")$")
	return regexp.MustCompile(b.String())
}

// String renders the limit's bounds, e.g. "≤ 1000 ms" or "-120 … -30 dBm".
func (l Limit) String() string {
	var s string
	switch {
	case l.Low != nil && l.High != nil:
		s = fmt.Sprintf("%s … %s %s", num(*l.Low), num(*l.High), l.Unit)
	case l.High != nil:
		s = fmt.Sprintf("≤ %s %s", num(*l.High), l.Unit)
	default:
		s = fmt.Sprintf("≥ %s %s", num(*l.Low), l.Unit)
	}
	if l.Board != "" {
		s += " (board " + l.Board + ")"
	}
	if l.Suite != "" {
		s += " (suite " + l.Suite + ")"
	}
	if l.Spec != "" {
		s += " (spec " + l.Spec + ")"
	}
	return s
}

// MarginalString renders the resolved marginal thresholds, or "".
func (l Limit) MarginalString() string {
	var parts []string
	if l.marginalLow != nil {
		parts = append(parts, "< "+num(*l.marginalLow))
	}
	if l.marginalHigh != nil {
		parts = append(parts, "> "+num(*l.marginalHigh))
	}
	if len(parts) == 0 {
		return ""
	}
	return "marginal " + strings.Join(parts, " or ") + " " + l.Unit
}

// FindLimits locates a limits file. A name without a slash or ".yaml"
// ("emulated") means reports/limits/<name>.yaml; a relative path is tried in
// the working directory and then from the module root, so suites run from
// their own directory can say "reports/limits/emulated.yaml".
func FindLimits(name string) (string, error) {
	if name == "" {
		return "", errors.New("limits: no limits file named")
	}
	p := name
	if !strings.ContainsRune(name, '/') && !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
		p = filepath.Join("reports", "limits", name+".yaml")
	}
	if _, err := os.Stat(p); err == nil || filepath.IsAbs(p) {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("limits: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			q := filepath.Join(dir, p)
			if _, err := os.Stat(q); err != nil {
				return "", fmt.Errorf("limits: limits file %q not found (looked for %s)", name, q)
			}
			return q, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("limits: limits file %q not found", name)
		}
		dir = parent
	}
}

// num formats a number without trailing zeros.
func num(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
