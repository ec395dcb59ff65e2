package reports

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// RigSummary is what a report shows of the rig file a run used: its name and
// every setting as a flat key path ("boards[0].nfc.transport"), with values
// of credential-like keys (token, password, secret, key) replaced by
// "(set)". The file is read as plain YAML, not validated, so a report can be
// written for any rig; "$VAR" references are shown as written, never
// expanded.
type RigSummary struct {
	Name     string
	Path     string
	Settings []Setting
}

// Setting is one flattened rig setting.
type Setting struct{ Key, Value string }

// urlUser matches the user information of a URL, which may hold a password.
var urlUser = regexp.MustCompile(`://[^/@\s]+@`)

var secretKey = regexp.MustCompile(`(?i)(token|password|passwd|secret|credential|(^|_)key|appkey|nwkkey)$`)

// LoadRigSummary reads a rig file for a report.
func LoadRigSummary(file string) (*RigSummary, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rig: %w", err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("rig: %s: %w", file, err)
	}
	s := &RigSummary{Path: file}
	if len(n.Content) > 0 {
		flatten(&s.Settings, "", n.Content[0])
	}
	for _, kv := range s.Settings {
		if kv.Key == "name" {
			s.Name = kv.Value
		}
	}
	return s, nil
}

func flatten(out *[]Setting, prefix string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			v := n.Content[i+1]
			if secretKey.MatchString(k) && v.Kind == yaml.ScalarNode {
				val := "(set)"
				if v.Value == "" {
					val = "(empty)"
				}
				*out = append(*out, Setting{key, val})
				continue
			}
			flatten(out, key, v)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			flatten(out, fmt.Sprintf("%s[%d]", prefix, i), c)
		}
	case yaml.AliasNode:
		flatten(out, prefix, n.Alias)
	default:
		*out = append(*out, Setting{prefix, urlUser.ReplaceAllString(n.Value, "://(redacted)@")})
	}
}

// Boards groups the settings under boards[i] by board, for a table: one row
// per board, columns sorted by key.
func (s *RigSummary) Boards() (cols []string, rows [][]string) {
	byIdx := map[string]map[string]string{}
	var order []string
	colSet := map[string]bool{}
	for _, kv := range s.Settings {
		rest, ok := strings.CutPrefix(kv.Key, "boards[")
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, "].")
		if !ok {
			continue
		}
		if byIdx[idx] == nil {
			byIdx[idx] = map[string]string{}
			order = append(order, idx)
		}
		byIdx[idx][field] = kv.Value
		colSet[field] = true
	}
	for c := range colSet {
		cols = append(cols, c)
	}
	sort.Slice(cols, func(i, j int) bool {
		if (cols[i] == "name") != (cols[j] == "name") {
			return cols[i] == "name"
		}
		return cols[i] < cols[j]
	})
	for _, idx := range order {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = byIdx[idx][c]
		}
		rows = append(rows, row)
	}
	return cols, rows
}
