// Package lease holds exclusive, expiring leases on shared bench hardware: a
// board, a reader, a gateway that several CI jobs (or several `ginkgo -p`
// processes) could reach at once.
//
// A lease is a small JSON file, <dir>/<resource>.lease, naming its owner, pid,
// host and expiry. It is acquired with a context (waiting while someone else
// holds it), renewed in the background while held, and released at the end.
// A lease whose expiry has passed, or whose owner process is gone (same
// host), is taken over — so a cancelled or killed job never leaves a board
// locked for longer than its time-to-live, and usually not at all (users
// asking for exactly that: labgrid-project/labgrid issues #1739, auto-release
// after a duration, and #1415, a timeout on reserve).
//
// For a lab whose runner hosts share benches, Options.Etcd holds leases in
// etcd instead (etcd.go): one key per resource bound to an etcd lease.
//
// Reads and writes of a lease file happen under flock(2) on <resource>.lock,
// held for microseconds only; the kernel drops it when a process dies, so the
// lock itself is never stale. The lease directory may be shared between
// hosts (NFS) as far as the TTL goes; dead-owner detection works on the same
// host only.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// DirEnv names the lease directory; default DefaultDir, or a directory under
// os.TempDir() when that is not writable.
const DirEnv = "TAP2JOIN_LEASE_DIR"

// DefaultDir is the conventional place for device locks (FHS /run/lock).
const DefaultDir = "/run/lock/tap2join"

// Info is what a lease file holds.
type Info struct {
	Resource string    `json:"resource"`
	Owner    string    `json:"owner"` // free text: CI job, user, spec
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
	Token    string    `json:"token"` // random per acquisition: renewals check it
}

func (i Info) String() string {
	return fmt.Sprintf("%s held by %q (pid %d on %s) until %s", i.Resource, i.Owner, i.PID, i.Host, i.Expires.Format(time.RFC3339))
}

// Options tune Acquire. The zero value is usable.
type Options struct {
	// Dir is the lease directory ("" = $TAP2JOIN_LEASE_DIR, else DefaultDir,
	// else os.TempDir()/tap2join-leases).
	Dir string
	// Owner says who holds the lease, for whoever waits ("" = user@host pid).
	Owner string
	// TTL is how long a lease lives without renewal (default 30 s). A job
	// that dies is replaced at the latest TTL later.
	TTL time.Duration
	// Renew is the renewal period while held (default TTL/3; < 0 disables
	// renewal, for tests).
	Renew time.Duration
	// Poll is how often a waiting Acquire looks again (default 250 ms).
	Poll time.Duration
	// Waiting, if set, is called when Acquire finds the lease held by
	// another owner, and again each time the holder changes, so a job can
	// say what it waits for.
	Waiting func(holder Info)
	// Etcd, if set, holds the lease in etcd instead of a file (etcd.go):
	// one lease for every runner host of a lab. Dir is then unused.
	Etcd *Etcd
}

// ErrLost reports that a held lease expired and was taken over by another
// owner (renewal came too late), or that its file vanished.
var ErrLost = errors.New("lease: lost")

// Lease is a held lease.
type Lease struct {
	dir  string
	info Info
	ttl  time.Duration
	etcd *etcdHold // the etcd backend; nil for a file

	mu       sync.Mutex
	released bool
	lostErr  error
	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

var resourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Acquire takes the lease on resource (a name like "nucleo-wl55-1" or
// "reader-acr1552-0"), waiting while another live owner holds it, until ctx
// ends. The error then names the holder.
func Acquire(ctx context.Context, resource string, opts Options) (*Lease, error) {
	if !resourceName.MatchString(resource) {
		return nil, fmt.Errorf("lease: resource %q: want letters, digits, '.', '_', '-'", resource)
	}
	var dir string
	if opts.Etcd == nil {
		d, err := leaseDir(opts.Dir)
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Renew == 0 {
		opts.Renew = opts.TTL / 3
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	host, _ := os.Hostname()
	if opts.Owner == "" {
		opts.Owner = fmt.Sprintf("%s@%s pid %d", os.Getenv("USER"), host, os.Getpid())
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("lease: token: %w", err)
	}
	want := Info{Resource: resource, Owner: opts.Owner, PID: os.Getpid(), Host: host, Token: hex.EncodeToString(tok[:])}
	if opts.Etcd != nil {
		return acquireEtcd(ctx, want, opts)
	}
	var told string // the holder's token Waiting was last told about
	for {
		holder, ok, err := tryAcquire(dir, &want, opts.TTL)
		if err != nil {
			return nil, err
		}
		if ok {
			l := &Lease{dir: dir, info: want, ttl: opts.TTL, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
			if opts.Renew > 0 {
				go l.renewLoop(opts.Renew)
			} else {
				close(l.done)
			}
			return l, nil
		}
		if opts.Waiting != nil && holder.Token != told {
			told = holder.Token
			opts.Waiting(holder)
		}
		wait := min(opts.Poll, max(time.Until(holder.Expires), time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lease: %s: %w", holder, ctx.Err())
		case <-t.C:
		}
	}
}

// tryAcquire takes the lease if it is free, expired or held by a dead
// process; otherwise it returns the holder.
func tryAcquire(dir string, want *Info, ttl time.Duration) (Info, bool, error) {
	var holder Info
	var took bool
	err := locked(dir, want.Resource, func() error {
		cur, err := read(dir, want.Resource)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		case cur.Token == want.Token:
		case time.Now().After(cur.Expires):
		case !alive(cur):
		default:
			holder = cur
			return nil
		}
		now := time.Now()
		want.Acquired, want.Expires = now, now.Add(ttl)
		took = true
		return write(dir, *want)
	})
	return holder, took, err
}

// Info returns the lease as last written.
func (l *Lease) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Lost is closed when the lease was lost (see ErrLost): whatever the holder
// does with the resource from then on is no longer exclusive.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns why the lease was lost, or nil.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

// Renew pushes the expiry TTL into the future. It fails with ErrLost if the
// lease was taken over or removed meanwhile.
func (l *Lease) Renew() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return errors.New("lease: renew after release")
	}
	if l.lostErr != nil {
		return l.lostErr
	}
	if l.etcd != nil {
		l.mu.Unlock()
		err := l.renewEtcd()
		l.mu.Lock()
		return err
	}
	err := locked(l.dir, l.info.Resource, func() error {
		cur, err := read(l.dir, l.info.Resource)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s: lease file removed", ErrLost, l.info.Resource)
		}
		if err != nil {
			return err
		}
		if cur.Token != l.info.Token {
			return fmt.Errorf("%w: %s", ErrLost, cur)
		}
		next := l.info
		next.Expires = time.Now().Add(l.ttl)
		if err := write(l.dir, next); err != nil {
			return err
		}
		l.info = next
		return nil
	})
	if errors.Is(err, ErrLost) {
		l.lostErr = err
		close(l.lost)
	}
	return err
}

func (l *Lease) renewLoop(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Renew(); errors.Is(err, ErrLost) {
				return
			}
			// Other errors (a full disk, an NFS hiccup) are retried on the
			// next tick; the TTL is three periods.
		}
	}
}

// Release gives the lease up (removing its file if it is still ours). It is
// safe to call more than once.
func (l *Lease) Release() error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	close(l.stop)
	l.mu.Unlock()
	if l.etcd != nil {
		return l.releaseEtcd()
	}
	<-l.done
	return locked(l.dir, l.info.Resource, func() error {
		cur, err := read(l.dir, l.info.Resource)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.Token != l.info.Token {
			return nil // taken over after we expired: not ours to remove
		}
		if err := os.Remove(leasePath(l.dir, l.info.Resource)); err != nil {
			return fmt.Errorf("lease: release %s: %w", l.info.Resource, err)
		}
		return nil
	})
}

// Inspect returns the current lease on resource, if any (for "who has the
// board?" tooling and tests).
func Inspect(dir, resource string) (Info, bool, error) {
	dir, err := leaseDir(dir)
	if err != nil {
		return Info{}, false, err
	}
	var cur Info
	var found bool
	err = locked(dir, resource, func() error {
		c, err := read(dir, resource)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		cur, found = c, err == nil
		return err
	})
	return cur, found, err
}

func leasePath(dir, resource string) string { return filepath.Join(dir, resource+".lease") }

func read(dir, resource string) (Info, error) {
	b, err := os.ReadFile(leasePath(dir, resource))
	if err != nil {
		return Info{}, err
	}
	var i Info
	if err := json.Unmarshal(b, &i); err != nil {
		// A torn or foreign file: treat as expired rather than wedge the bench.
		return Info{Resource: resource, Owner: "(unreadable lease file)"}, nil
	}
	return i, nil
}

// write replaces the lease file atomically (temp file + rename).
func write(dir string, i Info) error {
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+i.Resource+".lease-*")
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("lease: write %s: %w", i.Resource, err)
	}
	if err := os.Rename(tmp.Name(), leasePath(dir, i.Resource)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("lease: write %s: %w", i.Resource, err)
	}
	return nil
}

func leaseDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(DirEnv)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o1777); err != nil {
			return "", fmt.Errorf("lease: directory: %w", err)
		}
		return dir, nil
	}
	for _, d := range []string{DefaultDir, filepath.Join(os.TempDir(), "tap2join-leases")} {
		if err := os.MkdirAll(d, 0o1777); err == nil && writable(d) {
			return d, nil
		}
	}
	return "", errors.New("lease: no writable lease directory (set " + DirEnv + ")")
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// alive reports whether the lease's owner process still runs. Only a
// process on this host can be checked; others count as alive (the TTL
// decides).
func alive(i Info) bool {
	host, _ := os.Hostname()
	if i.PID <= 0 || !strings.EqualFold(i.Host, host) {
		return true
	}
	return processAlive(i.PID)
}

// List returns every lease held in a lease directory ("" as for Acquire),
// expired ones included (their Expires says so).
func List(dir string) ([]Info, error) {
	dir, err := leaseDir(dir)
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.lease"))
	if err != nil {
		return nil, fmt.Errorf("lease: list %s: %w", dir, err)
	}
	var out []Info
	for _, n := range names {
		i, ok, err := Inspect(dir, strings.TrimSuffix(filepath.Base(n), ".lease"))
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}
