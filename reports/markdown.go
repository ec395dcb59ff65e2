package reports

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes summary.md: the verdict line, the measurements
// against their limits, the violations and the failed specs. It suits a CI
// job summary (e.g. $GITHUB_STEP_SUMMARY) or a merge request comment.
func (run *Run) WriteMarkdown(w io.Writer) error {
	o := run.Outcome
	var b strings.Builder
	icon := map[Status]string{StatusPass: "✅", StatusMarginal: "⚠️", StatusFail: "❌", StatusInterrupted: "⏹️", StatusBroken: "🛑"}[o.Status]
	fmt.Fprintf(&b, "# tap2join run: %s %s\n\n", icon, o.Status)
	fmt.Fprintf(&b, "**Verdict: %s**\n\n", mdEscape(o.Line()))
	if o.LimitsPath != "" {
		fmt.Fprintf(&b, "Limits: `%s`", o.LimitsPath)
		if run.Rig != nil {
			fmt.Fprintf(&b, " · rig: `%s` (%s)", run.Rig.Name, run.Rig.Path)
		}
		b.WriteString("\n\n")
	}
	b.WriteString("## Run\n\n| | |\n|---|---|\n")
	for _, f := range run.Meta.Fields() {
		fmt.Fprintf(&b, "| %s | %s |\n", mdCell(f.Label), mdCell(f.Value))
	}
	b.WriteString("\n")
	if o.Status == StatusInterrupted || o.Status == StatusBroken {
		// An indented block: spec texts stay as written.
		fmt.Fprintf(&b, "## The run did not complete\n\n%s: %s\n\n%s\n\n", o.Status, mdEscape(o.Detail), indent(specsRan(run.Reports), "    "))
	}
	if len(o.Violations) > 0 {
		b.WriteString("## Violations\n\n")
		for _, v := range o.Violations {
			fmt.Fprintf(&b, "- **%s**: %s\n", v.Kind, mdEscape(v.Message))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Measurements\n\n")
	if o.Compared {
		fmt.Fprintf(&b, "Compared with the baseline run `%s` (same spec, measurement and board).\n\n", run.Meta.Baseline)
	}
	cmpHead, cmpSep := "", ""
	if o.Compared {
		cmpHead, cmpSep = " Baseline | Δ |", "---:|---|"
	}
	cmp := func(d *Delta) string {
		if !o.Compared {
			return ""
		}
		if d == nil {
			return " — | not in baseline |"
		}
		t := d.Text()
		if d.Regression {
			t = "**" + t + ": REGRESSION (tolerance " + d.Tolerance + ")**"
		}
		return fmt.Sprintf(" %s %s | %s |", num3(d.Base), mdCell(d.Unit), t)
	}
	if len(o.Checks) == 0 && len(o.Unchecked) == 0 {
		b.WriteString("No measurements were recorded.\n\n")
	} else {
		fmt.Fprintf(&b, "| Measurement | Board | Spec | Value |%s Limit | Result |\n|---|---|---|---:|%s---|---|\n", cmpHead, cmpSep)
		for _, c := range o.Checks {
			m := c.Measurement
			res := string(c.Status)
			if c.Reason != "" {
				res += ": " + c.Reason
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s |%s %s | %s |\n", mdCell(m.Name), mdCell(m.Board), mdCell(c.Spec), num3(m.Value), mdCell(m.Unit), cmp(c.Baseline), mdCell(limitText(c.Limit)), mdCell(res))
		}
		for _, m := range o.Unchecked {
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s |%s — | not judged |\n", mdCell(m.Name), mdCell(m.Board), mdCell(m.Spec), num3(m.Value), mdCell(m.Unit), cmp(m.Baseline))
		}
		b.WriteString("\n")
	}
	if len(o.NotRun) > 0 {
		b.WriteString("## Not run\n\nLimits whose measurement's spec did not run (not violations):\n\n| Measurement | Limit | Result |\n|---|---|---|\n")
		for _, n := range o.NotRun {
			fmt.Fprintf(&b, "| %s | %s | NOT RUN: %s |\n", mdCell(n.Limit.Measurement), mdCell(limitText(n.Limit)), mdCell(n.Reason))
		}
		b.WriteString("\n")
	}
	var failed []string
	for _, r := range run.Reports {
		for _, s := range r.SpecReports {
			if !s.Failed() {
				continue
			}
			line := fmt.Sprintf("- **%s** %s", s.State, mdEscape(SpecName(s)))
			if loc := s.Failure.Location; loc.FileName != "" {
				line += fmt.Sprintf(" (`%s:%d`)", loc.FileName, loc.LineNumber)
			}
			if msg := strings.TrimSpace(failureMessage(s)); msg != "" {
				line += "\n\n  ```\n" + indent(msg, "  ") + "\n  ```"
			}
			failed = append(failed, line)
		}
	}
	b.WriteString("## Failed specs\n\n")
	if len(failed) == 0 {
		b.WriteString("None.\n")
	} else {
		b.WriteString(strings.Join(failed, "\n") + "\n")
	}
	if len(o.Flaky) > 0 {
		b.WriteString("\n## Passed only after retries\n\n")
		for _, f := range o.Flaky {
			fmt.Fprintf(&b, "- %s\n", mdEscape(f))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("markdown: %w", err)
	}
	return nil
}

func indent(s, p string) string {
	return p + strings.ReplaceAll(s, "\n", "\n"+p)
}

// mdEscape keeps text from turning into Markdown or HTML markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(mdEscape(s), "|", `\|`), "\n", " ")
}
