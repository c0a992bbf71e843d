package resolver

import (
	"sync"
	"sync/atomic"

	"github.com/graylane/graylane/fallback"
)

// DynamicPolicy holds a fallback policy that can be replaced while clients
// route with it: switching a lane between strict and loose, say, without a
// restart. Clients built with it (DialOptions, NewRouter) pick up each new
// policy at once. It is safe for concurrent use.
type DynamicPolicy struct {
	p       atomic.Pointer[fallback.Policy]
	mu      sync.Mutex
	changed chan struct{}
}

// NewDynamicPolicy returns a DynamicPolicy holding p (nil means
// fallback.Default()).
func NewDynamicPolicy(p *fallback.Policy) *DynamicPolicy {
	d := &DynamicPolicy{changed: make(chan struct{})}
	d.p.Store(orDefault(p))
	return d
}

// Load returns the current policy.
func (d *DynamicPolicy) Load() *fallback.Policy { return d.p.Load() }

// Store replaces the policy (nil means fallback.Default()).
func (d *DynamicPolicy) Store(p *fallback.Policy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.p.Store(orDefault(p))
	close(d.changed)
	d.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next Store.
func (d *DynamicPolicy) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

func orDefault(p *fallback.Policy) *fallback.Policy {
	if p == nil {
		return fallback.Default()
	}
	return p
}
