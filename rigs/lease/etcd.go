package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd backend (Options.Etcd): leases shared by every runner host of a
// lab, on the coordination service labs already run. Each resource is one
// key, <prefix><resource>, holding the holder's Info as JSON and bound to an
// etcd lease of the TTL: created only if absent (a transaction on its
// CreateRevision), kept alive by the client while held, revoked on Release.
// A holder that dies stops its keep-alives and etcd deletes the key when the
// TTL runs out, so another host takes the board over then — flock over NFS
// cannot promise that.
//
// Safety first: a holder whose keep-alives go unacknowledged for two thirds
// of the TTL (etcd down, restarting, or cut off by a partition) is told its
// lease is lost (Lost, Err) and stops renewing it, before etcd could have
// expired it and given the board to someone else; etcd revoking the lease,
// or the key being deleted or overwritten, is a loss too.

// Etcd selects and configures the etcd backend.
type Etcd struct {
	// Endpoints are the etcd client URLs, e.g. http://etcd.lab:2379.
	Endpoints []string
	// Prefix is prepended to resource names (default "/tap2join/leases/").
	Prefix string
	// DialTimeout bounds connecting (default 5 s).
	DialTimeout time.Duration
}

// EndpointsEnv names a comma-separated list of etcd endpoints (the rig
// file's lease.endpoints override it).
const EndpointsEnv = "TAP2JOIN_ETCD_ENDPOINTS"

func (e *Etcd) prefix() string {
	if e.Prefix == "" {
		return "/tap2join/leases/"
	}
	return e.Prefix
}

func (e *Etcd) client() (*clientv3.Client, error) {
	if len(e.Endpoints) == 0 {
		return nil, errors.New("lease: etcd: no endpoints")
	}
	d := e.DialTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: d, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("lease: etcd %s: %w", strings.Join(e.Endpoints, ","), err)
	}
	return cli, nil
}

// etcdHold is a lease held in etcd.
type etcdHold struct {
	cli    *clientv3.Client
	id     clientv3.LeaseID
	key    string
	cancel context.CancelFunc // the keep-alive and watch
}

// acquireEtcd is Acquire on etcd.
func acquireEtcd(ctx context.Context, want Info, opts Options) (*Lease, error) {
	e := opts.Etcd
	cli, err := e.client()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = cli.Close()
		}
	}()
	key := e.prefix() + want.Resource
	ttlSec := max(int64(math.Ceil(opts.TTL.Seconds())), 2) // etcd's minimum lease TTL is ≈ 1.5 s
	var told string
	for {
		granted := time.Now()
		g, err := cli.Grant(ctx, ttlSec)
		if err != nil {
			return nil, fmt.Errorf("lease: %s: etcd grant: %w", want.Resource, err)
		}
		now := granted
		want.Acquired, want.Expires = now, now.Add(time.Duration(ttlSec)*time.Second)
		val, _ := json.Marshal(want)
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(g.ID))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			revoke(cli, g.ID)
			return nil, fmt.Errorf("lease: %s: etcd: %w", want.Resource, err)
		}
		if resp.Succeeded {
			l, err := holdEtcd(cli, g.ID, key, want, time.Duration(ttlSec)*time.Second, now, resp.Header.Revision)
			if err != nil {
				revoke(cli, g.ID)
				return nil, err
			}
			ok = true
			return l, nil
		}
		revoke(cli, g.ID) // not ours: the granted lease goes
		holder, rev := Info{Resource: want.Resource, Owner: "unknown"}, resp.Header.Revision
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			_ = json.Unmarshal(kvs[0].Value, &holder)
			holder.Expires = leaseExpiry(ctx, cli, clientv3.LeaseID(kvs[0].Lease), holder.Expires)
		}
		if opts.Waiting != nil && holder.Token != told {
			told = holder.Token
			opts.Waiting(holder)
		}
		// Wait for the key to go (a release, an expiry), checking again
		// at least every Poll in case a watch event was missed.
		wctx, cancel := context.WithTimeout(ctx, max(opts.Poll, time.Second))
		for wr := range cli.Watch(wctx, key, clientv3.WithRev(rev+1)) {
			if slices.ContainsFunc(wr.Events, func(ev *clientv3.Event) bool { return ev.Type == clientv3.EventTypeDelete }) {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lease: %s: %w", holder, ctx.Err())
		}
	}
}

// leaseExpiry is when an etcd lease runs out, as etcd says now (def if it
// cannot say).
func leaseExpiry(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, def time.Time) time.Time {
	if id == 0 {
		return def
	}
	ttl, err := cli.TimeToLive(ctx, id)
	if err != nil || ttl.TTL < 0 {
		return def
	}
	return time.Now().Add(time.Duration(ttl.TTL) * time.Second)
}

func revoke(cli *clientv3.Client, id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _ = cli.Revoke(ctx, id)
}

// holdEtcd starts the keep-alive of a lease just taken (granted at
// granted, its key written at revision rev) and the watch on its key.
func holdEtcd(cli *clientv3.Client, id clientv3.LeaseID, key string, info Info, ttl time.Duration, granted time.Time, rev int64) (*Lease, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lease{info: info, ttl: ttl, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		etcd: &etcdHold{cli: cli, id: id, key: key, cancel: cancel}}
	ka, err := cli.KeepAlive(ctx, id)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("lease: %s: etcd keep-alive: %w", info.Resource, err)
	}
	// From the revision that wrote the key: a delete in between is seen.
	watch := cli.Watch(ctx, key, clientv3.WithRev(rev+1))
	go func() {
		defer close(l.done)
		// The client sends a keep-alive every TTL/3: with none acknowledged
		// for 2/3 of the TTL (counted from the grant, before etcd's own
		// clock started) the lease may run out before we hear of it: stop.
		limit := ttl * 2 / 3
		deadline := time.NewTimer(max(limit-time.Since(granted), 0))
		defer deadline.Stop()
		for {
			select {
			case <-l.stop:
				return
			case _, ok := <-ka:
				if !ok {
					if ctx.Err() == nil {
						l.lose(fmt.Errorf("%w: %s: etcd ended the keep-alive (lease %x expired or revoked)", ErrLost, info.Resource, int64(id)))
					}
					cancel()
					return
				}
				deadline.Reset(limit)
			case <-deadline.C:
				l.lose(fmt.Errorf("%w: %s: etcd acknowledged no keep-alive for %v (unreachable, restarting or partitioned): the lease may expire any moment", ErrLost, info.Resource, limit))
				cancel() // stop renewing: another job may take the board once etcd expires it
				return
			case wr, ok := <-watch:
				if !ok {
					watch = nil
					continue
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete || clientv3.LeaseID(ev.Kv.Lease) != id {
						l.lose(fmt.Errorf("%w: %s: its etcd key was deleted or overwritten", ErrLost, info.Resource))
						cancel()
						return
					}
				}
				if wr.Canceled {
					// Compacted past our revision (an etcd restart): check the
					// key is still ours, then watch it again from now.
					gctx, gcancel := context.WithTimeout(ctx, ttl/3)
					cur, err := cli.Get(gctx, key)
					gcancel()
					if err == nil && (len(cur.Kvs) == 0 || clientv3.LeaseID(cur.Kvs[0].Lease) != id) {
						l.lose(fmt.Errorf("%w: %s: its etcd key is gone or another's", ErrLost, info.Resource))
						cancel()
						return
					}
					watch = nil
					if err == nil {
						watch = cli.Watch(ctx, key, clientv3.WithRev(cur.Header.Revision+1))
					}
				}
			}
		}
	}()
	return l, nil
}

// lose records why the lease was lost and closes Lost (once).
func (l *Lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr != nil || l.released {
		return // a released lease is not lost: its holder let it go
	}
	l.lostErr = err
	close(l.lost)
}

// renewEtcd is Renew on etcd: one keep-alive now.
func (l *Lease) renewEtcd() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3+time.Second)
	defer cancel()
	if _, err := l.etcd.cli.KeepAliveOnce(ctx, l.etcd.id); err != nil {
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("lease: %s: etcd keep-alive: %w", l.info.Resource, err)
		}
		lost := fmt.Errorf("%w: %s: %v", ErrLost, l.info.Resource, err)
		l.lose(lost)
		return lost
	}
	return nil
}

// releaseEtcd revokes the lease (etcd deletes the key with it).
func (l *Lease) releaseEtcd() error {
	h := l.etcd
	h.cancel()
	<-l.done
	defer h.cli.Close()
	if l.Err() != nil {
		return nil // lost: not ours to revoke any more (etcd may have given the key away)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.cli.Revoke(ctx, h.id); err != nil {
		return fmt.Errorf("lease: release %s: etcd revoke: %w (it expires within %v)", l.info.Resource, err, l.ttl)
	}
	return nil
}

// ListEtcd returns every lease held in etcd under the prefix, with its
// expiry as etcd says now.
func ListEtcd(ctx context.Context, e Etcd) ([]Info, error) {
	cli, err := e.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, e.prefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("lease: etcd list: %w", err)
	}
	var out []Info
	for _, kv := range resp.Kvs {
		i := Info{Resource: strings.TrimPrefix(string(kv.Key), e.prefix())}
		_ = json.Unmarshal(kv.Value, &i)
		i.Expires = leaseExpiry(ctx, cli, clientv3.LeaseID(kv.Lease), i.Expires)
		out = append(out, i)
	}
	return out, nil
}
