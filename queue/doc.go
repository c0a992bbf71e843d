// Package queue makes graylane's lanes work for message consumers, with no
// transport of its own: the adapters for Kafka (module
// github.com/graylane/graylane/queue/kafkalane) and NATS (module
// github.com/graylane/graylane/queue/natslane) use it, and so can an
// adapter for any other broker.
//
// # Lanes of consumers
//
// A consumer's lane is its service's own tag (GRAYLANE_TAG, or WithLane):
// a "gray" deployment of a consumer consumes in lane gray, a deployment with
// no tag in the base lane. Every lane consumes the whole topic or stream on
// its own (its own consumer group, or durable consumer), and each consumer
// decides, message by message, whether to process it or to leave it to
// another lane. The decision is the one graylane makes for an RPC
// (fallback.ServicePolicy.Decide), with lane states taken from the
// registry:
//
//   - a lane is Ready when it has a live consumer: a registered instance of
//     the group's service, in that lane, that is serving (Lanes.Register);
//     NotReady when its instances are all not serving; Absent otherwise.
//     The consumer's own lane is always Ready to itself;
//   - an untagged message goes to the base lane, never to another lane;
//   - a message tagged T goes to the first lane along T's fallback chain
//     that has a live consumer (T itself first), so a gray message goes to
//     the gray consumers while there are any and to the base lane's
//     otherwise;
//   - a strict lane's messages are never processed by another lane. While
//     the lane has no live consumer they wait for it (Hold): every other
//     lane commits past them, and the lane's own consumer group, which
//     nobody else moves, still has them when a consumer of the lane comes
//     back. With WithDeadLetter, the base lane's consumers hand them to a
//     dead-letter destination of the user's choice instead (DeadLetter).
//
// Liveness comes from graylane's registry (package registry): consumers
// register as instances of the service named after the consumer group, and
// every consumer watches that service with registry.Registry.Watch, so it
// works the same on Memory, etcd and Kubernetes. A read-only registry
// (registry.ErrReadOnly: Kubernetes') lists consumers without being told:
// there, run them as Pods behind a Service named after the group, and
// their readiness is their liveness.
//
// # Tables
//
// A Lanes keeps a Table, rebuilt when the group's instances or the policy
// change, as graylane's gRPC balancer builds its picker: every decision a
// message can meet (untagged, each known lane, any other tag) is worked out
// then, so Table.Decide is a lookup of the tag and an atomic add — a few
// tens of nanoseconds, without allocating. Reading the tag from the
// message's headers (propagation.Propagator.ReadMessage) does not allocate
// either.
//
// # Switching lanes without losing a message
//
// When a lane loses its last live consumer, the lane that now serves its
// messages takes over what it left behind (Takeovers, Takeover): messages
// the lane received and never committed or acknowledged, and messages still
// on the broker, up to the point where the taking lane switched to its new
// table. An adapter reads them from the lost lane's own consumer group or
// durable consumer, which still records how far the lane had got. When a
// lane comes up, its consumers start where its predecessor had got to
// (Table.Predecessor) if the lane has no position of its own, and the
// predecessor stops processing the lane's messages as soon as it sees the
// lane's consumer in the registry.
//
// The switch window is the time between a change in the registry (a
// consumer registered, deregistered, or its lease expired) and the moment
// every consumer of the group has the new table: the registry's watch
// latency, microseconds for Memory, milliseconds for etcd, and bounded by
// one second for every registry graylane ships. Inside the window:
//
//   - a lane that comes up and its predecessor may both process the same
//     messages (from the predecessor's last commit until it sees the lane):
//     at-least-once, duplicates, never a loss;
//   - a lane that goes down leaves its messages waiting until the taking
//     lane sees it gone; then the taking lane processes them. Messages that
//     the lost consumer processed but never committed (a crash) are
//     processed again: duplicates again, never a loss.
//
// Messages are processed in lanes at least once; a message is processed
// twice only inside a switch window.
//
// # Bad tags
//
// A message whose tag headers are invalid, oversized or conflicting is
// treated as package propagation treats an HTTP request with them: the bad
// value is ignored and counted (graylane.tag.rejected), and the message is
// decided as untagged (or by the next valid source). It is never refused,
// so it can never stop a partition.
//
// # Telemetry
//
// Every decision counts in the OpenTelemetry counter DecisionMetric,
// "graylane.queue.decisions", with the attributes AttrGroup, AttrTag (the
// message's tag; UnknownTag for every tag that is no known lane), AttrLane,
// AttrReason and AttrAction; messages taken over count in TakeoverMetric.
// Table changes are logged at debug level.
package queue
