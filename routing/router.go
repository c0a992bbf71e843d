package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// ErrUnknownService means the registry has no instance of the service in
// any lane. Errors that wrap it also wrap fallback.ErrNoInstance.
var ErrUnknownService = errors.New("unknown service")

// Router chooses, for clients that are not gRPC (such as graylane's HTTP
// routing transport), an instance of a service for a call, with the same
// decision rules as the gRPC balancer. It watches each service it is asked
// about, from the first call on. It is safe for concurrent use.
//
// Without connections to watch, a lane is ready when it has an instance
// that the registry says is serving and that has not just failed to accept
// a connection (see Failed); it is unavailable when all its instances are
// not serving or failing.
type Router struct {
	reg      registry.Registry
	static   *fallback.Policy
	dynamic  *fallback.Dynamic
	tel      *lanes.Telemetry
	ownTel   bool            // tel reports to a provider of its own: Close unregisters it
	counters *lanes.Counters // the Router's own decision counters, also its rotations
	downFor  time.Duration
	max      int
	idle     time.Duration
	logger   *slog.Logger
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc

	mu       sync.Mutex
	services map[string]*routedService
	closed   bool
	wg       sync.WaitGroup
	// ready is a copy of services that have their first set, for the hot
	// path to read without the lock; replaced whenever services changes.
	ready atomic.Pointer[map[string]*routedService]
}

// NewRouter returns a Router over reg routing with policy (nil means
// fallback.Default()).
func NewRouter(reg registry.Registry, policy *fallback.Policy, opts ...Option) *Router {
	c := newConfig(opts)
	r := &Router{
		reg: reg, static: policy, dynamic: c.dynamic, downFor: c.downFor, max: c.max, idle: c.idle,
		logger: c.logger, services: map[string]*routedService{},
	}
	if r.static == nil {
		r.static = fallback.Default()
	}
	if c.mp != nil {
		r.tel, r.ownTel = lanes.New(c.mp, nil), true
	} else {
		r.tel = lanes.Shared(nil)
	}
	r.counters = r.tel.NewCounters()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.idle > 0 {
		r.wg.Add(1)
		go r.sweep()
	}
	return r
}

func (r *Router) policy() *fallback.Policy {
	if r.dynamic != nil {
		return r.dynamic.Load()
	}
	return r.static
}

// Route is the outcome of one routing decision.
type Route struct {
	Instance registry.Instance // the instance chosen
	Lane     string            // its lane
	Reason   fallback.Reason   // Matched, Untagged, or why the requested lane could not serve
	// TagHeader is the requested tag as a one-value header slice, shared
	// between calls: read-only.
	TagHeader []string
	// FallbackHeader is the reason as a one-value header slice when the call
	// falls back (nil otherwise), shared between calls: read-only.
	FallbackHeader []string
}

// Route chooses an instance of service for a call with tag t (the zero Tag
// for an untagged call). The first call for a service waits, within ctx,
// for the registry's answer. Errors wrap ErrUnknownService (no instance of
// the service at all), fallback.ErrRejected (strict mode, or a reason that
// allows no fallback) or fallback.ErrNoInstance (no ready instance left in
// the chain); all of them name the service.
func (r *Router) Route(ctx context.Context, service string, t tag.Tag) (Route, error) {
	s, err := r.service(ctx, service)
	if err != nil {
		return Route{}, err
	}
	return s.route(r, t)
}

// Failed tells the router that inst did not accept a connection: it is
// skipped until the failed-instance timeout passes or the registry reports
// it again.
func (r *Router) Failed(inst registry.Instance) {
	r.mu.Lock()
	s := r.services[inst.Service]
	r.mu.Unlock()
	if s != nil {
		s.markDown(r, inst.Addr, time.Now().Add(r.downFor))
	}
}

// Close stops every watch.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	for _, s := range r.services {
		s.stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.counters.Close() // what the Router counted stays in the totals
	if r.ownTel {
		r.tel.Close() // its own meter provider's callback
	}
	return nil
}

func (r *Router) service(ctx context.Context, name string) (*routedService, error) {
	if m := r.ready.Load(); m != nil {
		if s := (*m)[name]; s != nil {
			s.used.set()
			return s, nil
		}
	}
	r.mu.Lock()
	s := r.services[name]
	if s == nil {
		if r.closed {
			r.mu.Unlock()
			return nil, registry.ErrClosed
		}
		if len(r.services) >= r.max {
			r.mu.Unlock()
			return nil, fmt.Errorf("graylane: service %q: already watching %d services, the most allowed", name, r.max)
		}
		if err := registry.ValidateService(name); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		s = &routedService{name: name, ready: make(chan struct{}), down: map[string]time.Time{}}
		r.services[name] = s
		r.wg.Add(1)
		go s.watch(r)
	}
	r.mu.Unlock()
	s.used.set()
	select {
	case <-s.ready:
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("graylane: service %q: waiting for the registry: %w", name, ctx.Err())
	}
}

// publishReadyLocked refreshes the lock-free copy of the services that
// have their first set.
func (r *Router) publishReadyLocked() {
	m := make(map[string]*routedService, len(r.services))
	for name, s := range r.services {
		select {
		case <-s.ready:
			m[name] = s
		default:
		}
	}
	r.ready.Store(&m)
}

// sweep drops the watches of services without calls.
func (r *Router) sweep() {
	defer r.wg.Done()
	t := time.NewTicker(r.idle)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		dropped := false
		for name, s := range r.services {
			if !s.used.Swap(false) {
				s.stop()
				delete(r.services, name)
				dropped = true
			}
		}
		if dropped {
			r.publishReadyLocked()
		}
		r.mu.Unlock()
	}
}

// routedService is one watched service.
type routedService struct {
	name   string
	ready  chan struct{} // closed when the first set has arrived
	used   atomicFlag
	cancel context.CancelFunc
	table  atomic.Pointer[routeTable]

	mu    sync.Mutex
	insts []registry.Instance
	down  map[string]time.Time // address -> skipped until
	timer *time.Timer
}

func (s *routedService) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	if s.timer != nil {
		s.timer.Stop()
	}
}

// watch follows the service in the registry, and the policy, rebuilding the
// routing table on every change.
func (s *routedService) watch(r *Router) {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(r.ctx)
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	defer cancel()
	w, err := r.reg.Watch(ctx, s.name)
	if err != nil {
		s.publish(r, nil, err)
		return
	}
	defer w.Close()
	var changed <-chan struct{}
	if r.dynamic != nil {
		changed = r.dynamic.Changed()
	}
	sets := make(chan []registry.Instance)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			insts, err := w.Next(ctx)
			if err != nil {
				return
			}
			select {
			case sets <- insts:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case insts := <-sets:
			s.publish(r, insts, nil)
		case <-changed:
			changed = r.dynamic.Changed()
			s.mu.Lock()
			insts := s.insts
			s.mu.Unlock()
			s.publish(r, insts, nil)
		case <-ctx.Done():
			return
		}
	}
}

func (s *routedService) publish(r *Router, insts []registry.Instance, err error) {
	if s.publishTable(r, insts, err) {
		// The first set: the hot path may find the service from now on.
		// (Router.mu is taken after routedService.mu is released: the
		// other lock order is the one Close and the sweep use.)
		r.mu.Lock()
		if r.services[s.name] == s {
			r.publishReadyLocked()
		}
		r.mu.Unlock()
	}
}

// publishTable rebuilds the routing table and reports whether it is the
// service's first.
func (s *routedService) publishTable(r *Router, insts []registry.Instance, err error) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.insts = insts
		for addr := range s.down { // a re-registered instance starts afresh
			if !containsAddr(insts, addr) {
				delete(s.down, addr)
			}
		}
	}
	s.rebuildLocked(r, time.Now(), err)
	select {
	case <-s.ready:
		return false
	default:
		close(s.ready)
		return true
	}
}

func containsAddr(insts []registry.Instance, addr string) bool {
	for _, in := range insts {
		if in.Addr == addr {
			return true
		}
	}
	return false
}

func (s *routedService) markDown(r *Router, addr string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !containsAddr(s.insts, addr) {
		return
	}
	s.down[addr] = until
	r.logger.Debug("graylane router: instance skipped after a failed connection", "service", s.name, "addr", addr, "until", until)
	s.rebuildLocked(r, time.Now(), nil)
}

// rebuildLocked computes the routing table for the current instances and
// policy, and arms a timer for the next failed instance to come back.
func (s *routedService) rebuildLocked(r *Router, now time.Time, werr error) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	var next time.Time
	for addr, until := range s.down {
		if !until.After(now) {
			delete(s.down, addr)
		} else if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	if !next.IsZero() {
		s.timer = time.AfterFunc(next.Sub(now), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.rebuildLocked(r, time.Now(), nil)
		})
	}
	s.table.Store(newRouteTable(r, s.name, r.policy(), s.insts, s.down, werr))
}

func (s *routedService) route(r *Router, t tag.Tag) (Route, error) {
	tb := s.table.Load()
	if tb.err != nil {
		return Route{}, tb.err
	}
	rt := tb.untagged
	if !t.IsZero() {
		if rt = tb.byLane.Get(t); rt == nil {
			rt = tb.unknown
			if rt.err != nil {
				rt.stats.N.Add(1)
				if _, err := tb.sp.Decide(s.name, t, tb.stateOf); err != nil {
					return Route{}, err // naming the tag, not the table's stand-in
				}
				return Route{}, rt.err
			}
		}
	}
	n := rt.stats.N.Add(1)
	if rt.err != nil {
		return Route{}, rt.err
	}
	in := rt.lane.insts[rt.seq[rt.mod.Of(uint32(n)+rt.start)]]
	return Route{Instance: in, Lane: rt.lane.name, Reason: rt.reason, TagHeader: rt.tagHeader, FallbackHeader: rt.fbHeader}, nil
}

// routeTable is an immutable routing table for one service, like the gRPC
// picker: every decision is made when it is built.
type routeTable struct {
	err      error // the service cannot be routed at all
	untagged *tableRoute
	unknown  *tableRoute
	byLane   lanes.Index[tableRoute]
	sp       *fallback.ServicePolicy
	lanes    map[string]*tableLane
}

type tableLane struct {
	name  string
	state fallback.State
	insts []registry.Instance // ready ones
	all   []registry.Instance // every one, kept only for Explain
}

// groupLanes groups insts by lane (base for untagged instances) and says
// what state each lane is in: Ready when the registry says one of its
// instances is serving and it is not in down (skipped after a failed
// connection), NotReady otherwise. A Router has no connections to watch,
// so no lane is ever Connecting. It is the one place that turns registry
// health into lane states, for routing tables and for Explain; keepAll
// keeps every instance of each lane, not only the ready ones.
func groupLanes(base string, insts []registry.Instance, down map[string]time.Time, keepAll bool) map[string]*tableLane {
	lanes := map[string]*tableLane{}
	for _, in := range insts {
		name := in.Lane(base)
		l := lanes[name]
		if l == nil {
			l = &tableLane{name: name, state: fallback.NotReady}
			lanes[name] = l
		}
		if keepAll {
			l.all = append(l.all, in)
		}
		if _, isDown := down[in.Addr]; in.Health == registry.Serving && !isDown {
			l.insts = append(l.insts, in)
			l.state = fallback.Ready
		}
	}
	return lanes
}

// unknownServiceError is the error of a service without any instance.
func unknownServiceError(service string) error {
	return fmt.Errorf("graylane: service %q: %w: the registry has no instance of it (%w)", service, ErrUnknownService, fallback.ErrNoInstance)
}

type tableRoute struct {
	err       error
	lane      *tableLane
	reason    fallback.Reason
	seq       []int
	mod       lanes.FastMod // % len(seq)
	start     uint32        // where the rotation starts
	stats     *lanes.Stats
	tagHeader []string
	fbHeader  []string
}

func (tb *routeTable) stateOf(lane string) fallback.State {
	if l := tb.lanes[lane]; l != nil {
		return l.state
	}
	return fallback.Absent
}

func newRouteTable(r *Router, service string, p *fallback.Policy, insts []registry.Instance, down map[string]time.Time, werr error) *routeTable {
	tb := &routeTable{sp: p.Service(service)}
	if werr != nil {
		tb.err = fmt.Errorf("graylane: service %q: %w", service, werr)
		return tb
	}
	if len(insts) == 0 {
		tb.err = unknownServiceError(service)
		return tb
	}
	tb.lanes = groupLanes(p.Base(), insts, down, false)
	seqOf := map[*tableLane][]int{} // one rotation per lane, shared by its routes
	build := func(t tag.Tag, requested string) *tableRoute {
		d, err := tb.sp.Decide(service, t, tb.stateOf)
		rt := &tableRoute{}
		if !t.IsZero() {
			rt.tagHeader = []string{t.String()}
		}
		if err != nil {
			rt.err = err
			reason := lanes.ReasonOf(err)
			rt.stats = r.counters.Decision(service, requested, "", reason)
			r.tel.LogDecision(service, requested, "", reason, err)
			return rt
		}
		// Decide never waits here: no lane of a router is ever Connecting.
		rt.lane, rt.reason = tb.lanes[d.Lane], d.Reason
		if rt.seq = seqOf[rt.lane]; rt.seq == nil {
			w := make([]uint32, len(rt.lane.insts))
			for i, in := range rt.lane.insts {
				w[i] = in.EffectiveWeight()
			}
			rt.seq = lanes.Sequence(w)
			seqOf[rt.lane] = rt.seq
		}
		rt.mod = lanes.NewFastMod(uint32(len(rt.seq)))
		if d.Reason.IsFallback() {
			rt.fbHeader = []string{d.Reason.String()}
			r.tel.LogDecision(service, requested, d.Lane, d.Reason, nil)
		}
		rt.stats = r.counters.Decision(service, requested, d.Lane, d.Reason)
		rt.start = rand.Uint32() // Routers of one service do not move in step
		return rt
	}
	var byLane map[string]*tableRoute
	tb.untagged, byLane, tb.unknown = lanes.Plan(tb.lanes, tb.sp, build)
	tb.byLane = lanes.NewIndex(byLane)
	tb.unknown.tagHeader = nil // an unknown tag is written as it came
	return tb
}

// atomicFlag is an atomic.Bool whose set skips the write when the value is
// already set, so that a flag read on every call does not bounce its cache
// line between cores.
type atomicFlag struct{ atomic.Bool }

func (f *atomicFlag) set() {
	if !f.Load() {
		f.Store(true)
	}
}
