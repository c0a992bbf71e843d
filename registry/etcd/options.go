package etcd

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of the options.
const (
	// DefaultPrefix is the key prefix under which instances are registered.
	DefaultPrefix = "/graylane/services/"
	// DefaultTTL is the lease TTL: how long the instances of a process that
	// stopped without closing its Registry stay registered.
	DefaultTTL = 10 * time.Second
	// MinTTL is the shortest lease TTL accepted. etcd itself raises shorter
	// TTLs to about 1.5 election timeouts (2s with etcd's defaults), and a
	// shorter lease would expire on every leader election.
	MinTTL = 2 * time.Second
)

// Option configures a Registry.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	prefix string
	ttl    time.Duration
	logger *slog.Logger
	mp     metric.MeterProvider
}

func newConfig(opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, ttl: DefaultTTL}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return config{}, fmt.Errorf("graylane etcd: %w", err)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c, nil
}

// WithPrefix sets the key prefix (default DefaultPrefix). It must not be
// empty; a "/" is appended when it does not end with one, so that the
// prefix of service "a" never matches the keys of service "ab". Every
// process of a fleet must use the same prefix; different prefixes make
// separate registries on one etcd cluster.
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) error {
		if prefix == "" {
			return fmt.Errorf("empty key prefix")
		}
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		c.prefix = prefix
		return nil
	})
}

// WithTTL sets the TTL of the lease the instances are registered under
// (default DefaultTTL): the time within which the instances of a process
// that died, or lost etcd, disappear. It is rounded up to whole seconds, the
// unit of etcd leases; a TTL under MinTTL is a configuration error.
// Keep-alives are sent every third of the TTL.
func WithTTL(ttl time.Duration) Option {
	return optionFunc(func(c *config) error {
		if ttl < MinTTL {
			return fmt.Errorf("lease TTL %v is under the minimum %v", ttl, MinTTL)
		}
		c.ttl = ttl.Round(time.Second)
		if c.ttl < ttl {
			c.ttl += time.Second
		}
		return nil
	})
}

// WithLogger sets the logger (nil or by default: slog.Default()). Outages are logged at
// warn level when they start and at info level when they end; skipped
// malformed keys at warn level; lease renewals and watch restarts at debug
// level.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		c.logger = l
		return nil
	})
}

// WithMeterProvider sets the meter provider of the registry's metrics
// (nil or by default: the global one, otel.GetMeterProvider(), as it is
// when New runs). See the package
// documentation for the instruments.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) error {
		c.mp = mp
		return nil
	})
}
