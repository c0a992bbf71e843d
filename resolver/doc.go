// Package resolver routes gRPC calls by lane: a resolver for targets
// "graylane:///<service>" that reads a service's instances from a registry
// (package registry), and the load balancing policy "graylane_tag" that
// sends each call to an instance of its tag's lane, or falls back by the
// policy (package fallback). DialOptions gives grpc.NewClient both:
//
//	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, policy),
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()))...)
//
// Importing the package registers the balancer with gRPC, as grpc-go's own
// policies do.
//
// # Resolver
//
// The resolver watches the service in the registry and publishes one
// resolver.Endpoint per instance, with the instance's lane, weight, name
// and registry health as Endpoint attributes (never Address attributes, so
// a retag does not reconnect). A registry outage keeps the last set. When
// a watch fails, the resolver reports the error to the channel, keeps the
// last state, and watches again with backoff (from 100ms to 30s, cut short
// by ResolveNow) until it succeeds.
//
// # Balancer
//
// The balancer composes grpc-go's endpointsharding with one pick_first
// child per instance, as round_robin does, and groups the children by lane.
// Every decision a call can meet is worked out when the picker is built, so
// Pick is a tag lookup, one atomic add and the child's Pick: it never locks
// and never allocates. The add is on the channel's own counter of that
// decision, which outlives pickers: it is counted in the decision metric,
// and it is the route's rotation, started at a random slot, so that two
// channels to one service never move in step. The idle-lane sweep reads
// the channel's own counters too. A lane is ready when
// one of its instances is connected and serving (registry health, and
// grpc.health.v1 with WithHealthCheck); the channel reports READY when a
// lane can serve, TRANSIENT_FAILURE when instances are connected but none
// serves, and CONNECTING while a lane is still connecting.
//
// Strict-mode rejections fail with codes.Unavailable status errors naming
// service, tag and reason, so even wait-for-ready calls fail at once; when
// no lane of the chain has an instance, wait-for-ready calls wait for one.
// A call that falls back carries the reason in the metadata key
// fallback.Header.
//
// Lanes other than the base lane that go without calls for the lane idle
// timeout (LBConfig.LaneIdleTimeout, 30m by default, "0s" for never) are
// parked: their connections close until a call needs them again, which
// waits up to the lane wake timeout for them to reconnect before falling
// back. Changing the idle timeout in the service config re-arms the sweep.
//
// The balancer's configuration is an LBConfig in the service config, which
// DialOptions writes; a fallback.Dynamic given with WithDynamicPolicy
// reaches the balancer through the resolver and takes precedence.
//
// # Telemetry
//
// Decisions count in the counter routing.DecisionMetric, shared with the
// HTTP Router (see package routing), on the global MeterProvider or the one
// given with WithMeterProvider; the active span of the call gets the
// decision's attributes when it records.
package resolver
