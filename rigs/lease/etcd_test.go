package lease

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tap2join/tap2join/fixtures/require"
)

// These tests run the real etcd (Debian etcd-server, installed by make deps),
// one process per test on free loopback ports, so they can kill it, restart
// it and cut a client off it. Their time bounds are wall clock: the paths
// cross real processes (the lease TTL is 3 s).

const testTTL = 3 * time.Second

// etcdProc is a running etcd.
type etcdProc struct {
	t            *testing.T
	dir          string
	client, peer string
	cmd          *exec.Cmd
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startEtcd(t *testing.T) *etcdProc {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		require.Missing(t, require.Etcd, errors.New("etcd not installed: apt-get install etcd-server"))
	}
	e := &etcdProc{t: t, dir: t.TempDir(), client: freePort(t), peer: freePort(t)}
	e.start()
	t.Cleanup(e.kill)
	return e
}

func (e *etcdProc) endpoint() string { return "http://" + e.client }

func (e *etcdProc) start() {
	e.t.Helper()
	e.cmd = exec.Command("etcd", "--name", "t2j", "--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", e.endpoint(), "--advertise-client-urls", e.endpoint(),
		"--listen-peer-urls", "http://"+e.peer, "--initial-advertise-peer-urls", "http://"+e.peer,
		"--initial-cluster", "t2j=http://"+e.peer, "--log-level", "error")
	log, err := os.Create(filepath.Join(e.dir, "etcd.log"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	// Up when it answers a lease grant (a real round trip through raft).
	cfg := Etcd{Endpoints: []string{e.endpoint()}, DialTimeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cli, err := cfg.client()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Grant(ctx, 2)
			cancel()
			cli.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(e.dir, "etcd.log"))
			e.t.Fatalf("etcd did not come up: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond) // polling a real process's start-up
	}
}

func (e *etcdProc) kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
		e.cmd = nil
	}
}

func etcdOpts(endpoint, owner string) Options {
	return Options{Etcd: &Etcd{Endpoints: []string{endpoint}, Prefix: "/t2j-test/"}, Owner: owner, TTL: testTTL, Poll: 100 * time.Millisecond}
}

// Two holders contend: the second waits, told who holds the board, and
// takes it as soon as the first releases.
func TestEtcdContend(t *testing.T) {
	e := startEtcd(t)
	ctx := t.Context()
	a, err := Acquire(ctx, "bench-1", etcdOpts(e.endpoint(), "job A"))
	if err != nil {
		t.Fatal(err)
	}
	var told Info
	var mu sync.Mutex
	got := make(chan *Lease, 1)
	go func() {
		o := etcdOpts(e.endpoint(), "job B")
		o.Waiting = func(h Info) { mu.Lock(); told = h; mu.Unlock() }
		b, err := Acquire(ctx, "bench-1", o)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("job B took a held lease")
	case <-time.After(testTTL + time.Second): // longer than a TTL: the keep-alive holds it
	}
	mu.Lock()
	if told.Owner != "job A" || told.Host == "" || told.Expires.IsZero() {
		t.Errorf("waiting for %+v, want job A's lease", told)
	}
	mu.Unlock()
	list, err := ListEtcd(ctx, *etcdOpts(e.endpoint(), "").Etcd)
	if err != nil || len(list) != 1 || list[0].Owner != "job A" || list[0].Resource != "bench-1" {
		t.Errorf("list %+v %v", list, err)
	}
	released := time.Now()
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if d := time.Since(released); d > time.Second {
			t.Errorf("job B took %v after the release", d)
		}
		if err := b.Release(); err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("job B never got the released lease")
	}
	select {
	case <-a.Lost():
		t.Error("a released lease reported lost")
	default:
	}
}

// TestMain doubles as the holder the kill test runs in a child process
// (T2J_ETCD_HOLDER=endpoint): it takes the lease, says HELD and waits to
// be killed.
func TestMain(m *testing.M) {
	if ep := os.Getenv("T2J_ETCD_HOLDER"); ep != "" {
		if _, err := Acquire(context.Background(), "bench-1", etcdOpts(ep, "job killed")); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("HELD")
		select {}
	}
	os.Exit(m.Run())
}

// A holder killed (SIGKILL: no release) loses the board to the next job
// within the TTL: its keep-alives stop and etcd expires the key.
func TestEtcdHolderKilled(t *testing.T) {
	e := startEtcd(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "T2J_ETCD_HOLDER="+e.endpoint())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "HELD" {
		_ = cmd.Process.Kill()
		t.Fatalf("holder process: %q", line)
	}
	go io.Copy(io.Discard, out)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), testTTL+3*time.Second)
	defer cancel()
	l, err := Acquire(ctx, "bench-1", etcdOpts(e.endpoint(), "job next"))
	if err != nil {
		t.Fatalf("not taken over within the TTL: %v", err)
	}
	defer l.Release()
	if d := time.Since(killed); d > testTTL+time.Second {
		t.Errorf("taken over %v after the kill, TTL %v", d, testTTL)
	}
}

// etcd stops while a lease is held: the holder is told its lease is lost
// within two thirds of the TTL — it never goes on using the board on a
// lease it cannot renew — and once etcd is back the board is free to the
// next job after the TTL.
func TestEtcdRestartWhileHeld(t *testing.T) {
	e := startEtcd(t)
	l, err := Acquire(t.Context(), "bench-1", etcdOpts(e.endpoint(), "job A"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	e.kill()
	stopped := time.Now()
	select {
	case <-l.Lost():
		if d := time.Since(stopped); d > testTTL {
			t.Errorf("told after %v, TTL %v", d, testTTL)
		}
		if !errors.Is(l.Err(), ErrLost) || !strings.Contains(l.Err().Error(), "no keep-alive") {
			t.Errorf("Err = %v", l.Err())
		}
	case <-time.After(testTTL + 2*time.Second):
		t.Fatal("the holder was not told its lease is lost")
	}
	e.start()
	ctx, cancel := context.WithTimeout(t.Context(), 2*testTTL+5*time.Second)
	defer cancel()
	b, err := Acquire(ctx, "bench-1", etcdOpts(e.endpoint(), "job B"))
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	_ = b.Release()
}

// proxy forwards TCP to target until cut: a network partition between one
// client and etcd, on real sockets.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); p.partition() })
	return p
}

func (p *proxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
}

// A partition cuts the holder off etcd: it is told the lease is lost
// before etcd expires it, so when another job (which still reaches etcd)
// takes the board, the first has already stopped.
func TestEtcdPartition(t *testing.T) {
	e := startEtcd(t)
	px := newProxy(t, e.client)
	l, err := Acquire(t.Context(), "bench-1", etcdOpts("http://"+px.l.Addr().String(), "job cut off"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	taken := make(chan time.Time, 1)
	go func() {
		b, err := Acquire(t.Context(), "bench-1", etcdOpts(e.endpoint(), "job B"))
		if err != nil {
			t.Error(err)
			taken <- time.Time{}
			return
		}
		taken <- time.Now()
		_ = b.Release()
	}()
	px.partition()
	var lostAt time.Time
	select {
	case <-l.Lost():
		lostAt = time.Now()
	case <-time.After(testTTL + 2*time.Second):
		t.Fatal("the holder cut off etcd was not told")
	}
	select {
	case at := <-taken:
		if at.IsZero() {
			return
		}
		if !lostAt.Before(at) {
			t.Errorf("job B took the board at %v, before the holder knew (%v)", at.Format(time.StampMilli), lostAt.Format(time.StampMilli))
		}
	case <-time.After(2*testTTL + 2*time.Second):
		t.Fatal("job B never took the expired lease")
	}
}
