package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child started in its own process group (ginkgo and the
// suite binaries it starts, or t2jreport): a terminal's Ctrl-C reaches the
// driver only, which decides what the group gets.
type process interface {
	// Signal sends sig to the whole process group.
	Signal(sig syscall.Signal) error
	// Wait waits for the process: its exit code, or -1 and why when it did
	// not exit by itself (killed by a signal).
	Wait() (int, error)
}

type groupProc struct{ cmd *exec.Cmd }

// startGroup starts name in a new process group, stdin from /dev/null.
func startGroup(name string, args, env []string, stdout, stderr io.Writer) (process, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Output teed into the run's console.log goes through a pipe that a
	// suite binary ginkgo left behind may hold open: Wait must not wait
	// for it past the child's exit, or the group kill after Wait never
	// comes.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &groupProc{cmd: cmd}, nil
}

func (p *groupProc) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *groupProc) Wait() (int, error) {
	err := p.cmd.Wait()
	// Whatever ginkgo left in its group (a suite binary whose parent died)
	// goes with it.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if st, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		return -1, fmt.Errorf("was killed by %s", sigName(st.Signal()))
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return -1, err
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// forwardAs is what a caught signal becomes for ginkgo: SIGINT and SIGTERM
// are what Ginkgo handles (interrupt, run cleanups, write the report);
// SIGHUP would kill it outright, so it gets SIGTERM.
func forwardAs(sig os.Signal) syscall.Signal {
	if s, ok := sig.(syscall.Signal); ok && s == syscall.SIGINT {
		return syscall.SIGINT
	}
	return syscall.SIGTERM
}

// supervision is how a supervised process ended.
type supervision struct {
	Exit   int       // exit code, -1 if it did not exit by itself
	Err    error     // why it did not (killed by a signal, wait error)
	Caught os.Signal // first signal received while it ran (nil: none)
	Killed bool      // SIGKILLed after the grace period
}

// supervise waits for p. Every signal received meanwhile is forwarded to its
// group (forwardAs); the first one starts the grace period, after which the
// group is killed.
func supervise(p process, signals <-chan os.Signal, grace time.Duration, after func(time.Duration) <-chan time.Time, logf func(string, ...any)) supervision {
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := p.Wait()
		done <- result{c, err}
	}()
	var s supervision
	var deadline <-chan time.Time
	for {
		select {
		case r := <-done:
			s.Exit, s.Err = r.code, r.err
			return s
		case sig := <-signals:
			fwd := forwardAs(sig)
			if s.Caught == nil {
				s.Caught = sig
				deadline = after(grace)
				logf("%s: stopping the suites (%s to ginkgo's process group; killed after %s)", sigName(sig), sigName(fwd), grace)
			} else {
				logf("%s: forwarded to ginkgo again", sigName(sig))
			}
			_ = p.Signal(fwd)
		case <-deadline:
			logf("ginkgo did not stop within %s: killing its process group", grace)
			s.Killed = true
			deadline = nil
			_ = p.Signal(syscall.SIGKILL)
		}
	}
}

// sigName is "SIGINT" for syscall.SIGINT.
func sigName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		switch s {
		case syscall.SIGINT:
			return "SIGINT"
		case syscall.SIGTERM:
			return "SIGTERM"
		case syscall.SIGHUP:
			return "SIGHUP"
		case syscall.SIGKILL:
			return "SIGKILL"
		}
	}
	return sig.String()
}

// findSuites lists the suite folders (those holding *_test.go files) that
// the package patterns name: dir or dir/... (recursive).
func findSuites(patterns []string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, p := range patterns {
		root, recurse := strings.CutSuffix(p, "/...")
		root = filepath.Clean(root)
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("suites %s: not a folder", p)
		}
		if !recurse {
			if hasTests(root) {
				add(root)
			}
			continue
		}
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			if hasTests(path) {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("suites %s: %w", p, err)
		}
	}
	return dirs, nil
}

func hasTests(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	return len(m) > 0
}

// compiled is the result of compiling the suites for one run.
type compiled struct {
	Binaries []string // <suite>/<name>.<run id>.test, ready for ginkgo
	Failed   []string // suite folders that did not compile (ginkgo compiles and reports them)
}

// compileSuites builds each suite's test binary inside its own folder, under
// a name carrying the run id. Ginkgo would build <suite>/<name>.test, one
// path shared by every run in the checkout (and deleted by whichever run
// ends first); a precompiled binary runs exactly as ginkgo runs its own, in
// the suite's folder. Flags as ginkgo's (go test -c -ldflags=-w -s).
func compileSuites(ctx context.Context, goCmd, tags, id string, dirs []string, logf func(string, ...any)) compiled {
	var (
		mu  sync.Mutex
		out compiled
		wg  sync.WaitGroup
	)
	bins := make([]string, len(dirs))
	sem := make(chan struct{}, runtime.NumCPU())
	for i, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			bin := filepath.Join(dir, filepath.Base(abs(dir))+"."+id+".test")
			args := []string{"test", "-c", "-o", bin}
			if tags != "" {
				args = append(args, "-tags", tags)
			}
			pkg := filepath.ToSlash(dir)
			if !filepath.IsAbs(dir) {
				pkg = "./" + pkg
			}
			args = append(args, "-ldflags=-w -s", pkg)
			cmd := exec.CommandContext(ctx, goCmd, args...)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			err := cmd.Run()
			if ctx.Err() != nil {
				os.Remove(bin)
				return
			}
			if err != nil {
				logf("%s does not compile (ginkgo reports it)", dir)
				mu.Lock()
				out.Failed = append(out.Failed, dir)
				mu.Unlock()
				return
			}
			if _, err := os.Stat(bin); err == nil { // none when the package has no tests for these tags
				bins[i] = bin
			}
		}()
	}
	wg.Wait()
	for _, b := range bins {
		if b != "" {
			out.Binaries = append(out.Binaries, b)
		}
	}
	return out
}

// removeAll removes the run's suite binaries.
func (c compiled) removeAll() {
	for _, b := range c.Binaries {
		os.Remove(b)
	}
}

var flagLine = regexp.MustCompile(`(?m)^\s+-([A-Za-z][A-Za-z0-9_-]*)`)

// reportFlags lists the flags t2jreport's -h output names.
func reportFlags(t2jreport string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, t2jreport, "-h").CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, err
		}
	}
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("%s -h lists no flags", t2jreport)
	}
	return flags, nil
}

// ginkgoBinary is the ginkgo the module's go.mod pins (go tool -n ginkgo:
// the cached binary, built if needed), run directly so that signals reach it
// once, not once from its process group and again from `go tool`.
func ginkgoBinary(goCmd string) (string, error) {
	out, err := exec.Command(goCmd, "tool", "-n", "ginkgo").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = errors.New(oneLine(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s tool -n ginkgo: %w", goCmd, err)
	}
	p := strings.TrimSpace(string(out))
	if p == "" {
		return "", fmt.Errorf("%s tool -n ginkgo printed nothing", goCmd)
	}
	if _, err := os.Stat(p); err != nil {
		// Not in the build cache (yet, or any more): build it by running it.
		if out, err := exec.Command(goCmd, "tool", "ginkgo", "version").CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s tool ginkgo: %s", goCmd, oneLine(string(out)))
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s tool -n ginkgo: %s does not exist", goCmd, p)
		}
	}
	return p, nil
}
