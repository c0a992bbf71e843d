package resolver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
)

// BalancerName is the name of the tag-aware load balancing policy, for the
// service config: {"loadBalancingConfig":[{"graylane_tag":{...}}]}.
const BalancerName = "graylane_tag"

// Defaults of the balancer's own settings.
const (
	// DefaultLaneIdleTimeout is how long a lane other than the base lane
	// may go without a call before its connections are closed.
	DefaultLaneIdleTimeout = 30 * time.Minute
	// DefaultLaneWakeTimeout is how long a call waits for an idle lane to
	// connect again before it falls back.
	DefaultLaneWakeTimeout = time.Second
)

func init() {
	balancer.Register(balancerBuilder{})
}

// LBConfig is the balancer's configuration, the JSON object under its name
// in the service config:
//
//	{"loadBalancingConfig": [{"graylane_tag": {
//		"policy": {"chains": {"dev-alice": ["dev", "prod"]}},
//		"laneIdleTimeout": "30m",
//		"laneWakeTimeout": "1s"
//	}}]}
//
// DialOptions writes it; write it by hand only to configure the balancer
// without graylane's resolver. Unknown keys are ignored, as gRPC does for
// its own policies.
type LBConfig struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	// Policy is the fallback policy in the JSON form of package fallback.
	// Absent or null: fallback.Default(). A policy the resolver hands over
	// (WithDynamicPolicy) takes precedence.
	Policy *fallback.Policy `json:"policy,omitempty"`
	// LaneIdleTimeout is how long a lane other than the base lane may go
	// without calls before its connections are closed, as a Go duration
	// string. Absent: DefaultLaneIdleTimeout; "0s": never.
	LaneIdleTimeout *Duration `json:"laneIdleTimeout,omitempty"`
	// LaneWakeTimeout is how long a call for an idle lane waits for the
	// lane to connect again before falling back. Absent:
	// DefaultLaneWakeTimeout.
	LaneWakeTimeout *Duration `json:"laneWakeTimeout,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string,
// such as "30m" or "250ms". It must not be negative.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30m\", got %s", truncate(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a non-negative duration", truncate([]byte(s)))
	}
	*d = Duration(v)
	return nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func (c *LBConfig) policy() *fallback.Policy {
	if c == nil || c.Policy == nil {
		return fallback.Default()
	}
	return c.Policy
}

func (c *LBConfig) idleTimeout() time.Duration {
	if c == nil || c.LaneIdleTimeout == nil {
		return DefaultLaneIdleTimeout
	}
	return time.Duration(*c.LaneIdleTimeout)
}

func (c *LBConfig) wakeTimeout() time.Duration {
	if c == nil || c.LaneWakeTimeout == nil {
		return DefaultLaneWakeTimeout
	}
	return time.Duration(*c.LaneWakeTimeout)
}

type balancerBuilder struct{}

func (balancerBuilder) Name() string { return BalancerName }

// ParseConfig parses an LBConfig.
func (balancerBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &LBConfig{}
	if len(bytes.TrimSpace(js)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(js, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", BalancerName, err)
	}
	return cfg, nil
}

func (balancerBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &tagBalancer{
		ClientConn: cc,
		cc:         cc,
		service:    strings.TrimPrefix(opts.Target.Endpoint(), "/"),
		lanes:      map[string]*laneInfo{},
		parked:     map[string]bool{},
		counters:   lanes.Shared(nil).NewCounters(),
		cfg:        &LBConfig{},
	}
	b.child = endpointsharding.NewBalancer(b, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// tagBalancer routes each call to an instance of its tag's lane. It
// composes endpointsharding with one pick_first child per instance, and
// builds its picker over the children's pickers grouped by lane.
//
// Locking: childMu serialises calls into the child balancer (from gRPC, from
// lane wake-ups and from the idle sweep); mu guards the rest. The child
// calls UpdateState with its own lock held, so mu is never held while
// calling into the child.
type tagBalancer struct {
	balancer.ClientConn // the parent, for the child's calls
	cc                  balancer.ClientConn
	service             string

	childMu sync.Mutex
	child   balancer.Balancer

	mu          sync.Mutex
	closed      bool
	cfg         *LBConfig
	counters    *lanes.Counters         // this channel's decision counters
	policy      *fallback.Policy        // from the resolver, else cfg.Policy
	endpoints   []grpcresolver.Endpoint // all, from the resolver
	resolverAt  grpcresolver.State
	haveState   bool
	parked      map[string]bool      // lanes whose endpoints are kept from the child
	lanes       map[string]*laneInfo // per-lane state that outlives pickers
	childStates []endpointsharding.ChildState
	childAgg    connectivity.State
	deadline    *time.Timer // next end of a lane's waiting window
	sweep       *time.Timer // idle-lane sweep
}

// laneInfo is what the balancer keeps about a lane between pickers.
type laneInfo struct {
	counted         uint64      // the channel's calls served by the lane at the last sweep
	seq             []int       // rotation of the ready children by index
	seqWeights      []uint32    // the weights seq was made for
	waking          atomic.Bool // a wake-up is under way
	connectingSince time.Time
	waitUntil       time.Time
}

func (b *tagBalancer) UpdateClientConnState(ccs balancer.ClientConnState) error {
	b.childMu.Lock()
	defer b.childMu.Unlock()

	b.mu.Lock()
	if cfg, ok := ccs.BalancerConfig.(*LBConfig); ok && cfg != nil {
		if cfg.idleTimeout() != b.cfg.idleTimeout() {
			stopTimer(b.sweep) // re-armed below with the new timeout
			b.sweep = nil
		}
		b.cfg = cfg
	}
	b.policy = statePolicy(ccs.ResolverState)
	if b.policy == nil {
		b.policy = b.cfg.policy()
	}
	if tel := lanes.Shared(stateMeterProvider(ccs.ResolverState)); tel != b.counters.Telemetry() {
		b.counters.Close()
		b.counters = tel.NewCounters()
	}
	b.endpoints = ccs.ResolverState.Endpoints
	b.resolverAt = ccs.ResolverState
	b.haveState = len(b.endpoints) > 0
	present := b.lanesPresentLocked()
	for lane := range b.parked {
		if !present[lane] {
			delete(b.parked, lane)
		}
	}
	for lane := range b.lanes {
		if !present[lane] {
			delete(b.lanes, lane)
		}
	}
	b.scheduleSweepLocked()
	state := b.childStateLocked()
	b.mu.Unlock()

	return b.child.UpdateClientConnState(balancer.ClientConnState{ResolverState: state})
}

// lanesPresentLocked returns the lanes that have at least one endpoint.
func (b *tagBalancer) lanesPresentLocked() map[string]bool {
	out := map[string]bool{}
	for _, ep := range b.endpoints {
		out[b.laneOf(ep)] = true
	}
	return out
}

func (b *tagBalancer) laneOf(ep grpcresolver.Endpoint) string {
	if l := EndpointLane(ep); l != "" {
		return l
	}
	return b.policy.Base()
}

// childStateLocked is the resolver state handed to the child: every
// endpoint except those of parked lanes, with pick_first's health listener
// on so that client-side health checking, when configured, takes
// NOT_SERVING instances out of rotation.
func (b *tagBalancer) childStateLocked() grpcresolver.State {
	s := b.resolverAt
	s.Endpoints = make([]grpcresolver.Endpoint, 0, len(b.endpoints))
	for _, ep := range b.endpoints {
		if !b.parked[b.laneOf(ep)] {
			s.Endpoints = append(s.Endpoints, ep)
		}
	}
	s.Addresses = nil
	return pickfirst.EnableHealthListener(s)
}

// ResolverError keeps serving the last good state; only before the first
// good state does the error reach the child (and fail calls).
func (b *tagBalancer) ResolverError(err error) {
	b.mu.Lock()
	have := b.haveState
	b.mu.Unlock()
	if have {
		b.counters.Telemetry().Log().Debug("graylane balancer: resolver error ignored, keeping the last state",
			"service", b.service, "error", err)
		return
	}
	b.childMu.Lock()
	defer b.childMu.Unlock()
	b.child.ResolverError(err)
}

func (b *tagBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *tagBalancer) ExitIdle() {
	b.childMu.Lock()
	defer b.childMu.Unlock()
	b.child.ExitIdle()
}

func (b *tagBalancer) Close() {
	b.mu.Lock()
	b.closed = true
	stopTimer(b.deadline)
	stopTimer(b.sweep)
	b.counters.Close() // what the channel counted stays in the totals
	b.mu.Unlock()
	b.childMu.Lock()
	defer b.childMu.Unlock()
	b.child.Close()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// UpdateState receives the child's state (it is the child's ClientConn)
// and publishes a picker built from it.
func (b *tagBalancer) UpdateState(s balancer.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.childStates = endpointsharding.ChildStatesFromPicker(s.Picker)
	b.childAgg = s.ConnectivityState
	b.publishLocked()
}

// publishLocked builds a picker from the latest child states and sends it
// to the channel.
func (b *tagBalancer) publishLocked() {
	now := time.Now()
	sp := b.policy.Service(b.service)
	states := b.laneStatesLocked(now, sp.FailoverTimeout())
	p := newPicker(b, sp, states)
	// The channel's state is what calls will meet: READY as soon as one
	// lane can serve, and not READY while connected instances all say they
	// are not serving.
	agg := b.childAgg
	switch {
	case p.anyReady:
		agg = connectivity.Ready
	case agg != connectivity.Ready:
	case p.anyConnecting:
		agg = connectivity.Connecting
	default:
		agg = connectivity.TransientFailure
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: agg, Picker: p})
	b.scheduleDeadlineLocked(now)
}

// laneView is one lane as a picker sees it.
type laneView struct {
	name   string
	info   *laneInfo
	state  fallback.State
	parked bool
	ready  []readyChild
}

type readyChild struct {
	picker balancer.Picker
	weight uint32
}

// rotation returns the lane's ready children's pickers in weighted
// round-robin order. The order depends only on the weights, so it is
// worked out again only when they change: a state change elsewhere in a
// large service costs this lane a copy of its pickers.
func (v *laneView) rotation() []balancer.Picker {
	info := v.info
	w := make([]uint32, len(v.ready))
	for i, c := range v.ready {
		w[i] = c.weight
	}
	if !slices.Equal(w, info.seqWeights) {
		info.seq, info.seqWeights = lanes.Sequence(w), w
	}
	slots := make([]balancer.Picker, len(info.seq))
	for i, j := range info.seq {
		slots[i] = v.ready[j].picker
	}
	return slots
}

// laneStatesLocked groups the children by lane and says what state each
// lane is in, keeping each lane's waiting window (failover timeout, or
// wake timeout for a lane coming back from idle) up to date.
func (b *tagBalancer) laneStatesLocked(now time.Time, failover time.Duration) map[string]*laneView {
	views := make(map[string]*laneView, len(b.lanes))
	view := func(lane string) *laneView {
		v := views[lane]
		if v == nil {
			info := b.lanes[lane]
			if info == nil {
				info = &laneInfo{}
				b.lanes[lane] = info
			}
			v = &laneView{name: lane, info: info, state: fallback.NotReady}
			views[lane] = v
		}
		return v
	}
	connecting := make(map[string]bool, len(b.lanes))
	for _, cs := range b.childStates {
		lane := b.laneOf(cs.Endpoint)
		v := view(lane)
		switch cs.State.ConnectivityState {
		case connectivity.Ready:
			if endpointServing(cs.Endpoint) {
				v.ready = append(v.ready, readyChild{picker: cs.State.Picker, weight: endpointWeight(cs.Endpoint)})
			}
		case connectivity.Connecting, connectivity.Idle:
			connecting[lane] = true
		}
	}
	for lane := range b.parked {
		v := view(lane)
		v.state, v.parked = fallback.Connecting, true // woken by the first call
	}
	base := b.policy.Base()
	for lane, v := range views {
		if b.parked[lane] {
			continue
		}
		info := v.info
		switch {
		case len(v.ready) > 0:
			v.state = fallback.Ready
			info.connectingSince, info.waitUntil = time.Time{}, time.Time{}
		case connecting[lane] && lane == base:
			// Nowhere to fall back to: wait, as any balancer would.
			v.state = fallback.Connecting
		case connecting[lane]:
			if info.connectingSince.IsZero() {
				info.connectingSince = now
				info.waitUntil = now.Add(failover)
			}
			if now.Before(info.waitUntil) {
				v.state = fallback.Connecting
			}
		default:
			info.connectingSince, info.waitUntil = time.Time{}, time.Time{}
		}
	}
	return views
}

// scheduleDeadlineLocked arms a timer for the earliest end of a waiting
// window, so that calls held for a connecting lane fall back on time.
func (b *tagBalancer) scheduleDeadlineLocked(now time.Time) {
	var next time.Time
	for _, info := range b.lanes {
		if w := info.waitUntil; w.After(now) && (next.IsZero() || w.Before(next)) {
			next = w
		}
	}
	stopTimer(b.deadline)
	b.deadline = nil
	if next.IsZero() {
		return
	}
	b.deadline = time.AfterFunc(next.Sub(now), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.closed {
			b.publishLocked()
		}
	})
}

// wake brings a parked lane back: its endpoints go to the child again, and
// calls for it wait up to the wake timeout (or the failover timeout, if
// longer) for a connection.
func (b *tagBalancer) wake(lane string) {
	b.childMu.Lock()
	defer b.childMu.Unlock()
	b.mu.Lock()
	info := b.lanes[lane]
	if b.closed || !b.parked[lane] {
		b.mu.Unlock()
		return
	}
	delete(b.parked, lane)
	now := time.Now()
	wait := max(b.cfg.wakeTimeout(), b.policy.Service(b.service).FailoverTimeout())
	if info != nil {
		info.connectingSince, info.waitUntil = now, now.Add(wait)
		info.waking.Store(false)
	}
	b.counters.Telemetry().Log().Debug("graylane balancer: waking idle lane", "service", b.service, "lane", lane)
	state := b.childStateLocked()
	b.mu.Unlock()
	b.child.UpdateClientConnState(balancer.ClientConnState{ResolverState: state})
}

// scheduleSweepLocked arms the idle-lane sweep if lanes other than the base
// lane are connected and the idle timeout is on.
func (b *tagBalancer) scheduleSweepLocked() {
	if b.sweep != nil || b.cfg.idleTimeout() <= 0 {
		return
	}
	b.sweep = time.AfterFunc(b.cfg.idleTimeout(), b.sweepIdle)
}

// sweepIdle parks every lane but the base lane that had no call since the
// previous sweep: its connections close until a call needs it again.
func (b *tagBalancer) sweepIdle() {
	b.childMu.Lock()
	defer b.childMu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.sweep = nil
	if b.cfg.idleTimeout() <= 0 { // turned off since the sweep was armed
		b.mu.Unlock()
		return
	}
	base := b.policy.Base()
	var parked []string
	for lane, info := range b.lanes {
		if lane == base || b.parked[lane] {
			continue
		}
		calls := b.counters.Calls(lane)
		used := calls != info.counted
		info.counted = calls
		if !used && info.connectingSince.IsZero() {
			b.parked[lane] = true
			parked = append(parked, lane)
		}
	}
	b.scheduleSweepLocked()
	if len(parked) == 0 {
		b.mu.Unlock()
		return
	}
	b.counters.Telemetry().Log().Debug("graylane balancer: parking idle lanes", "service", b.service, "lanes", parked)
	state := b.childStateLocked()
	b.mu.Unlock()
	b.child.UpdateClientConnState(balancer.ClientConnState{ResolverState: state})
}
