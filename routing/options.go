package routing

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/fallback"
)

// Option configures a Router.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	dynamic *fallback.Dynamic
	mp      metric.MeterProvider
	downFor time.Duration
	max     int
	idle    time.Duration
	logger  *slog.Logger
}

// Defaults of the Router's settings.
const (
	DefaultFailedInstanceTimeout = 5 * time.Second
	DefaultMaxServices           = 1024
	DefaultServiceIdleTimeout    = 10 * time.Minute
)

func newConfig(opts []Option) config {
	c := config{downFor: DefaultFailedInstanceTimeout, max: DefaultMaxServices, idle: DefaultServiceIdleTimeout}
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

// WithDynamicPolicy makes the router use the policy held by d, following
// its changes, instead of the policy given to NewRouter.
func WithDynamicPolicy(d *fallback.Dynamic) Option {
	return optionFunc(func(c *config) { c.dynamic = d })
}

// WithMeterProvider sets the meter provider of the decision counter
// (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithFailedInstanceTimeout sets how long an instance that failed to accept
// a connection is skipped (default DefaultFailedInstanceTimeout).
func WithFailedInstanceTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.downFor = d })
}

// WithMaxServices bounds the number of services watched at once (default
// DefaultMaxServices). A call for one more service fails with an error.
func WithMaxServices(n int) Option { return optionFunc(func(c *config) { c.max = n }) }

// WithServiceIdleTimeout sets how long a service may go without calls
// before its watch is dropped (default DefaultServiceIdleTimeout; 0 keeps
// every watch).
func WithServiceIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.idle = d })
}

// WithLogger sets the logger of the router's events, all at debug level
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }
