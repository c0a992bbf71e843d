package httpmw

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"syscall"

	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// WithRouting makes the Transport route requests by lane: a request for a
// logical host, such as http://reviews/reviews/0, goes to an instance of
// the service "reviews" chosen by router for the tag of the request's
// context, with the same rules as graylane's gRPC balancer (the request's
// own tag first, then its fallback chain, down to the base lane).
//
// A host is logical when the URL's scheme is http, it has no port, and it
// is neither an IP address nor "localhost" (narrow it further with
// WithRouteFilter). The request sent has the instance's address in its URL
// and keeps the logical name in its Host header. When the call falls back,
// it carries the reason in the x-graylane-fallback header. When the
// request's context holds a recording span (an otelhttp.Transport around
// this one), the decision is set on it: routing.AttrService, AttrTag,
// AttrLane and AttrReason.
//
// If the router cannot route the request, RoundTrip returns an error
// without sending anything; errors.Is tells the causes apart:
// routing.ErrUnknownService (no instance of the service at all),
// fallback.ErrRejected (strict mode) and fallback.ErrNoInstance (no ready
// instance in the fallback chain). A reverse proxy turns them into 503 (see
// package ingress). If an instance refuses the connection, it is reported
// to the router (which skips it for a while) and the request is sent once
// more, to a new choice, when its body can be replayed; so is an
// idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) whose
// connection closed before any response, as when the instance stops
// gracefully while a kept-alive connection is being reused.
func WithRouting(router *routing.Router) Option {
	return optionFunc(func(c *config) { c.router = router })
}

// WithRouteFilter narrows which requests WithRouting routes: only those for
// which routed returns true (and whose host is logical).
func WithRouteFilter(routed func(*http.Request) bool) Option {
	return optionFunc(func(c *config) { c.routeFilter = routed })
}

var fallbackKey = textproto.CanonicalMIMEHeaderKey(fallback.Header)

// logicalHost returns the service name of a request to be routed, or "".
func (t *Transport) logicalHost(req *http.Request) string {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Port() != "" {
		return ""
	}
	host := u.Hostname()
	if host == "" || host == "localhost" || ipLiteral(host) {
		return ""
	}
	if t.routeFilter != nil && !t.routeFilter(req) {
		return ""
	}
	return host
}

func (t *Transport) roundTripRouted(req *http.Request, service string, tg tag.Tag) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		route, err := t.router.Route(req.Context(), service, tg)
		if err != nil {
			closeBody(req)
			if rc := receipt.FromContext(req.Context()); rc != nil {
				rc.Add(rc.Failed(service, tg.String(), err))
			}
			if span := trace.SpanFromContext(req.Context()); span.IsRecording() {
				span.SetAttributes(routing.AttrService.String(service), routing.AttrTag.String(tg.String()),
					routing.AttrLane.String(""), routing.AttrReason.String(lanes.ReasonOf(err).String()))
			}
			return nil, err
		}
		if span := trace.SpanFromContext(req.Context()); span.IsRecording() {
			span.SetAttributes(routing.AttrService.String(service), routing.AttrTag.String(tg.String()),
				routing.AttrLane.String(route.Lane), routing.AttrReason.String(route.Reason.String()))
		}
		r2 := t.routedCopy(req, route, tg)
		rc := receipt.FromContext(r2.Context())
		if rc != nil {
			askReceipt(r2.Header, rc)
		}
		resp, err := t.base.RoundTrip(r2)
		if rc != nil {
			collectReceipt(resp, rc)
		}
		if err == nil || attempt > 0 {
			return resp, err
		}
		switch {
		case refused(err):
			t.router.Failed(route.Instance)
		case closedBeforeResponse(err) && idempotent(req.Method):
			// The instance closed a kept-alive connection as the request
			// went out on it (a graceful stop races with reuse): nothing
			// was answered, so an idempotent request goes once more.
		default:
			return resp, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = shallowWithBody(req, body)
		}
	}
}

// routedCopy returns the request to send to the chosen instance: a copy of
// req (allocated together with its URL) with its own header map.
func (t *Transport) routedCopy(req *http.Request, route routing.Route, tg tag.Tag) *http.Request {
	both := new(struct {
		req http.Request
		url url.URL
	})
	both.req = *req
	both.url = *req.URL
	both.url.Host = route.Instance.Addr
	r2 := &both.req
	r2.URL = &both.url
	if r2.Host == "" {
		r2.Host = req.URL.Host
	}
	r2.Header = headerCopy(req.Header, fallbackKey) // only the router says why it fell back
	if route.FallbackHeader != nil {
		r2.Header[fallbackKey] = route.FallbackHeader
	}
	if !tg.IsZero() {
		t.prop.InjectHeader(r2.Header, tg)
	}
	return r2
}

// ipLiteral reports whether host is an IP address rather than a name,
// without allocating: an IPv6 address has colons, and a DNS name is never
// made only of digits and dots.
func ipLiteral(host string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// closedBeforeResponse reports whether err means the connection closed or
// was reset before any response came.
func closedBeforeResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// idempotent reports whether a request with method may be sent twice
// (RFC 9110, section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// refused reports whether err means the connection was never made, so the
// request was not sent.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func shallowWithBody(req *http.Request, body io.ReadCloser) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	r2.Body = body
	return r2
}
