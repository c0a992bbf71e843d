package etcd

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graylane/graylane/resolver"
)

// service follows one service for all the Watchers of a Registry: it
// reads the service's keys, then follows etcd's changes from the revision
// it read, and starts again with a read when the watch fails (compaction,
// leader loss, cancellation). It runs while the service has watchers. Like
// resolver.Memory it holds only the latest set: a slow Watcher skips
// intermediate sets and never misses the last one.
type service struct {
	r      *Registry
	name   string
	prefix string
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu       sync.Mutex
	snap     []resolver.Instance // sorted by address, shared read-only
	version  uint64              // sets published; 0 before the first read
	watchers map[*watcher]struct{}
}

// watcher is one Watch of a service.
type watcher struct {
	s         *service
	notify    chan struct{} // capacity 1
	delivered uint64        // version last returned by Next; guarded by s.mu
	closed    bool          // guarded by s.mu
}

var _ resolver.Watcher = (*watcher)(nil)

var errWatchEnded = errors.New("watch channel closed")

// watchLocked returns a new watcher of service name, starting to follow
// the service if no one does yet. The caller holds r.mu.
func (r *Registry) watchLocked(name string) *watcher {
	s := r.services[name]
	if s == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		s = &service{
			r:        r,
			name:     name,
			prefix:   r.cfg.servicePrefix(name),
			cancel:   cancel,
			done:     make(chan struct{}),
			watchers: map[*watcher]struct{}{},
		}
		r.services[name] = s
		r.wg.Add(1)
		go s.run(ctx)
	}
	w := &watcher{s: s, notify: make(chan struct{}, 1)}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	if s.version > 0 {
		w.wake() // the set known so far, at once, even during an outage
	}
	s.mu.Unlock()
	return w
}

// Next implements resolver.Watcher. The first call returns the set known
// to the Registry: at once if another Watcher of the Registry follows the
// service, else once etcd first answers. Later calls return each set that
// differs from the one last returned. Next returns an error only when ctx
// is done or the Watcher or the Registry is closed (resolver.ErrClosed):
// an outage of etcd is not an error, the last set simply stays current.
// It may be called from several goroutines; each set goes to one of them.
func (w *watcher) Next(ctx context.Context) ([]resolver.Instance, error) {
	s := w.s
	for {
		s.mu.Lock()
		switch {
		case w.closed:
			s.mu.Unlock()
			return nil, resolver.ErrClosed
		case s.version != w.delivered:
			w.delivered = s.version
			snap := s.snap
			s.mu.Unlock()
			return snap, nil
		}
		s.mu.Unlock()
		select {
		case <-w.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements resolver.Watcher. When it closes the last Watcher of
// its service, it stops following the service and waits for that to end.
// It is idempotent.
func (w *watcher) Close() error {
	s, r := w.s, w.s.r
	r.mu.Lock()
	s.mu.Lock()
	if w.closed {
		s.mu.Unlock()
		r.mu.Unlock()
		return nil
	}
	w.closeLocked()
	last := len(s.watchers) == 0
	if last && r.services[s.name] == s {
		delete(r.services, s.name)
	}
	s.mu.Unlock()
	r.mu.Unlock()
	if last {
		s.cancel()
		<-s.done
	}
	return nil
}

// closeLocked makes Next return ErrClosed. The caller holds s.mu.
func (w *watcher) closeLocked() {
	w.closed = true
	delete(w.s.watchers, w)
	w.wake()
}

func (w *watcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// closeAll closes every watcher of s.
func (s *service) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		w.closeLocked()
	}
}

// publish makes the instances of byKey the current set if it differs from
// the last one, and wakes the watchers.
func (s *service) publish(byKey map[string]resolver.Instance) {
	insts := slices.Collect(maps.Values(byKey))
	slices.SortFunc(insts, func(a, b resolver.Instance) int { return cmp.Compare(a.Addr, b.Addr) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version > 0 && slices.EqualFunc(s.snap, insts, sameInstance) {
		return
	}
	s.snap = insts
	s.version++
	for w := range s.watchers {
		w.wake()
	}
}

func sameInstance(a, b resolver.Instance) bool {
	return a.Service == b.Service && a.Addr == b.Addr && a.Name == b.Name && a.Tag == b.Tag &&
		a.Weight == b.Weight && a.Health == b.Health && maps.Equal(a.Metadata, b.Metadata)
}

// run reads and follows the service until ctx is done.
func (s *service) run(ctx context.Context) {
	defer s.r.wg.Done()
	defer close(s.done)
	var bo backoff
	for {
		byKey, rev, err := s.read(ctx)
		if err == nil {
			s.publish(byKey)
			var progressed bool
			progressed, err = s.follow(ctx, byKey, rev)
			if progressed {
				bo.reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			s.r.mon.suspect()
		}
		s.r.cfg.logger.Debug("graylane etcd: watch interrupted, reading again", "service", s.name, "error", err)
		if !bo.wait(ctx, s.r.mon) {
			return
		}
	}
}

// read returns the service's instances by key, and the revision read.
func (s *service) read(ctx context.Context) (map[string]resolver.Instance, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := s.r.client.Get(rctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	byKey := make(map[string]resolver.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		s.put(byKey, kv)
	}
	return byKey, resp.Header.Revision, nil
}

// follow applies etcd's changes after revision rev to byKey, publishing
// each new set, until the watch ends. It reports whether any change came.
func (s *service) follow(ctx context.Context, byKey map[string]resolver.Instance, rev int64) (bool, error) {
	// Without a leader the member cannot say whether it is up to date: the
	// watch then ends, and the next read waits for a leader.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	progressed := false
	for resp := range s.r.client.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return progressed, err
		}
		if len(resp.Events) == 0 {
			continue
		}
		progressed = true
		for _, ev := range resp.Events {
			switch ev.Type {
			case mvccpb.PUT:
				s.put(byKey, ev.Kv)
			case mvccpb.DELETE:
				delete(byKey, string(ev.Kv.Key))
			}
		}
		s.publish(byKey)
	}
	return progressed, errWatchEnded
}

// put records the value of kv, or drops the key if it is not an instance.
func (s *service) put(byKey map[string]resolver.Instance, kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	inst, err := decode(s.name, s.prefix, key, kv.Value)
	if err != nil {
		delete(byKey, key)
		s.r.cfg.logger.Warn("graylane etcd: skipping a key that is not a valid instance", "service", s.name, "error", err)
		return
	}
	byKey[key] = inst
}
