// Package natslane carries graylane's traffic tag across NATS and makes
// NATS consumers lane-aware, with nats.go, for core subjects and for
// JetStream. It is a module of its own: importing graylane does not pull in
// NATS.
//
// # Publishing
//
// Inject writes the tag of a context into a message's headers (NewMsg
// builds a tagged message), with the keys and rules of package propagation
// ("x-traffic-tag", plus the W3C "baggage" member with baggage injection
// on), in lower case as OpenTelemetry's carriers write them: NATS header
// keys are case-sensitive. Publish the message with nats.Conn.PublishMsg or
// jetstream.JetStream.PublishMsg.
//
// # JetStream consumers in lanes
//
// A Consumer consumes a stream for the lane of its queue.Lanes (the
// service's own tag), through the lane's durable pull consumer (Name):
// "<group>" for the base lane, "<group>_<lane>" for the others, such as
// "notifications" and "notifications_gray". Every lane receives every
// message; each consumer processes the messages its lane serves
// (package queue decides), acknowledges the others, and calls the handler
// with the message's tag in its context. A handler error naks the message
// for redelivery. Bad tag headers are ignored and counted: the message is
// decided as untagged, never refused.
//
// A lane comes up: its durable consumer is created, when it does not
// exist, at its predecessor's ack floor; then the consumer registers, and
// the predecessor stops processing the lane's messages when it sees it.
// Messages the predecessor processed in between are processed again:
// duplicates inside the switch window.
//
// A lane goes away (its last consumer stops, acknowledging what it
// processed and then deregistering, or crashes and its registration
// expires): the lane that now serves its messages reads the stream from the
// lost durable's ack floor up to the last message it decided itself,
// processes those the lost lane was to process (queue.Takeover), and
// deletes the lost durable, so that the lane, if it comes back, starts at
// its predecessor's ack floor. Messages delivered to the lost consumer and
// never acknowledged are processed again: duplicates, never a loss.
//
// A strict lane's messages are never taken over: they wait in its durable
// consumer until a consumer of the lane comes back, or go to a
// DeadLetterFunc on the base lane with queue.WithDeadLetter.
//
// The takeover is exact when one consumer of the taking lane does it. With
// several consumers in the taking lane, each takes over up to its own last
// message: no loss, and duplicates among them. With several consumers in
// the lost lane, a crash of one of them holds the lane's ack floor back
// until its messages are redelivered (WithAckWait); if the lane loses its
// last consumer within that time, the takeover processes again what the
// others had acknowledged past the floor.
//
// # Core NATS
//
// Subscribe makes a core NATS queue subscription lane-aware: each lane
// subscribes in a queue group of its own (Name) and drops the messages of
// other lanes. Core NATS keeps nothing, so there is nothing to take over:
// at most once, and a lane change is exact only for messages that arrive
// after the switch window.
package natslane
