// Package kafkalane carries graylane's traffic tag across Kafka and makes
// Kafka consumers lane-aware, with franz-go (github.com/twmb/franz-go).
// It is a module of its own: importing graylane does not pull in Kafka.
//
// # Producing
//
// ProduceHook returns a kgo option: every record produced with a context
// that carries a tag (kgo sets Record.Context to the ctx of Produce) gets
// the tag in its headers, with the keys and rules of package propagation
// ("x-traffic-tag", plus the W3C "baggage" member with baggage injection
// on, plus any write dialects), in lower case as OpenTelemetry's Kafka
// carriers write them. Inject does the same for one record.
//
// # Consuming in lanes
//
// A Consumer consumes one topic for the lane of its queue.Lanes (the
// service's own tag). Every lane consumes the whole topic in a consumer
// group of its own (GroupName): "<group>" for the base lane,
// "<group>.<lane>" for the others, such as "notifications" and
// "notifications.gray". For each record it reads the tag, looks up the
// lane's decision (package queue) and processes the record, or commits it
// without processing when another lane serves it. The handler's context
// carries the record's tag. Offsets are committed after every poll, for
// the records processed and skipped alike; an invalid, oversized or
// conflicting tag header is ignored and counted, and the record is decided
// as untagged: it never stops a partition.
//
// # Lane changes
//
// A lane comes up: its first consumer starts each partition at its own
// group's committed offset, or, when the group has none or was handed over,
// at its predecessor's (the lane that served its records meanwhile), and
// only then registers; the predecessor stops processing the lane's records
// when it sees the registration. Records the predecessor processed after
// its last commit are processed again by the lane: duplicates inside the
// switch window.
//
// A lane goes away: its last consumer stops gracefully by committing,
// leaving the group and then deregistering (Run does it in that order), or
// crashes and its registration expires. The lane that now serves its
// records, on seeing it gone, takes over: for each of its own partitions
// it reads the lost lane's group's committed offset, reads the records
// from there up to its own position at the switch outside any group, and
// processes those the lost lane was to process (queue.Takeover). Then it
// commits its position into the lost lane's group with the metadata
// HandoverMetadata, so that the lane, if it comes back, starts no earlier
// than its predecessor. Records the lost consumer processed but never
// committed are processed again: duplicates, never a loss. Kafka accepts a
// commit into a group only once the group is empty: after a crash, that is
// when the member's session times out, and the handover mark is retried
// until then (the records themselves are taken over at once).
//
// A strict lane's records are never taken over: they wait in its group
// (nobody else moves its offsets) until a consumer of the lane comes back,
// or go to a DeadLetterFunc on the base lane with queue.WithDeadLetter.
//
// Takeovers work per partition, so any number of consumers per lane can
// share a topic's partitions. Limits: a consumer of the taking lane that
// starts after the lane went away, or that loses the partition in the
// middle of a takeover, does not start one: the rest waits in the lost
// lane's group until the lane comes back. A takeover reads up to a fixed
// offset; a gap at the very end of its range (transaction markers) waits
// for the next record.
//
// # Testing against Kafka
//
// The tests run against kfake, franz-go's in-process Kafka. With
// KAFKA_BROKERS set to a comma-separated list of brokers, they run against
// those instead, creating a topic of their own:
//
//	KAFKA_BROKERS=127.0.0.1:9092 go test ./queue/kafkalane/
//
// kfake differs from Kafka where this package relies on it in one way that
// the tests cover: a crashed consumer. The tests crash a consumer by
// closing its client without committing, which leaves the group at once;
// a real crash leaves the member in the group until its session timeout,
// which delays the handover mark (not the takeover) by that long.
package kafkalane
