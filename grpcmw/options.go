package grpcmw

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
)

// Option configures the interceptors.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prop           *propagation.Propagator
	self           *receipt.Self
	receiptTargets map[string]bool
}

// WithReceiptTargets names the channel targets, as given to grpc.NewClient
// ("dns:///billing:443"), whose calls the client interceptors ask for route
// receipts besides the calls routed by graylane's resolver (targets
// "graylane:///<service>"). By default they ask only on routed calls: a
// receipt answered by any other server would be believed, and the call
// would tell that server that receipts are on.
func WithReceiptTargets(targets ...string) Option {
	return optionFunc(func(c *config) {
		if c.receiptTargets == nil {
			c.receiptTargets = map[string]bool{}
		}
		for _, t := range targets {
			c.receiptTargets[t] = true
		}
	})
}

// routedScheme is the target scheme of graylane's resolver (see package
// resolver), whose instances come from the registry.
const routedScheme = "graylane:"

// asksReceipt reports whether calls on cc may ask for route receipts.
func (c *config) asksReceipt(cc *grpc.ClientConn) bool {
	if cc == nil {
		return false
	}
	t := cc.Target()
	return strings.HasPrefix(t, routedScheme) || c.receiptTargets[t]
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
