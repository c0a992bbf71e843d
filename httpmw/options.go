package httpmw

import (
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/routing"
)

// Option configures the middleware and the transport.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prop        *propagation.Propagator
	router      *routing.Router
	routeFilter func(*http.Request) bool
	self        *receipt.Self
	receiptKey  string // canonical receipt header of self
	// Hosts asked for receipts on calls that are not routed.
	receiptHosts map[string]bool
}

// WithPropagator sets the Propagator that reads and writes the tag. The
// default is propagation.New() with no options.
func WithPropagator(p *propagation.Propagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	if c.prop == nil {
		p, err := propagation.New()
		if err != nil {
			panic(fmt.Sprintf("httpmw: %v", err))
		}
		c.prop = p
	}
	if c.self != nil {
		if c.self.Header != "" {
			if err := receipt.CheckHeader(c.self.Header); err != nil {
				panic(fmt.Sprintf("httpmw: %v", err))
			}
		}
		c.receiptKey = textproto.CanonicalMIMEHeaderKey(c.self.HeaderName())
	}
	return c
}
