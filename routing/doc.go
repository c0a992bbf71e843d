// Package routing chooses, for one call of a client that is not gRPC, the
// instance of the called service that serves the call's lane: the Router.
// graylane's HTTP transport routes with it (httpmw.WithRouting), and so
// does the edge's reverse proxy (package ingress). It makes the same
// decisions, with the same code, as graylane's gRPC balancer (package
// resolver), and links no gRPC.
//
// The Router watches each service it is asked about in a registry (package
// registry), and keeps an immutable routing table per service, rebuilt when
// the service's instances or the policy change: every decision a call can
// meet is worked out then, so Route is a lookup and two atomic adds.
//
// # Explaining a decision
//
// Explain answers, without routing a call, what a Router and the gRPC
// balancer would decide for a service and a tag over a set of instances:
// the lane, the reason, the lanes asked on the way down the fallback
// chain and their states, the instances that would serve, or the error a
// call would meet. It runs the code the routing tables are built with, so
// its answer cannot drift from theirs; the graylane command (module
// cmd/graylane) prints it for operators. Lanes gives each lane's
// instances and readiness, as routing sees them.
//
// # Telemetry
//
// Every decision counts in the OpenTelemetry counter DecisionMetric, with
// the attributes AttrService, AttrTag (the requested tag; UnknownTag for
// every tag that is no lane of the service, so random tags cannot grow the
// number of time series), AttrLane and AttrReason. The gRPC balancer counts
// in the same counter. Fallbacks and refusals are logged at debug level
// when a table is built, not per call.
package routing

import "github.com/graylane/graylane/internal/lanes"

// DecisionMetric is the name of the counter of routing decisions, of the
// Router and of the gRPC balancer alike.
const DecisionMetric = lanes.DecisionMetric

// Attribute keys of routing telemetry: on the decision counter and on the
// active span of the call.
const (
	AttrService = lanes.AttrService // the called service
	AttrTag     = lanes.AttrTag     // the requested tag: "" untagged, UnknownTag for a tag that is no lane
	AttrLane    = lanes.AttrLane    // the lane that served: "" when the call was refused
	AttrReason  = lanes.AttrReason  // fallback.Reason: matched, untagged, noinstances, unavailable
)

// UnknownTag stands for every requested tag that is neither a lane of the
// service nor named by its policy, in telemetry.
const UnknownTag = lanes.UnknownTag
