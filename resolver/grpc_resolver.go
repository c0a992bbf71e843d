package resolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/attributes"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
)

// Scheme is the gRPC target scheme of the resolver: "graylane:///reviews"
// names the service "reviews".
const Scheme = "graylane"

// Keys of the values the resolver puts on each resolver.Endpoint's
// Attributes. The lane is a plain string (the instance's tag, "" for the
// base lane); it rides on the Endpoint, never on the Address, so a retag
// does not reconnect.
type (
	laneAttr   struct{}
	infoAttr   struct{}
	policyAttr struct{}
	meterAttr  struct{}
)

// endpointInfo is the rest of what the balancer needs of an instance, in
// one attribute.
type endpointInfo struct {
	name   string
	weight uint32
	health registry.Health
}

// EndpointLane returns the tag of the instance behind ep ("" for the base
// lane), as set by the resolver.
func EndpointLane(ep grpcresolver.Endpoint) string {
	s, _ := ep.Attributes.Value(laneAttr{}).(string)
	return s
}

// EndpointInstanceName returns the display name of the instance behind ep.
func EndpointInstanceName(ep grpcresolver.Endpoint) string {
	info, _ := ep.Attributes.Value(infoAttr{}).(endpointInfo)
	return info.name
}

func endpointWeight(ep grpcresolver.Endpoint) uint32 {
	info, _ := ep.Attributes.Value(infoAttr{}).(endpointInfo)
	return max(info.weight, 1)
}

func endpointServing(ep grpcresolver.Endpoint) bool {
	info, _ := ep.Attributes.Value(infoAttr{}).(endpointInfo)
	return info.health == registry.Serving
}

func statePolicy(s grpcresolver.State) *fallback.Policy {
	p, _ := s.Attributes.Value(policyAttr{}).(*fallback.Policy)
	return p
}

// stateMeterProvider returns the MeterProvider the resolver hands the
// balancer, or nil for the global one.
func stateMeterProvider(s grpcresolver.State) metric.MeterProvider {
	mp, _ := s.Attributes.Value(meterAttr{}).(metric.MeterProvider)
	return mp
}

// Builder is a gRPC resolver.Builder for the scheme "graylane" over a
// registry. Register it per client with grpc.WithResolvers, or use
// DialOptions.
type Builder struct {
	reg registry.Registry
	cfg config
}

var _ grpcresolver.Builder = (*Builder)(nil)

// NewBuilder returns a resolver builder over reg. WithDynamicPolicy,
// WithMeterProvider and WithLogger apply to it.
func NewBuilder(reg registry.Registry, opts ...Option) *Builder {
	return newBuilder(reg, newConfig(opts))
}

func newBuilder(reg registry.Registry, c config) *Builder {
	return &Builder{reg: reg, cfg: c}
}

// Scheme implements resolver.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Build implements resolver.Builder. The target's endpoint is the service
// name, which must be a valid service name (see registry.ValidateService).
func (b *Builder) Build(target grpcresolver.Target, cc grpcresolver.ClientConn, _ grpcresolver.BuildOptions) (grpcresolver.Resolver, error) {
	service := strings.TrimPrefix(target.Endpoint(), "/")
	if err := registry.ValidateService(service); err != nil {
		return nil, fmt.Errorf("graylane resolver: target %q: %w", target.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.reg.Watch(ctx, service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("graylane resolver: watch %q: %w", service, err)
	}
	r := &grpcResolver{b: b, cc: cc, service: service, cancel: cancel, retry: make(chan struct{}, 1)}
	r.wg.Add(1)
	go r.run(ctx, w)
	return r, nil
}

// Backoff of watches that failed: from minRewatch, doubling up to
// maxRewatch, with jitter. ResolveNow cuts a wait short.
const (
	minRewatch = 100 * time.Millisecond
	maxRewatch = 30 * time.Second
)

type grpcResolver struct {
	b       *Builder
	cc      grpcresolver.ClientConn
	service string
	cancel  context.CancelFunc
	retry   chan struct{} // ResolveNow: retry a failed watch now
	wg      sync.WaitGroup
}

// watchResult is what the reader of a Watcher passes on: a set, or the
// error that ended the watch.
type watchResult struct {
	insts []registry.Instance
	err   error
}

// run pushes each new instance set, and each new policy, to the channel.
// When the watch fails, it keeps the last state, reports the error, and
// watches again with backoff until it succeeds or the resolver closes.
func (r *grpcResolver) run(ctx context.Context, w registry.Watcher) {
	defer r.wg.Done()
	results := make(chan watchResult)
	var (
		insts   []registry.Instance
		have    bool
		changed <-chan struct{}
		backoff = minRewatch
		retryC  <-chan time.Time
		reading = true
	)
	go r.read(ctx, w, results)
	if d := r.b.cfg.dynamic; d != nil {
		changed = d.Changed()
	}
	// retryLater arms the next attempt after a failed watch, backing off.
	retryLater := func() {
		retryC = time.After(backoff + rand.N(backoff/2))
		backoff = min(2*backoff, maxRewatch)
	}
	// retryNow watches again; it arms the next attempt if it cannot.
	retryNow := func() {
		retryC = nil
		if reading = r.rewatch(ctx, results); !reading {
			retryLater()
		}
	}
	for {
		select {
		case res := <-results:
			if res.err != nil {
				reading = false
				if ctx.Err() != nil {
					return
				}
				r.cc.ReportError(fmt.Errorf("graylane resolver: service %q: %w", r.service, res.err))
				r.b.cfg.logger.Debug("graylane resolver: watch failed, watching again", "service", r.service, "in", backoff, "error", res.err)
				retryLater()
				continue
			}
			insts, have = res.insts, true
			backoff = minRewatch
		case <-changed:
			changed = r.b.cfg.dynamic.Changed()
			if !have {
				continue
			}
		case <-r.retry: // ResolveNow: after a failure, try at once
			if !reading {
				retryNow()
			}
			continue
		case <-retryC:
			retryNow()
			continue
		case <-ctx.Done():
			if reading {
				<-results // let the reader finish
			}
			return
		}
		if err := r.cc.UpdateState(r.state(insts)); err != nil {
			r.b.cfg.logger.Debug("graylane resolver: update not accepted", "service", r.service,
				"instances", len(insts), "error", err)
		}
	}
}

// rewatch starts a new watch, reporting whether it could.
func (r *grpcResolver) rewatch(ctx context.Context, results chan<- watchResult) bool {
	w, err := r.b.reg.Watch(ctx, r.service)
	if err != nil {
		if ctx.Err() == nil {
			r.cc.ReportError(fmt.Errorf("graylane resolver: watch %q: %w", r.service, err))
		}
		return false
	}
	go r.read(ctx, w, results)
	return true
}

// read passes on each set of w until it fails, then closes w and passes on
// the error: the last thing it sends.
func (r *grpcResolver) read(ctx context.Context, w registry.Watcher, results chan<- watchResult) {
	var err error
	for err == nil {
		var insts []registry.Instance
		if insts, err = w.Next(ctx); err == nil {
			select {
			case results <- watchResult{insts: insts}:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	}
	w.Close()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	results <- watchResult{err: err}
}

// state turns an instance set into a resolver state: one Endpoint per
// instance with its lane, weight, name and registry health as attributes,
// and the plain addresses for balancers that still read Addresses.
func (r *grpcResolver) state(insts []registry.Instance) grpcresolver.State {
	s := grpcresolver.State{
		Endpoints: make([]grpcresolver.Endpoint, 0, len(insts)),
		Addresses: make([]grpcresolver.Address, 0, len(insts)),
	}
	for _, in := range insts {
		attrs := attributes.New(laneAttr{}, in.Tag.String()).
			WithValue(infoAttr{}, endpointInfo{name: in.DisplayName(), weight: in.EffectiveWeight(), health: in.Health})
		s.Endpoints = append(s.Endpoints, grpcresolver.Endpoint{
			Addresses:  []grpcresolver.Address{{Addr: in.Addr}},
			Attributes: attrs,
		})
		s.Addresses = append(s.Addresses, grpcresolver.Address{Addr: in.Addr})
	}
	if d := r.b.cfg.dynamic; d != nil {
		s.Attributes = s.Attributes.WithValue(policyAttr{}, d.Load())
	}
	if mp := r.b.cfg.mp; mp != nil {
		s.Attributes = s.Attributes.WithValue(meterAttr{}, mp)
	}
	return s
}

// ResolveNow implements resolver.Resolver. Changes are pushed as they
// happen; after a failed watch, it makes the next attempt now.
func (r *grpcResolver) ResolveNow(grpcresolver.ResolveNowOptions) {
	select {
	case r.retry <- struct{}{}:
	default:
	}
}

// Close implements resolver.Resolver: it stops the watch and waits for the
// resolver's goroutines to end.
func (r *grpcResolver) Close() {
	r.cancel()
	r.wg.Wait()
}
