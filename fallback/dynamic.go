package fallback

import (
	"sync"
	"sync/atomic"
)

// Dynamic holds a Policy that can be replaced while clients route with it:
// switching a lane between strict and loose, say, without a restart.
// Routers, gRPC balancers and queue consumers built with it pick up each
// new policy at once. The zero Dynamic holds Default(). It is safe for
// concurrent use.
type Dynamic struct {
	p       atomic.Pointer[Policy]
	mu      sync.Mutex
	changed chan struct{}
}

// NewDynamic returns a Dynamic holding p (nil means Default()).
func NewDynamic(p *Policy) *Dynamic {
	d := &Dynamic{}
	d.Store(p)
	return d
}

// Load returns the current policy.
func (d *Dynamic) Load() *Policy {
	if p := d.p.Load(); p != nil {
		return p
	}
	return Default()
}

// Store replaces the policy (nil means Default()) and closes the channel
// that Changed returned.
func (d *Dynamic) Store(p *Policy) {
	if p == nil {
		p = Default()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.p.Store(p)
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
}

// Changed returns a channel that is closed at the next Store.
func (d *Dynamic) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.changed
}
