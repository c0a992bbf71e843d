package grpcmw

import (
	"fmt"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
)

// Option configures the interceptors.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prop *propagation.Propagator
	self *receipt.Self
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
			panic(fmt.Sprintf("grpcmw: %v", err))
		}
		c.prop = p
	}
	if c.self != nil && c.self.Header != "" {
		if err := receipt.CheckHeader(c.self.Header); err != nil {
			panic(fmt.Sprintf("grpcmw: %v", err))
		}
	}
	return c
}
