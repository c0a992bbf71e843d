// Package lanes holds what graylane's gRPC balancer (package resolver) and
// its router for other clients (package routing) share: the plan of the
// routes of a service's table (Plan), the lock-free lookup of a route by
// tag (Index), weighted round-robin rotations (Sequence, FastMod) and the
// decision telemetry (Telemetry). Both build an immutable table of routes
// when the service's lanes change, so that routing a call is a lookup and
// an atomic add.
package lanes
