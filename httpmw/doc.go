// Package httpmw carries the traffic tag through net/http servers and
// clients.
//
// On the server side, Middleware (or NewHandler) reads the tag of each
// inbound request, with the sources and rules of a propagation.Propagator,
// and puts it into the request's context (tag.NewContext). It works with any
// router that takes func(http.Handler) http.Handler middleware, chi's r.Use
// among them.
//
// On the client side, Transport is an http.RoundTripper that writes the tag
// of the request's context on every outbound request. It never modifies the
// caller's request: when something must change it sends a copy, and when
// nothing must change (no tag, or the header already right) it sends the
// request as it is, at no cost.
//
// # Bad input
//
// A missing, invalid, ambiguous or oversized tag never fails a request: the
// source is skipped as if absent, the rejection is counted (see package
// propagation), and the request is served. The middleware does not remove a
// tag that an outer middleware already put into the context when the
// request itself carries none.
//
// # Configuration errors
//
// Options are checked when the middleware or transport is built. The
// default Propagator reads the GRAYLANE_TAG environment variable; if it holds
// an invalid tag, Middleware, NewHandler and NewTransport panic with the
// error, at start-up. Build the Propagator with propagation.New and pass it
// with WithPropagator to handle the error yourself.
package httpmw
