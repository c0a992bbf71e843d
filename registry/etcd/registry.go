package etcd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/graylane/graylane/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
)

// Registry is a registry.Registry on etcd. It is safe for concurrent use.
//
// A Registry registers its instances under one lease, granted on the first
// Register and kept alive until Close. Watchers read their service's keys
// and follow etcd's changes. While etcd cannot be reached, writes wait for
// it (within their context) and watchers keep the last set they returned.
type Registry struct {
	client *clientv3.Client
	owned  bool // made by Dial: closed with the Registry
	cfg    config
	mon    *monitor
	ctx    context.Context // cancelled by Close and Abandon
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kickc  chan struct{} // asks the keeper to write what is pending

	mu       sync.Mutex
	closed   bool
	entries  map[string]*entry             // the keys this Registry writes, by key
	services map[string]*service           // the services watched, by name
	keeping  bool                          // the keeper runs
	lease    clientv3.LeaseID              // current lease, 0 while there is none
	dropKA   context.CancelFunc            // ends the keep-alive of lease
	leaseSet chan struct{}                 // closed when a lease is set
	granted  map[clientv3.LeaseID]struct{} // leases granted and not yet revoked
}

var _ registry.Registry = (*Registry)(nil)

// New returns a Registry on client. The caller keeps ownership of client:
// close the Registry first, then the client. New does not wait for etcd
// (it starts watching the client's connection in the background); it fails
// only on bad options or a nil client.
func New(client *clientv3.Client, opts ...Option) (*Registry, error) {
	if client == nil {
		return nil, errors.New("graylane etcd: nil client")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Registry{
		client:   client,
		cfg:      cfg,
		kickc:    make(chan struct{}, 1),
		entries:  map[string]*entry{},
		services: map[string]*service{},
		leaseSet: make(chan struct{}),
		granted:  map[clientv3.LeaseID]struct{}{},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.mon = newMonitor(client, &r.cfg)
	r.wg.Add(1)
	go r.mon.run(r.ctx, &r.wg)
	return r, nil
}

// Dial returns a Registry on a new client of the etcd cluster at endpoints
// ("etcd-0:2379", "10.0.0.5:2379"...), owned by the Registry and closed
// with it. The client logs nothing (the Registry logs what matters
// through WithLogger) and reconnects after at most 2s once etcd is back.
// For TLS, authentication or other client settings, make the client
// yourself and use New. Dial does not wait for etcd to answer.
func Dial(endpoints []string, opts ...Option) (*Registry, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("graylane etcd: no endpoint")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("graylane etcd: %w", err)
	}
	r, err := New(client, opts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	r.owned = true
	return r, nil
}

// Register puts inst under the Registry's lease and keeps it there until
// Deregister, Close, or the death of the process (the lease then expires
// within the TTL). If the lease is lost (it expired during an outage, or was
// revoked), the Registry puts the instance again under a new lease as soon
// as etcd answers, without action of the caller.
//
// inst must pass Validate (the error is returned as is). Registering a
// service and address that this Registry already holds fails with
// registry.ErrDuplicate; another process registering the same service and
// address overwrites the key (the last writer wins). Register waits for
// etcd within ctx: on error nothing is registered (a write that may have
// reached etcd is undone in the background). After Close it returns
// registry.ErrClosed.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) (registry.Registration, error) {
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	value, err := encode(inst)
	if err != nil {
		return nil, fmt.Errorf("graylane etcd: %w", err)
	}
	key := r.cfg.key(inst.Service, inst.Addr)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, registry.ErrClosed
	}
	e := r.entries[key]
	if e != nil && e.present {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: service %q at %s", registry.ErrDuplicate, inst.Service, inst.Addr)
	}
	if e == nil {
		e = newEntry(key)
		r.entries[key] = e
	}
	e.present, e.value = true, value
	e.gen++
	e.seq++
	h := &registration{r: r, e: e, gen: e.gen, inst: inst}
	if !r.keeping {
		r.keeping = true
		r.wg.Add(1)
		go r.keep()
	}
	r.mu.Unlock()

	if err := r.put(ctx, e, nil); err != nil {
		r.mu.Lock()
		if e.gen == h.gen && e.present {
			e.present = false
			e.seq++
		}
		r.mu.Unlock()
		r.kick()
		return nil, fmt.Errorf("graylane etcd: register %s: %w", key, err)
	}
	return h, nil
}

// Watch implements registry.Registry. service must be a valid service name
// (see Instance.Validate). Watch does not wait for etcd: the Watcher's first
// Next returns the set the Registry knows, at once if another of its
// Watchers follows the service (even during an outage), else once etcd
// answers. The Watchers of one service share one etcd watch. ctx is used
// for this call only; the watch lasts until the Watcher or the Registry is
// closed.
//
// Keys under the service's prefix that are not valid instance records are
// skipped and logged at warn level. While etcd cannot be reached, Next
// returns nothing new: routing keeps the last known instances.
func (r *Registry) Watch(_ context.Context, service string) (registry.Watcher, error) {
	if err := registry.ValidateService(service); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, registry.ErrClosed
	}
	return r.watchLocked(service), nil
}

// Close deregisters every instance of the Registry at once by revoking its
// lease (best effort, within 1s: if etcd does not answer, the instances
// vanish when the lease expires), stops keep-alives and watchers (Next
// returns registry.ErrClosed), waits for its goroutines to end, and closes
// the client if Dial made it. Close is idempotent; it returns the error of
// the revocation, if any.
func (r *Registry) Close() error {
	return r.stop(true)
}

// Abandon stops the Registry as a crashed process would: keep-alives stop
// and watchers end, but nothing is deleted, so the instances stay
// registered until the lease expires, within the TTL. It exists to test
// what a fleet does when a process dies; programs call Close. A Registry
// that was closed or abandoned stays so.
func (r *Registry) Abandon() {
	_ = r.stop(false)
}

func (r *Registry) stop(revoke bool) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, s := range r.services {
		s.closeAll()
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.mon.close()

	var err error
	if revoke {
		r.mu.Lock()
		leases := make([]clientv3.LeaseID, 0, len(r.granted))
		for id := range r.granted {
			leases = append(leases, id)
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		for _, id := range leases {
			if _, rerr := r.client.Revoke(ctx, id); rerr != nil && !isLeaseNotFound(rerr) {
				err = errors.Join(err, fmt.Errorf("graylane etcd: revoke lease %x: %w", int64(id), rerr))
			}
		}
		cancel()
	}
	if r.owned {
		err = errors.Join(err, r.client.Close())
	}
	return err
}

// kick asks the keeper to write what is pending.
func (r *Registry) kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}
