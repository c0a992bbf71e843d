package ingress

import (
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
)

// DefaultReceiptHeader is the route receipt request header, which only
// trusted clients may send.
const DefaultReceiptHeader = receipt.Header

// DefaultInterval is how often a Watcher looks at its file.
const DefaultInterval = 250 * time.Millisecond

// Option configures Middleware and NewReverseProxy.
type Option interface{ apply(*config) }

// WatchOption configures Watch.
type WatchOption interface{ applyWatch(*watchConfig) }

// CommonOption configures Middleware, NewReverseProxy and Watch alike.
type CommonOption interface {
	Option
	WatchOption
}

type config struct {
	prop      *propagation.Propagator
	trustFunc func(*http.Request) bool
	receipt   string
	meter     metric.MeterProvider
	logger    *slog.Logger
}

type watchConfig struct {
	interval time.Duration
	onReload func(*Rules, error)
	meter    metric.MeterProvider
	logger   *slog.Logger
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type watchOptionFunc func(*watchConfig)

func (f watchOptionFunc) applyWatch(c *watchConfig) { f(c) }

type commonOption struct {
	gw func(*config)
	w  func(*watchConfig)
}

func (o commonOption) apply(c *config)           { o.gw(c) }
func (o commonOption) applyWatch(c *watchConfig) { o.w(c) }

// WithPropagator sets the Propagator that reads, strips and writes tags. Its
// tag header, baggage member and dialects are the places a client tag is
// looked for and removed from; its own tag (WithOwnTag, GRAYLANE_TAG) is
// never applied at the edge. The default is
// propagation.New(propagation.WithOwnTag("")).
func WithPropagator(p *propagation.Propagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithTrustFunc adds a test that trusts a request, besides Trust.Peers: a
// request is trusted when its peer address is trusted or f returns true,
// for instance because it carries a credential that an outer middleware
// has checked. f sees the request before anything is stripped; it must be
// safe for concurrent use and must not keep the request.
func WithTrustFunc(f func(r *http.Request) bool) Option {
	return optionFunc(func(c *config) { c.trustFunc = f })
}

// WithReceiptHeader names the route receipt header of the services behind
// the gateway, when they rename it (receipt.Self.Header). It is stripped
// from untrusted requests, and so is the default one, "x-graylane-route",
// always: a service that still answers it must not answer outsiders. ""
// names no other header.
func WithReceiptHeader(name string) Option {
	return optionFunc(func(c *config) { c.receipt = name })
}

// WithMeterProvider sets the meter provider of the decision and reload
// counters. The default is the global one (otel.GetMeterProvider()); with
// no provider configured, counting costs nothing measurable.
func WithMeterProvider(mp metric.MeterProvider) CommonOption {
	return commonOption{
		gw: func(c *config) { c.meter = mp },
		w:  func(c *watchConfig) { c.meter = mp },
	}
}

// WithLogger sets the logger: decisions are logged at debug level, proxy
// errors at error level (routing errors at warn), reloads at info level and
// failed reloads at error level. The default is slog.Default().
func WithLogger(l *slog.Logger) CommonOption {
	return commonOption{
		gw: func(c *config) { c.logger = l },
		w:  func(c *watchConfig) { c.logger = l },
	}
}

// WithInterval sets how often a Watcher looks at its file (default 250ms).
// A duration under 10ms is taken as 10ms.
func WithInterval(d time.Duration) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.interval = d })
}

// WithOnReload sets a function the Watcher calls after each attempt to
// apply a changed file: with the new rules and a nil error when they were
// applied, with nil rules and the error when the file was rejected and the
// old rules kept. It is called from the Watcher's goroutine, one call at a
// time, and must not block for long.
func WithOnReload(f func(rs *Rules, err error)) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.onReload = f })
}

func newConfig(opts []Option) config {
	c := config{receipt: DefaultReceiptHeader}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.prop == nil {
		p, err := propagation.New(propagation.WithOwnTag(""))
		if err != nil {
			panic("ingress: " + err.Error())
		}
		c.prop = p
	}
	if c.meter == nil {
		c.meter = otel.GetMeterProvider()
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}
