package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Run statuses (run.json "status").
const (
	statusCompleted   = "completed"   // ginkgo ran to its end (whatever the specs did)
	statusInterrupted = "interrupted" // a signal stopped the run
	statusBroken      = "broken"      // the run could not produce a report (ginkgo did not start, died, wrote none)
)

// runRecord is run.json, the run's metadata beside Ginkgo's report.json; the
// contract with reports/ (t2jreport -run reads it).
type runRecord struct {
	RunID             string  `json:"run_id"`
	Mode              string  `json:"mode"`
	Status            string  `json:"status"`
	Detail            string  `json:"detail"`
	Started           string  `json:"started"`
	Finished          string  `json:"finished"`
	DurationS         float64 `json:"duration_s"`
	GinkgoExit        int     `json:"ginkgo_exit"`
	Rig               string  `json:"rig"`
	RigName           string  `json:"rig_name"`
	Limits            string  `json:"limits"`
	LimitsSHA256      string  `json:"limits_sha256"`
	GitCommit         string  `json:"git_commit"`
	GitDirty          bool    `json:"git_dirty"`
	Host              string  `json:"host"`
	GoVersion         string  `json:"go_version"`
	PcscdVersion      string  `json:"pcscd_version"`
	ChirpstackVersion string  `json:"chirpstack_version"`
	LabelFilter       string  `json:"label_filter"`
	Baseline          string  `json:"baseline"`
}

// writeRunRecord writes dir/run.json (to a temporary name, then renamed).
func writeRunRecord(dir string, r runRecord) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // label filters hold && and <
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "run.json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// environment is what run.json says about where the run happened; each
// field is best effort ("" when unknown).
type environment struct {
	GitCommit, GoVersion, Pcscd, ChirpStack, Host string
	GitDirty                                      bool
}

// probe collects the environment: git, go, pcscd, ChirpStack.
func probe(ctx context.Context, goCmd string, in inputs) environment {
	var e environment
	e.Host, _ = os.Hostname()
	e.GitCommit = output(ctx, "git", "rev-parse", "HEAD")
	if e.GitCommit != "" {
		// Untracked files count: the build compiles them too.
		e.GitDirty = output(ctx, "git", "status", "--porcelain") != ""
	}
	e.GoVersion = output(ctx, goCmd, "env", "GOVERSION")
	e.Pcscd = pcscdVersion(ctx)
	e.ChirpStack = chirpstackVersion(in, ".")
	return e
}

// output runs a command briefly and returns its trimmed stdout ("" on error).
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

var pcscdVersionLine = regexp.MustCompile(`version ([0-9][0-9A-Za-z.+~-]*[0-9A-Za-z])`)

// pcscdVersion asks pcscd (on PATH, else /usr/sbin) for its version:
// "pcsc-lite version 1.9.9." → "1.9.9".
func pcscdVersion(ctx context.Context) string {
	p, err := exec.LookPath("pcscd")
	if err != nil {
		p = "/usr/sbin/pcscd"
		if _, err := os.Stat(p); err != nil {
			return ""
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, p, "--version").CombinedOutput()
	return parsePcscdVersion(out)
}

func parsePcscdVersion(out []byte) string {
	line, _, _ := bytes.Cut(out, []byte("\n"))
	if m := pcscdVersionLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

// chirpstackVersion says which network server the rig runs against: the
// embedded twin speaks the ChirpStack API version this module is built
// against (go.mod); upstream containers run the pinned image
// (fixtures/containers DefaultImages); an external server is not asked.
func chirpstackVersion(in inputs, root string) string {
	api := goModVersion(filepath.Join(root, "go.mod"), "github.com/chirpstack/chirpstack/api/go/v4")
	twin := ""
	if api != "" {
		twin = "embedded twin, ChirpStack API " + api
	}
	switch in.Network {
	case "embedded":
		return twin
	case "containers":
		if in.ImageSet == "upstream" {
			return pinnedImage(filepath.Join(root, "fixtures", "containers", "containers.go"))
		}
		if twin != "" {
			return "local image of the " + twin
		}
	}
	return ""
}

// goModVersion is module's version in a go.mod's require lines.
func goModVersion(gomod, module string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fs) >= 2 && fs[0] == module {
			return fs[1]
		}
	}
	return ""
}

var chirpstackImage = regexp.MustCompile(`ChirpStack:\s*"(chirpstack/chirpstack:[^"]+)"`)

// pinnedImage reads DefaultImages.ChirpStack from fixtures/containers (read
// as text: importing the package would link testcontainers into the driver).
func pinnedImage(src string) string {
	b, err := os.ReadFile(src)
	if err != nil {
		return ""
	}
	if m := chirpstackImage.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}
