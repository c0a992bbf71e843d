package ingress

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// NewReverseProxy returns a reverse proxy that forwards every request to
// target, such as http://productpage (a logical service name, resolved by
// transport), through transport; nil transport means
// http.DefaultTransport. Put it behind Middleware, and give it a routing
// transport (one that sends each call to an instance of the request's lane,
// such as httpmw's) to make a lane-aware gateway:
//
//	proxy := ingress.NewReverseProxy(target, routingTransport)
//	http.ListenAndServe(addr, ingress.Middleware(rules)(proxy))
//
// The proxy is set up with Rewrite: the outbound request goes to target
// (its path joined with target's path), its Host header is target's host
// (even if the transport sends it to an instance's address),
// and the tag of the request's context, if any, is written into its headers
// by the Propagator (WithPropagator) so that it is forwarded even by a
// transport that does not inject tags. X-Forwarded-Host and
// X-Forwarded-Proto are set. X-Forwarded-For is set to the client's
// address, appended to the inbound X-Forwarded-For only when Middleware
// found that the direct peer is one of Trust.Proxies (Decision.Proxied):
// the chain a client writes itself is not forwarded.
//
// Errors of the transport become responses with a one-line plain-text body:
//
//   - 503 Service Unavailable when the error wraps fallback.ErrRejected or
//     fallback.ErrNoInstance: the routing found no lane that may serve the
//     request; the body is the routing error, which names the service, the
//     tag, the lane and the reason;
//   - 504 Gateway Timeout when the request's deadline passed;
//   - 502 Bad Gateway for any other error; the body names the target, not
//     the error, which is logged (it may hold internal addresses).
//
// Options used: WithPropagator and WithLogger; the others are ignored.
func NewReverseProxy(target *url.URL, transport http.RoundTripper, opts ...Option) *httputil.ReverseProxy {
	c := newConfig(opts)
	prop, logger := c.prop, c.logger
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			if d, ok := DecisionFromContext(pr.In.Context()); ok && d.Proxied {
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetURL(target)
			pr.Out.Host = target.Host // kept when a routing transport rewrites the URL's host
			pr.SetXForwarded()
			if t, ok := tag.FromContext(pr.In.Context()); ok {
				prop.InjectHeader(pr.Out.Header, t)
			}
		},
		Transport:    transport,
		ErrorHandler: proxyErrorHandler(target, logger),
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
}

func proxyErrorHandler(target *url.URL, logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status, msg, level := http.StatusBadGateway, "graylane: bad gateway: no response from "+target.Host, slog.LevelError
		var fe *fallback.Error
		switch {
		case errors.Is(err, fallback.ErrRejected), errors.Is(err, fallback.ErrNoInstance):
			status, level = http.StatusServiceUnavailable, slog.LevelWarn
			if errors.As(err, &fe) {
				msg = fe.Error()
			} else {
				msg = err.Error()
			}
		case errors.Is(err, context.DeadlineExceeded):
			status, msg, level = http.StatusGatewayTimeout, "graylane: gateway timeout: no response from "+target.Host+" in time", slog.LevelWarn
		case errors.Is(err, context.Canceled):
			level = slog.LevelDebug // the client went away
		}
		msg = oneLine(msg)
		logger.LogAttrs(r.Context(), level, "graylane: proxy error",
			slog.Int("status", status), slog.String("target", target.String()),
			slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg+"\n")
	}
}

// oneLine replaces line breaks, so that a message is one line.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	}
	return s
}
