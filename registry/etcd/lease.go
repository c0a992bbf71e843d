package etcd

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/graylane/graylane/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseAttr logs a lease ID the way etcdctl prints it.
func leaseAttr(id clientv3.LeaseID) slog.Attr {
	return slog.String("lease", strconv.FormatInt(int64(id), 16))
}

// waitLease returns the current lease, waiting within ctx for the keeper to
// grant one.
func (r *Registry) waitLease(ctx context.Context) (clientv3.LeaseID, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return 0, registry.ErrClosed
		}
		if r.lease != 0 {
			id := r.lease
			r.mu.Unlock()
			return id, nil
		}
		set := r.leaseSet
		r.mu.Unlock()
		select {
		case <-set:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-r.ctx.Done():
			return 0, registry.ErrClosed
		}
	}
}

// dropLease forgets lease after etcd said it does not know it, and ends its
// keep-alive: the keeper then grants a new one.
func (r *Registry) dropLease(id clientv3.LeaseID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lease == id {
		r.clearLeaseLocked()
	}
}

func (r *Registry) clearLeaseLocked() {
	r.lease = 0
	r.leaseSet = make(chan struct{})
	if r.dropKA != nil {
		r.dropKA()
		r.dropKA = nil
	}
}

// keep holds the Registry's lease: it grants one, keeps it alive, writes
// every pending change of the Registry's keys under it, and when the lease
// is lost grants a new one and puts every instance again. It runs from the
// first Register to Close.
func (r *Registry) keep() {
	defer r.wg.Done()
	var (
		bo   backoff
		lost bool // a lease was lost: the next one is a re-registration
		ttl  = int64(r.cfg.ttl / time.Second)
	)
	for {
		gctx, cancel := context.WithTimeout(r.ctx, opTimeout)
		resp, err := r.client.Grant(gctx, ttl)
		cancel()
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			r.cfg.logger.Debug("graylane etcd: lease grant failed", "error", err)
			r.mon.suspect()
			if !bo.wait(r.ctx, r.mon) {
				return
			}
			continue
		}
		id := resp.ID
		r.mu.Lock()
		r.granted[id] = struct{}{}
		r.mu.Unlock()
		kactx, dropKA := context.WithCancel(r.ctx)
		ka, err := r.client.KeepAlive(kactx, id)
		if err != nil {
			dropKA()
			r.cfg.logger.Debug("graylane etcd: lease keep-alive failed", "error", err)
			if !bo.wait(r.ctx, r.mon) {
				return
			}
			continue
		}
		bo.reset()
		r.mu.Lock()
		r.lease, r.dropKA = id, dropKA
		close(r.leaseSet)
		r.mu.Unlock()
		if lost {
			r.mon.rereg.Add(context.Background(), 1, r.mon.attrs)
			r.cfg.logger.Info("graylane etcd: lease lost; registering the instances again under a new lease", leaseAttr(id))
		} else {
			r.cfg.logger.Debug("graylane etcd: lease granted", leaseAttr(id), "ttl", r.cfg.ttl)
		}

		r.hold(kactx, id, ka)

		r.mu.Lock()
		if r.lease == id {
			r.clearLeaseLocked()
		}
		r.mu.Unlock()
		dropKA()
		if r.ctx.Err() != nil {
			return
		}
		lost = true
		r.cfg.logger.Debug("graylane etcd: lease lost", leaseAttr(id))
	}
}

// hold serves lease id until it is lost or the Registry stops: it drains
// the keep-alive responses and writes pending changes under id, retrying
// failed writes. Once every instance is under id, it revokes the leases
// lost before, so that keys left on them go.
func (r *Registry) hold(ctx context.Context, id clientv3.LeaseID, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	var (
		bo      backoff
		pending = true
		failing bool
		retry   *time.Timer
	)
	defer func() { stopTimer(retry) }()
	for {
		var retryc <-chan time.Time
		if pending {
			pending, failing = false, false
			switch done, lost := r.reconcile(ctx, id); {
			case lost || ctx.Err() != nil:
				return
			case done:
				bo.reset()
				r.revokeOthers(ctx, id)
			default:
				failing = true
				stopTimer(retry)
				retry = time.NewTimer(bo.delay())
				retryc = retry.C
			}
		}
		var backc <-chan struct{}
		if failing {
			backc = r.mon.reconnected()
		}
		select {
		case _, ok := <-ka:
			if !ok {
				return // expired, revoked, or not renewed within the TTL
			}
		case <-r.kickc:
			pending = true
		case <-retryc:
			pending = true
		case <-backc:
			pending = true
		case <-ctx.Done():
			return
		}
	}
}

// reconcile brings every key of the Registry to its desired state under
// lease id. It reports done when all are, lost when etcd does not know id.
func (r *Registry) reconcile(ctx context.Context, id clientv3.LeaseID) (done, lost bool) {
	r.mu.Lock()
	entries := slices.Collect(maps.Values(r.entries))
	r.mu.Unlock()
	for _, e := range entries {
		if err := e.acquire(ctx); err != nil {
			return false, false
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		err := r.syncLocked(octx, e, id)
		cancel()
		e.release()
		switch {
		case err == nil:
		case isLeaseNotFound(err):
			r.dropLease(id)
			return false, true
		default:
			if ctx.Err() == nil {
				r.cfg.logger.Debug("graylane etcd: write failed, retrying", "key", e.key, "error", err)
				r.mon.suspect()
			}
			return false, false
		}
	}
	return true, false
}

// revokeOthers revokes the leases granted before id, best effort: keys
// still attached to them go. One that cannot be revoked now is tried again
// after the next change, and on Close; at worst it expires.
func (r *Registry) revokeOthers(ctx context.Context, id clientv3.LeaseID) {
	r.mu.Lock()
	var others []clientv3.LeaseID
	for l := range r.granted {
		if l != id {
			others = append(others, l)
		}
	}
	r.mu.Unlock()
	for _, l := range others {
		rctx, cancel := context.WithTimeout(ctx, closeTimeout)
		_, err := r.client.Revoke(rctx, l)
		cancel()
		if err != nil && !isLeaseNotFound(err) {
			r.cfg.logger.Debug("graylane etcd: revoking a lost lease failed", leaseAttr(l), "error", err)
			continue
		}
		r.mu.Lock()
		delete(r.granted, l)
		r.mu.Unlock()
	}
}
