package resolver

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // client-side health checking, for WithHealthCheck

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
)

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
func DialOptions(reg registry.Registry, policy *fallback.Policy, opts ...Option) []grpc.DialOption {
	c := newConfig(opts)
	if c.dynamic != nil {
		policy = c.dynamic.Load()
	}
	return []grpc.DialOption{
		grpc.WithResolvers(newBuilder(reg, c)),
		grpc.WithDefaultServiceConfig(serviceConfig(policy, c)),
	}
}

// serviceConfig renders the service config JSON that selects the balancer.
func serviceConfig(p *fallback.Policy, c config) string {
	type healthCheckConfig struct {
		ServiceName string `json:"serviceName"`
	}
	var sc struct {
		LB          []map[string]*LBConfig `json:"loadBalancingConfig"`
		HealthCheck *healthCheckConfig     `json:"healthCheckConfig,omitempty"`
	}
	lb := &LBConfig{Policy: p}
	if c.idle != nil {
		lb.LaneIdleTimeout = (*Duration)(c.idle)
	}
	if c.wake != nil {
		lb.LaneWakeTimeout = (*Duration)(c.wake)
	}
	sc.LB = []map[string]*LBConfig{{BalancerName: lb}}
	if c.healthCheck != nil {
		sc.HealthCheck = &healthCheckConfig{ServiceName: *c.healthCheck}
	}
	out, err := json.Marshal(sc)
	if err != nil {
		panic(fmt.Sprintf("graylane: service config: %v", err)) // a valid Policy always marshals
	}
	return string(out)
}
