package etcd

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/graylane/graylane/registry"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// service follows one service for all the Watchers of a Registry: it
// reads the service's keys, then follows etcd's changes from the revision
// it read, and starts again with a read when the watch fails (compaction,
// leader loss, cancellation). It runs while the service has watchers, and
// publishes each new set to them through a registry.Latest.
type service struct {
	r      *Registry
	name   string
	prefix string
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	latest registry.Latest
}

var errWatchEnded = errors.New("watch channel closed")

// watchLocked returns a new Watcher of service name, starting to follow
// the service if no one does yet. The caller holds r.mu.
//
// The Watcher's first Next returns the set known to the Registry: at once
// if another Watcher of the Registry follows the service (even during an
// outage of etcd), else once etcd first answers. Later calls return each
// set that differs from the one last returned. An outage of etcd is not an
// error: the last set simply stays current. Closing the last Watcher of a
// service stops following it, and waits for that to end.
func (r *Registry) watchLocked(name string) registry.Watcher {
	s := r.services[name]
	if s == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		s = &service{r: r, name: name, prefix: r.cfg.servicePrefix(name), cancel: cancel, done: make(chan struct{})}
		r.services[name] = s
		r.wg.Add(1)
		go s.run(ctx)
	}
	return s.latest.Watch(func(int) { s.release() })
}

// release stops following the service if it has no Watcher left.
func (s *service) release() {
	r := s.r
	r.mu.Lock()
	last := s.latest.Watchers() == 0 && r.services[s.name] == s
	if last {
		delete(r.services, s.name)
	}
	r.mu.Unlock()
	if last {
		s.cancel()
		<-s.done
	}
}

// closeAll closes every watcher of s.
func (s *service) closeAll() { s.latest.Close() }

// publish makes the instances of byKey the current set if it differs from
// the last one, and wakes the watchers.
func (s *service) publish(byKey map[string]registry.Instance) {
	s.latest.Publish(slices.Collect(maps.Values(byKey)))
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
func (s *service) read(ctx context.Context) (map[string]registry.Instance, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := s.r.client.Get(rctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	byKey := make(map[string]registry.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		s.put(byKey, kv)
	}
	return byKey, resp.Header.Revision, nil
}

// follow applies etcd's changes after revision rev to byKey, publishing
// each new set, until the watch ends. It reports whether any change came.
func (s *service) follow(ctx context.Context, byKey map[string]registry.Instance, rev int64) (bool, error) {
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
func (s *service) put(byKey map[string]registry.Instance, kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	inst, err := decode(s.name, s.prefix, key, kv.Value)
	if err != nil {
		delete(byKey, key)
		s.r.cfg.logger.Warn("graylane etcd: skipping a key that is not a valid instance", "service", s.name, "error", err)
		return
	}
	byKey[key] = inst
}
