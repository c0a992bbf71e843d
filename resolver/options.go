package resolver

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/fallback"
)

// Option configures DialOptions and NewBuilder.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	dynamic     *fallback.Dynamic
	healthCheck *string
	idle, wake  *time.Duration
	mp          metric.MeterProvider
	logger      *slog.Logger
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

// WithDynamicPolicy routes with the policy held by d, following its
// changes: the resolver hands the balancer each new policy. It takes
// precedence over the policy given to DialOptions and over the one in the
// service config.
func WithDynamicPolicy(d *fallback.Dynamic) Option {
	return optionFunc(func(c *config) { c.dynamic = d })
}

// WithHealthCheck turns on gRPC client-side health checking
// (grpc.health.v1) for service name (often ""): instances that report
// NOT_SERVING are not picked, and a lane whose instances all do is
// unavailable. DialOptions only.
func WithHealthCheck(service string) Option {
	return optionFunc(func(c *config) { c.healthCheck = &service })
}

// WithLaneIdleTimeout sets how long a lane other than the base lane may go
// without calls before its connections are closed (default
// DefaultLaneIdleTimeout; 0 keeps them open). DialOptions only.
func WithLaneIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.idle = &d })
}

// WithLaneWakeTimeout sets how long a call for an idle lane waits for the
// lane to connect again before falling back (default
// DefaultLaneWakeTimeout). DialOptions only.
func WithLaneWakeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.wake = &d })
}

// WithMeterProvider sets the MeterProvider of the balancer's decision
// counter (default: the global one). Channels that share a provider add up
// in the same counters.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger sets the logger of resolver and balancer events, all at debug
// level (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
