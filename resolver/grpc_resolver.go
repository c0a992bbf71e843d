package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/grpc/attributes"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/fallback"
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
)

// endpointInfo is the rest of what the balancer needs of an instance, in
// one attribute.
type endpointInfo struct {
	name   string
	weight uint32
	health Health
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
	return info.health == Serving
}

func statePolicy(s grpcresolver.State) *fallback.Policy {
	p, _ := s.Attributes.Value(policyAttr{}).(*fallback.Policy)
	return p
}

// Builder is a gRPC resolver.Builder for the scheme "graylane" over a
// Registry. Register it per client with grpc.WithResolvers, or use
// DialOptions.
type Builder struct {
	reg    Registry
	policy *DynamicPolicy
	logger *slog.Logger
}

var _ grpcresolver.Builder = (*Builder)(nil)

// BuilderOption configures a Builder.
type BuilderOption func(*Builder)

// WithPolicy makes the resolver hand the balancer the policy of d, and the
// new one each time d changes. It takes precedence over the policy in the
// service config.
func WithPolicy(d *DynamicPolicy) BuilderOption {
	return func(b *Builder) { b.policy = d }
}

// WithResolverLogger sets the logger of resolver events (debug level).
func WithResolverLogger(l *slog.Logger) BuilderOption {
	return func(b *Builder) { b.logger = l }
}

// NewBuilder returns a resolver builder over reg.
func NewBuilder(reg Registry, opts ...BuilderOption) *Builder {
	b := &Builder{reg: reg, logger: slog.Default()}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Scheme implements resolver.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Build implements resolver.Builder. The target's endpoint is the service
// name, which must be a valid service name (see Instance.Validate).
func (b *Builder) Build(target grpcresolver.Target, cc grpcresolver.ClientConn, _ grpcresolver.BuildOptions) (grpcresolver.Resolver, error) {
	service := strings.TrimPrefix(target.Endpoint(), "/")
	if err := ValidateService(service); err != nil {
		return nil, fmt.Errorf("graylane resolver: target %q: %w", target.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.reg.Watch(ctx, service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("graylane resolver: watch %q: %w", service, err)
	}
	r := &grpcResolver{b: b, cc: cc, service: service, w: w, cancel: cancel}
	r.wg.Add(1)
	go r.run(ctx)
	return r, nil
}

type grpcResolver struct {
	b       *Builder
	cc      grpcresolver.ClientConn
	service string
	w       Watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// run pushes each new instance set, and each new policy, to the channel.
func (r *grpcResolver) run(ctx context.Context) {
	defer r.wg.Done()
	sets := make(chan []Instance)
	go func() {
		defer close(sets)
		for {
			insts, err := r.w.Next(ctx)
			if err != nil {
				if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
					r.cc.ReportError(err)
				}
				return
			}
			select {
			case sets <- insts:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		insts   []Instance
		have    bool
		changed <-chan struct{}
	)
	if r.b.policy != nil {
		changed = r.b.policy.Changed()
	}
	for {
		select {
		case s, ok := <-sets:
			if !ok {
				return
			}
			insts, have = s, true
		case <-changed:
			changed = r.b.policy.Changed()
			if !have {
				continue
			}
		case <-ctx.Done():
			for range sets { // let the reader finish
			}
			return
		}
		state := r.state(insts)
		if err := r.cc.UpdateState(state); err != nil {
			r.b.logger.Debug("graylane resolver: update not accepted", "service", r.service,
				"instances", len(insts), "error", err)
		}
	}
}

// state turns an instance set into a resolver state: one Endpoint per
// instance with its lane, weight, name and registry health as attributes,
// and the plain addresses for balancers that still read Addresses.
func (r *grpcResolver) state(insts []Instance) grpcresolver.State {
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
	if r.b.policy != nil {
		s.Attributes = attributes.New(policyAttr{}, r.b.policy.Load())
	}
	return s
}

// ResolveNow implements resolver.Resolver. Changes are pushed as they
// happen, so there is nothing to do.
func (r *grpcResolver) ResolveNow(grpcresolver.ResolveNowOptions) {}

// Close implements resolver.Resolver: it stops the watch and waits for the
// resolver's goroutines to end.
func (r *grpcResolver) Close() {
	r.cancel()
	r.w.Close()
	r.wg.Wait()
}
