package resolver

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // client-side health checking, for WithHealthCheck

	"github.com/graylane/graylane/fallback"
)

// DialOption configures DialOptions.
type DialOption func(*dialConfig)

type dialConfig struct {
	dynamic     *DynamicPolicy
	healthCheck *string
	idle, wake  *time.Duration
}

// WithDynamicPolicy routes with the policy held by d, following its changes,
// instead of the policy given to DialOptions.
func WithDynamicPolicy(d *DynamicPolicy) DialOption {
	return func(c *dialConfig) { c.dynamic = d }
}

// WithHealthCheck turns on gRPC client-side health checking
// (grpc.health.v1) for service name (often ""): instances that report
// NOT_SERVING are not picked, and a lane whose instances all do is
// unavailable.
func WithHealthCheck(service string) DialOption {
	return func(c *dialConfig) { c.healthCheck = &service }
}

// WithLaneIdleTimeout sets how long a lane other than the base lane may go
// without calls before its connections are closed (default 30m; 0 keeps
// them open).
func WithLaneIdleTimeout(d time.Duration) DialOption {
	return func(c *dialConfig) { c.idle = &d }
}

// WithLaneWakeTimeout sets how long a call for an idle lane waits for the
// lane to connect again before falling back (default 1s).
func WithLaneWakeTimeout(d time.Duration) DialOption {
	return func(c *dialConfig) { c.wake = &d }
}

// DialOptions returns what grpc.NewClient needs to route calls by lane: the
// graylane resolver over reg (targets "graylane:///<service>") and the
// graylane_tag balancer with policy (nil means fallback.Default()). Add
// graylane's client interceptors (package grpcmw) so that calls carry
// their tag to the next hop:
//
//	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, policy),
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()),
//		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor()))...)
func DialOptions(reg Registry, policy *fallback.Policy, opts ...DialOption) []grpc.DialOption {
	var c dialConfig
	for _, o := range opts {
		o(&c)
	}
	var bopts []BuilderOption
	if c.dynamic != nil {
		bopts = append(bopts, WithPolicy(c.dynamic))
		policy = c.dynamic.Load()
	}
	return []grpc.DialOption{
		grpc.WithResolvers(NewBuilder(reg, bopts...)),
		grpc.WithDefaultServiceConfig(serviceConfig(orDefault(policy), c)),
	}
}

// serviceConfig renders the service config JSON that selects the balancer.
func serviceConfig(p *fallback.Policy, c dialConfig) string {
	raw, err := p.MarshalJSON()
	if err != nil {
		panic(fmt.Sprintf("graylane: marshal policy: %v", err)) // a valid Policy always marshals
	}
	var lb map[string]any
	if err := json.Unmarshal(raw, &lb); err != nil {
		panic(fmt.Sprintf("graylane: policy JSON: %v", err))
	}
	if c.idle != nil {
		lb["laneIdleTimeout"] = c.idle.String()
	}
	if c.wake != nil {
		lb["laneWakeTimeout"] = c.wake.String()
	}
	sc := map[string]any{"loadBalancingConfig": []any{map[string]any{BalancerName: lb}}}
	if c.healthCheck != nil {
		sc["healthCheckConfig"] = map[string]any{"serviceName": *c.healthCheck}
	}
	out, err := json.Marshal(sc)
	if err != nil {
		panic(fmt.Sprintf("graylane: service config: %v", err))
	}
	return string(out)
}
