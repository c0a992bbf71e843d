package httpmw

import (
	"net/http"
	"strings"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// Transport is an http.RoundTripper that writes the tag of each request's
// context on the request before handing it to the base RoundTripper. It is
// safe for concurrent use.
type Transport struct {
	base         http.RoundTripper
	prop         *propagation.Propagator
	router       *routing.Router
	routeFilter  func(*http.Request) bool
	receiptHosts map[string]bool
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport over base; nil base means
// http.DefaultTransport.
func NewTransport(base http.RoundTripper, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	c := newConfig(opts)
	return &Transport{base: base, prop: c.prop, router: c.router, routeFilter: c.routeFilter, receiptHosts: c.receiptHosts}
}

// RoundTrip implements http.RoundTripper. The caller's request is never
// modified: if the context carries a tag that the request's headers do not
// already carry, a copy with its own header map is sent. When the context
// holds a route receipt, the call asks for the next service's hops only
// if it is routed (WithRouting) or goes to a host of WithReceiptHosts.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tg, ok := tag.FromContext(ctx)
	if t.router != nil {
		if service := t.logicalHost(req); service != "" {
			return t.roundTripRouted(req, service, tg)
		}
	}
	rc := receipt.FromContext(ctx)
	if rc != nil && !t.asksReceipt(req) {
		rc = nil
	}
	if rc == nil && (!ok || t.prop.HeaderCarries(req.Header, tg)) {
		return t.base.RoundTrip(req)
	}
	r2 := withHeaderCopy(req)
	t.prop.InjectHeader(r2.Header, tg)
	if rc == nil {
		return t.base.RoundTrip(r2)
	}
	askReceipt(r2.Header, rc)
	resp, err := t.base.RoundTrip(r2)
	collectReceipt(resp, rc)
	return resp, err
}

// asksReceipt reports whether a call that is not routed may ask its host
// for a route receipt: only a host of WithReceiptHosts.
func (t *Transport) asksReceipt(req *http.Request) bool {
	if len(t.receiptHosts) == 0 || req.URL == nil {
		return false
	}
	return t.receiptHosts[strings.ToLower(req.URL.Host)]
}

// CloseIdleConnections closes the idle connections of the base
// RoundTripper, if it has such a method (http.Client.CloseIdleConnections
// calls it).
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// withHeaderCopy returns a shallow copy of req with a header map of its
// own, with room for one more key. The value slices are shared, capped at
// their length so that an append to them copies instead of writing into the
// caller's array.
func withHeaderCopy(req *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	r2.Header = headerCopy(req.Header, "")
	return r2
}

// headerCopy returns a copy of h without the key skip, with room for two
// more keys, sharing the value slices capped at their length.
func headerCopy(h http.Header, skip string) http.Header {
	out := make(http.Header, len(h)+2)
	for k, v := range h {
		if k != skip {
			out[k] = v[:len(v):len(v)]
		}
	}
	return out
}
