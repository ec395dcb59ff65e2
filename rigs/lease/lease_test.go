package lease

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// eventually polls cond (an Eventually without Gomega).
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
}

func TestAcquireReleaseAndContents(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), "board-1", Options{Dir: dir, Owner: "job 42"})
	if err != nil {
		t.Fatal(err)
	}
	i, ok, err := Inspect(dir, "board-1")
	if err != nil || !ok {
		t.Fatalf("Inspect = %v, %v", ok, err)
	}
	host, _ := os.Hostname()
	if i.Owner != "job 42" || i.PID != os.Getpid() || i.Host != host || !i.Expires.After(time.Now()) {
		t.Errorf("lease file %+v", i)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Inspect(dir, "board-1"); ok {
		t.Error("lease file left after Release")
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if _, err := Acquire(context.Background(), "../etc", Options{Dir: dir}); err == nil {
		t.Error("a resource name with a path was accepted")
	}
}

func TestContentionWaitsThenGetsIt(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(context.Background(), "reader", Options{Dir: dir, Owner: "A", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var told []Info
	_, err = Acquire(ctx, "reader", Options{Dir: dir, Owner: "B", Poll: 10 * time.Millisecond, Waiting: func(h Info) { told = append(told, h) }})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `held by "A"`) {
		t.Fatalf("contended Acquire = %v, want a deadline error naming the holder", err)
	}
	// Waiting heard of the holder once, though Acquire looked many times.
	if len(told) != 1 || told[0].Owner != "A" || told[0].PID != os.Getpid() {
		t.Errorf("Waiting told %+v, want holder A once", told)
	}
	got := make(chan *Lease, 1)
	go func() {
		b, err := Acquire(context.Background(), "reader", Options{Dir: dir, Owner: "B", Poll: 10 * time.Millisecond})
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b.Info().Owner != "B" {
			t.Errorf("owner %q", b.Info().Owner)
		}
		b.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("B did not get the lease after A released it")
	}
}

func TestRenewalKeepsItAlive(t *testing.T) {
	dir := t.TempDir()
	ttl := 150 * time.Millisecond
	a, err := Acquire(context.Background(), "gw", Options{Dir: dir, TTL: ttl}) // renews every 50 ms
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	first := a.Info().Expires
	// Renewed past its first expiry, and still held against a contender.
	eventually(t, "a renewal", 5*time.Second, func() bool { return a.Info().Expires.After(first.Add(ttl)) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
	defer cancel()
	if _, err := Acquire(ctx, "gw", Options{Dir: dir, Poll: 10 * time.Millisecond}); err == nil {
		t.Fatal("a renewed lease was taken over")
	}
	select {
	case <-a.Lost():
		t.Fatalf("lost: %v", a.Err())
	default:
	}
}

func TestExpiredLeaseIsTakenOverAndTheOldHolderLearnsIt(t *testing.T) {
	dir := t.TempDir()
	ttl := 50 * time.Millisecond
	old, err := Acquire(context.Background(), "board-2", Options{Dir: dir, Owner: "hung job", TTL: ttl, Renew: -1})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "expiry", 5*time.Second, func() bool { return time.Now().After(old.Info().Expires) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := Acquire(ctx, "board-2", Options{Dir: dir, Owner: "next job"})
	if err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	defer b.Release()
	if err := old.Renew(); !errors.Is(err, ErrLost) {
		t.Fatalf("renewing a taken-over lease = %v, want ErrLost", err)
	}
	select {
	case <-old.Lost():
	default:
		t.Fatal("Lost not closed")
	}
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}
	if i, ok, _ := Inspect(dir, "board-2"); !ok || i.Owner != "next job" {
		t.Fatalf("the old holder's Release removed the new lease: %+v %v", i, ok)
	}
}

// A lease file on another host is judged by its expiry only.
func TestForeignHostLeaseWaitsForExpiry(t *testing.T) {
	dir := t.TempDir()
	err := write(dir, Info{Resource: "board-3", Owner: "runner-7", PID: 1, Host: "other-host", Expires: time.Now().Add(time.Hour), Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, "board-3", Options{Dir: dir, Poll: 10 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "runner-7") {
		t.Fatalf("live foreign lease: %v", err)
	}
}

// TestHelperHoldLease is the child of TestCrashedHolderIsTakenOver: it takes
// a lease with a long TTL and blocks until killed.
func TestHelperHoldLease(t *testing.T) {
	dir := os.Getenv("LEASE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestCrashedHolderIsTakenOver")
	}
	if _, err := Acquire(context.Background(), "board-4", Options{Dir: dir, Owner: "doomed job", TTL: time.Hour}); err != nil {
		os.Exit(3)
	}
	os.Stdout.WriteString("held\n")
	select {}
}

// A job killed with SIGKILL (a cancelled CI job) leaves its lease file, but
// not for its TTL: its pid is gone, so the next job takes over at once.
func TestCrashedHolderIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLease$")
	cmd.Env = append(os.Environ(), "LEASE_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("helper: %q %v", buf, err)
	}
	i, ok, _ := Inspect(dir, "board-4")
	if !ok || i.PID != cmd.Process.Pid || time.Until(i.Expires) < 50*time.Minute {
		t.Fatalf("helper's lease %+v", i)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Acquire(ctx, "board-4", Options{Dir: dir, Owner: "next job"})
	if err != nil {
		t.Fatalf("lease of a killed process not taken over: %v", err)
	}
	l.Release()
}
