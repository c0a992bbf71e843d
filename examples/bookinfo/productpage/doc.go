// Package productpage is the Bookinfo product page: the HTTP service
// people see. It asks details (HTTP) for the book's data and reviews
// (gRPC) for its reviews, and renders them.
//
// Routes:
//
//	GET  /, /index.html        landing page, with links to /productpage?u=normal and ?u=test
//	GET  /health               200 "Product page is healthy"
//	POST /login                form field username (passwd is ignored): remembers the user
//	GET  /logout               forgets the user
//	GET  /productpage          the page of product 0; always 200
//	GET  /api/v1/products      the one product: id 0, "The Comedy of Errors"
//	GET  /api/v1/products/{id}          details JSON, passed through
//	GET  /api/v1/products/{id}/reviews  reviews JSON: {"id": "0", "podname": …, "clustername": "null", "reviews": […]}
//	GET  /api/v1/products/{id}/ratings  ratings JSON: {"id": 0, "ratings": {…}}
//	GET  /metrics              the request_result_total counter (OpenTelemetry, Prometheus text format; see WithMetrics)
//
// # Upstream calls
//
// details is called once, with a 3 s timeout; reviews up to two times,
// each attempt with a 3 s timeout, so that a reviews delay of 7 s fails
// the page after about 6 s, as in the original (an attempt is repeated
// whatever made it fail, an invalid id included); ratings, used by the API
// only, once with a 3 s timeout. The options change these numbers.
//
// When a call fails, the API answers {"error": "Sorry, product details are
// currently unavailable for this book."} (or "product reviews", "product
// ratings") with the status of the upstream: the status details answered
// with, or the gRPC code mapped to HTTP (InvalidArgument 400, NotFound
// 404, Unimplemented 501), or 500 when the call failed otherwise or timed
// out. The page shows "Error fetching product details" or "Error fetching
// product reviews" and the sentence instead of the section. The JSON is
// written as the original writes it, with a space after each colon and
// comma.
//
// Every call is built from the context of the inbound request, so that
// whatever travels in it (graylane's traffic tag) goes on, and carries
// the headers the Bookinfo services forward, when present: x-request-id,
// traceparent, tracestate, the B3 headers (x-b3-traceid, x-b3-spanid,
// x-b3-parentspanid, x-b3-sampled, x-b3-flags, b3), user-agent, cookie and
// authorization, and end-user with the name of the logged-in user. An
// inbound end-user header is not forwarded. On gRPC calls they travel as
// metadata, except user-agent, which gRPC sets itself.
//
// # Users
//
// Logging in sets the cookie "user" to the user name in plain text, so
// that a gateway can route on it (e.g. tag the requests of "jason" gray);
// there is no other session state, and no authentication: the password is
// ignored, as in the original. Names keep only the characters a cookie
// value may hold unquoted, at most 64 bytes. Login and logout redirect
// (302) to the path and query of the Referer, or to /productpage.
//
// # Metrics
//
// Each call to an upstream (each reviews call counted once, after its
// attempts) increments request_result_total{destination_app,
// response_code}, where response_code is the HTTP status as above.
//
// # Lanes
//
// WithGray puts a "GRAY LANE · <instance>" banner on every page. WithRoute
// connects a source of the route the request took (graylane's route
// receipt); the product page then lists each hop: service, instance, lane,
// and the fallback reason when the hop left the request's lane.
//
// WithPageView connects a hook told of every product page view (product,
// user, instance) with the request's context: the demo publishes each view
// as an event, in the request's lane.
//
// The page needs neither JavaScript nor anything from the network: its CSS
// is inline, and the stars are characters.
package productpage
