package etcd

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/graylane/graylane/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// entry is a key the Registry writes. Its desired state (present with a
// value, or absent) is guarded by Registry.mu; the writes that bring etcd
// to that state are serialised by the entry's lock, so that the keeper
// re-putting an instance never races with an Update or a Deregister.
type entry struct {
	key  string
	lock chan struct{} // held (full) while the key is written

	// Guarded by Registry.mu.
	present bool
	value   []byte
	gen     uint64 // registrations of the key so far
	seq     uint64 // changes of the desired state so far

	// Guarded by lock.
	doneSeq   uint64           // desired state etcd is known to hold
	doneLease clientv3.LeaseID // and under which lease
	tried     clientv3.LeaseID // lease of the last put that may have reached etcd
}

func newEntry(key string) *entry {
	return &entry{key: key, lock: make(chan struct{}, 1)}
}

func (e *entry) acquire(ctx context.Context) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) release() { <-e.lock }

// syncLocked makes etcd hold e's desired state: the value under lease, or
// no key. The delete is conditional on the key still being under the lease
// of our last put, so that it never removes the registration of another
// process that took the address over. The caller holds e's lock.
func (r *Registry) syncLocked(ctx context.Context, e *entry, lease clientv3.LeaseID) error {
	r.mu.Lock()
	seq, present, value := e.seq, e.present, e.value
	r.mu.Unlock()
	if e.doneSeq == seq && (!present || e.doneLease == lease) {
		return nil
	}
	if present {
		e.tried = lease
		if _, err := r.client.Put(ctx, e.key, string(value), clientv3.WithLease(lease)); err != nil {
			return err
		}
		e.doneSeq, e.doneLease = seq, lease
		return nil
	}
	if e.tried != 0 {
		_, err := r.client.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(e.key), "=", e.tried)).
			Then(clientv3.OpDelete(e.key)).
			Commit()
		if err != nil {
			return err
		}
	}
	e.doneSeq, e.doneLease, e.tried = seq, 0, 0
	r.mu.Lock()
	if e.seq == seq && r.entries[e.key] == e {
		delete(r.entries, e.key)
	}
	r.mu.Unlock()
	return nil
}

// put waits within ctx for a lease and writes e's value under it. update,
// if not nil, is called with e's lock and Registry.mu held before the
// write: it changes the desired value, or refuses with an error, and
// returns the function that undoes its change if the write fails.
func (r *Registry) put(ctx context.Context, e *entry, update func() (undo func(), err error)) error {
	for {
		lease, err := r.waitLease(ctx)
		if err != nil {
			return err
		}
		if err := e.acquire(ctx); err != nil {
			return err
		}
		var undo func()
		if update != nil {
			r.mu.Lock()
			undo, err = update()
			r.mu.Unlock()
			if err != nil {
				e.release()
				return err
			}
		}
		err = r.syncLocked(ctx, e, lease)
		if err != nil && undo != nil {
			r.mu.Lock()
			undo()
			r.mu.Unlock()
		}
		e.release()
		if isLeaseNotFound(err) {
			r.dropLease(lease) // the keeper grants a new one; try again with it
			continue
		}
		return err
	}
}

func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound)
}

// registration is the handle of one Register call.
type registration struct {
	r    *Registry
	e    *entry
	gen  uint64
	inst registry.Instance // as last registered; guarded by Registry.mu
}

// Instance returns the instance as last registered or updated (after
// Deregister, as it was). Its Metadata is a copy.
func (h *registration) Instance() registry.Instance {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	inst := h.inst
	inst.Metadata = maps.Clone(inst.Metadata)
	return inst
}

// Update rewrites the instance's value under the Registry's current lease.
// inst must keep the service and address (else the error wraps
// registry.ErrInvalidInstance) and pass Validate. Update waits for etcd
// within ctx; on error the registration keeps its previous value (a write
// that may have reached etcd is undone in the background). After
// Deregister it returns registry.ErrNotRegistered, after Close
// registry.ErrClosed. Updates of one registration are applied in turn.
func (h *registration) Update(ctx context.Context, inst registry.Instance) error {
	r, e := h.r, h.e
	cur := h.Instance()
	if inst.Service != cur.Service || inst.Addr != cur.Addr {
		return fmt.Errorf("%w: update must keep service %q and address %s, got %q at %s",
			registry.ErrInvalidInstance, cur.Service, cur.Addr, inst.Service, inst.Addr)
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := encode(inst)
	if err != nil {
		return fmt.Errorf("graylane etcd: %w", err)
	}
	check := func() error {
		switch {
		case r.closed:
			return registry.ErrClosed
		case e.gen != h.gen || !e.present:
			return fmt.Errorf("%w: service %q at %s", registry.ErrNotRegistered, inst.Service, inst.Addr)
		}
		return nil
	}
	r.mu.Lock()
	err = check()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	err = r.put(ctx, e, func() (func(), error) {
		if err := check(); err != nil {
			return nil, err
		}
		prevValue, prevInst := e.value, h.inst
		e.value, h.inst = value, inst
		e.seq++
		seq := e.seq
		return func() {
			if e.seq == seq {
				e.value, h.inst = prevValue, prevInst
				e.seq++
			}
		}, nil
	})
	if err != nil {
		if errors.Is(err, registry.ErrNotRegistered) || errors.Is(err, registry.ErrClosed) {
			return err
		}
		r.kick()
		return fmt.Errorf("graylane etcd: update %s: %w", e.key, err)
	}
	return nil
}

// Deregister deletes the instance's key at once. It is idempotent. The
// instance is deregistered from this Registry even when etcd cannot be
// reached: it is never put again, and if the delete fails (the error is
// returned) the key is deleted in the background once etcd answers, or
// vanishes with the lease. After Close it returns registry.ErrClosed,
// unless the instance was already deregistered.
func (h *registration) Deregister(ctx context.Context) error {
	r, e := h.r, h.e
	r.mu.Lock()
	if e.gen != h.gen || !e.present {
		r.mu.Unlock()
		return nil
	}
	if r.closed {
		r.mu.Unlock()
		return registry.ErrClosed
	}
	e.present = false
	e.seq++
	r.mu.Unlock()
	err := e.acquire(ctx)
	if err == nil {
		err = r.syncLocked(ctx, e, 0)
		e.release()
	}
	if err != nil {
		r.kick()
		return fmt.Errorf("graylane etcd: deregister %s: %w (the key is deleted once etcd answers)", e.key, err)
	}
	return nil
}
