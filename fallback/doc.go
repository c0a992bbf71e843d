// Package fallback makes the routing decision of graylane: for one hop of a
// request, given the request's tag and the state of each lane of the service
// being called, which lane serves the hop and why, or why none may.
//
// The package is pure and transport-free: it knows nothing of HTTP, gRPC or
// service registries. The gRPC balancer and the HTTP transport describe the
// lanes they see as a State per lane and ask a ServicePolicy to Decide.
//
// # Decision rules
//
// A request carries a tag, the name of its lane, or none. For a service S:
//
//  1. An untagged request goes to the base lane ("prod" unless WithBase says
//     otherwise) and never to another lane. A request tagged with the base
//     lane's name is routed the same way.
//  2. A tagged request goes to its lane L if L has a Ready instance: Reason
//     Matched.
//  3. Otherwise L is Absent (reason NoInstances) or NotReady (reason
//     Unavailable). In Strict mode, or when the reason is not one that
//     allows fallback (WithReasons), the hop fails with an *Error wrapping
//     ErrRejected. In Loose mode (the default), the lanes of L's chain are
//     tried in order (WithChain; by default the chain is just the base
//     lane), each with the same test; a lane of the chain that cannot serve
//     must itself fail for an allowed reason for the walk to go on. The
//     Decision's Reason is the reason L could not serve.
//  4. When the base lane, the last of every chain, cannot serve either, the
//     hop fails with an *Error wrapping ErrNoInstance.
//  5. A Connecting lane (instances exist, one is connecting, and the caller
//     is still within the failover timeout) stops the walk with Wait set:
//     the caller holds the call and decides again when states change. Once
//     the timeout has passed, the caller reports the lane NotReady and the
//     walk goes past it.
//
// Fallback never changes the request's tag: the next hop is routed by the
// same tag, so a request returns to its lane as soon as the lane has the
// service it calls.
//
// Modes, reasons, chains and the failover timeout are set for all services
// at once and can be overridden per service (WithService) and, for the mode,
// per lane (WithLaneMode).
//
// # JSON
//
// A Policy has a JSON form, used among other things as the service config of
// graylane's gRPC balancer. Every field is optional:
//
//	{
//	  "mode": "loose",
//	  "base": "prod",
//	  "reasons": ["noinstances", "unavailable"],
//	  "failoverTimeout": "250ms",
//	  "chains": {"dev-alice": ["dev", "prod"]},
//	  "lanes": {"gray": {"mode": "strict"}},
//	  "services": {
//	    "reviews": {
//	      "mode": "strict",
//	      "reasons": ["noinstances"],
//	      "failoverTimeout": "1s",
//	      "chains": {},
//	      "lanes": {}
//	    }
//	  }
//	}
//
// The fields, with the options they stand for:
//
//   - mode: "loose" or "strict" (WithMode). Default "loose".
//   - base: the base lane (WithBase). Default "prod". Top level only.
//   - reasons: the reasons that allow fallback, "noinstances" and/or
//     "unavailable" (WithReasons). Default both; [] means never fall back,
//     while an absent field or null keeps the default (or, in a service,
//     the top-level value).
//   - failoverTimeout: a Go duration string such as "250ms" or "1s"
//     (WithFailoverTimeout). Default "0s".
//   - chains: lane name → the lanes tried after it, ending with the base
//     lane (WithChain).
//   - lanes: lane name → {"mode": ...}, the mode of requests tagged with
//     that lane (WithLaneMode). "mode" is required.
//   - services: service name → an object with the fields above except base
//     and services, overriding the top-level settings for that service
//     (WithService). Chains and lanes are merged with the top-level ones
//     lane by lane; the other fields replace the top-level value.
//
// Policy.MarshalJSON writes the top-level mode, base, reasons and
// failoverTimeout always, chains, lanes and services only when configured,
// and for each service only what it overrides. Its output is stable (keys
// sorted, reasons in a fixed order without duplicates, durations as
// time.Duration.String writes them) and parses back to a Policy that
// behaves the same and marshals to the same bytes.
//
// # Bad input
//
// Configuration is checked when the Policy is built, never while routing:
// NewPolicy and ParseJSON return an error, not a half-built Policy. Every
// lane name must be a valid tag (see package tag; such errors wrap
// tag.ErrInvalid); a chain must end with the base lane, must not contain its
// own lane or list a lane twice, and the base lane has no chain; modes and
// reasons must be known values and reasons may only be NoInstances and
// Unavailable; the failover timeout must not be negative; service names must
// not be empty; WithService and WithBase are not allowed inside WithService.
// A policy is bounded: a chain holds at most MaxChainLength lanes, at most
// MaxLanes lanes have a chain (and at most MaxLanes a mode) at top level and
// in each service, and at most MaxServices services have settings of their
// own; validation takes time linear in the size of the configuration, since
// the same JSON reaches every gRPC client through the service config.
// Problems found are reported at once, joined with errors.Join, one per
// line, each naming the offending service, lane or field; at most 20 are
// listed, and the number of the others is given; names quoted in errors are
// cut to 80 bytes. ParseJSON also
// rejects unknown fields (naming them), values of the wrong JSON type,
// unknown mode and reason names, bad durations, and anything but a single
// JSON object.
//
// At routing time nothing is an error except the outcome itself: Decide
// never panics, treats a State outside the defined constants as NotReady,
// returns the default chain for lanes without one, and reports a request
// that cannot be served as an *Error whose message names the service, the
// tag, the lane, the reason and why the call went no further. A nil *Policy
// or *ServicePolicy behaves like Default().
package fallback
