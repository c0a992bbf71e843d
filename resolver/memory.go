package resolver

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Memory is the in-memory Registry: the embedded default for services that
// run in one process. It is safe for concurrent use. Registration never
// blocks on watchers: each watcher holds only the latest set, so a slow one
// skips intermediate sets and never misses the last.
type Memory struct {
	mu       sync.Mutex
	services map[string]*memService
	closed   bool
}

type memService struct {
	insts    map[string]Instance // by address
	snap     []Instance          // sorted by address, shared read-only
	version  uint64
	watchers map[*memWatcher]struct{}
}

var _ Registry = (*Memory)(nil)

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory {
	return &Memory{services: map[string]*memService{}}
}

func (m *Memory) service(name string) *memService {
	s := m.services[name]
	if s == nil {
		s = &memService{insts: map[string]Instance{}, watchers: map[*memWatcher]struct{}{}}
		m.services[name] = s
	}
	return s
}

// Register implements Registry.
func (m *Memory) Register(_ context.Context, inst Instance) (Registration, error) {
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	s := m.service(inst.Service)
	if _, ok := s.insts[inst.Addr]; ok {
		return nil, fmt.Errorf("%w: service %q at %s", ErrDuplicate, inst.Service, inst.Addr)
	}
	s.insts[inst.Addr] = inst
	m.publishLocked(s)
	return &memRegistration{m: m, service: inst.Service, addr: inst.Addr, last: inst}, nil
}

// Watch implements Registry. ctx is used for this call only; the watch lasts
// until Close. A name that cannot name a service (ValidateService) is an
// error.
func (m *Memory) Watch(_ context.Context, service string) (Watcher, error) {
	if err := ValidateService(service); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	s := m.service(service)
	w := &memWatcher{m: m, s: s, service: service, notify: make(chan struct{}, 1), delivered: ^uint64(0)}
	w.notify <- struct{}{}
	s.watchers[w] = struct{}{}
	return w, nil
}

// Instances returns the current instances of service, sorted by address.
// The slice is shared: treat it as read-only.
func (m *Memory) Instances(service string) []Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.services[service]; s != nil {
		return s.snap
	}
	return nil
}

// Services returns the names of the services that have instances or
// watchers, sorted.
func (m *Memory) Services() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.services))
}

// Close ends every watch (Next returns ErrClosed) and refuses further
// registrations.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, s := range m.services {
		for w := range s.watchers {
			w.closeLocked()
		}
	}
	return nil
}

// publishLocked makes a new snapshot of s and wakes its watchers.
func (m *Memory) publishLocked(s *memService) {
	snap := slices.Collect(maps.Values(s.insts))
	slices.SortFunc(snap, func(a, b Instance) int { return cmp.Compare(a.Addr, b.Addr) })
	s.snap = snap
	s.version++
	for w := range s.watchers {
		select {
		case w.notify <- struct{}{}:
		default: // already signalled; Next reads the latest set anyway
		}
	}
}

type memRegistration struct {
	m       *Memory
	service string
	addr    string
	last    Instance // guarded by m.mu
}

func (r *memRegistration) Instance() Instance {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.last
}

func hasAddr(s *memService, addr string) bool {
	_, ok := s.insts[addr]
	return ok
}

// forgetLocked drops a service that has neither instances nor watchers, so
// that asking about many names leaves nothing behind.
func (m *Memory) forgetLocked(name string) {
	if s := m.services[name]; s != nil && len(s.insts) == 0 && len(s.watchers) == 0 {
		delete(m.services, name)
	}
}

func (r *memRegistration) Update(_ context.Context, inst Instance) error {
	if inst.Service != r.service || inst.Addr != r.addr {
		return fmt.Errorf("%w: update must keep service %q and address %s, got %q at %s",
			ErrInvalidInstance, r.service, r.addr, inst.Service, inst.Addr)
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	s := r.m.services[r.service]
	if s == nil || !hasAddr(s, r.addr) {
		return fmt.Errorf("%w: service %q at %s", ErrNotRegistered, r.service, r.addr)
	}
	s.insts[r.addr] = inst
	r.last = inst
	r.m.publishLocked(s)
	return nil
}

func (r *memRegistration) Deregister(context.Context) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	s := r.m.services[r.service]
	if s == nil || !hasAddr(s, r.addr) {
		return nil
	}
	delete(s.insts, r.addr)
	r.m.publishLocked(s)
	r.m.forgetLocked(r.service)
	return nil
}

type memWatcher struct {
	m         *Memory
	s         *memService
	service   string
	notify    chan struct{}
	delivered uint64 // version last returned by Next
	closed    bool   // guarded by m.mu
}

func (w *memWatcher) Next(ctx context.Context) ([]Instance, error) {
	for {
		w.m.mu.Lock()
		switch {
		case w.closed:
			w.m.mu.Unlock()
			return nil, ErrClosed
		case w.s.version != w.delivered:
			w.delivered = w.s.version
			snap := w.s.snap
			w.m.mu.Unlock()
			return snap, nil
		}
		w.m.mu.Unlock()
		select {
		case <-w.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (w *memWatcher) Close() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.closeLocked()
	return nil
}

func (w *memWatcher) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	delete(w.s.watchers, w)
	if !w.m.closed {
		w.m.forgetLocked(w.service)
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
}
