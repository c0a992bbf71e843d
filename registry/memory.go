package registry

import (
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
	insts  map[string]Instance // by address
	latest Latest
}

var _ Registry = (*Memory)(nil)

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory {
	return &Memory{services: map[string]*memService{}}
}

func (m *Memory) service(name string) *memService {
	s := m.services[name]
	if s == nil {
		s = &memService{insts: map[string]Instance{}}
		s.latest.Publish(nil) // known, and empty
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
	s.publishLocked()
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
	return m.service(service).latest.Watch(func(int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.forgetLocked(service)
	}), nil
}

// Instances returns the current instances of service, sorted by address.
// The slice is shared: treat it as read-only.
func (m *Memory) Instances(service string) []Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.services[service]; s != nil {
		insts, _ := s.latest.Instances()
		return insts
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
		s.latest.Close()
	}
	return nil
}

// publishLocked publishes the service's instances to its watchers.
func (s *memService) publishLocked() {
	s.latest.Publish(slices.Collect(maps.Values(s.insts)))
}

// forgetLocked drops a service that has neither instances nor watchers, so
// that asking about many names leaves nothing behind.
func (m *Memory) forgetLocked(name string) {
	if s := m.services[name]; s != nil && !m.closed && len(s.insts) == 0 && s.latest.Watchers() == 0 {
		delete(m.services, name)
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
	if s == nil {
		return fmt.Errorf("%w: service %q at %s", ErrNotRegistered, r.service, r.addr)
	}
	if _, ok := s.insts[r.addr]; !ok {
		return fmt.Errorf("%w: service %q at %s", ErrNotRegistered, r.service, r.addr)
	}
	s.insts[r.addr] = inst
	r.last = inst
	s.publishLocked()
	return nil
}

func (r *memRegistration) Deregister(context.Context) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	s := r.m.services[r.service]
	if s == nil {
		return nil
	}
	if _, ok := s.insts[r.addr]; !ok {
		return nil
	}
	delete(s.insts, r.addr)
	s.publishLocked()
	r.m.forgetLocked(r.service)
	return nil
}
