package queue

import "sync/atomic"

// Stats counts what a consumer did: the counts an adapter's consumer
// reports (kafkalane.Consumer.Stats, natslane.Consumer.Stats).
type Stats struct {
	Processed    uint64 // messages handed to the handler, takeovers included
	Skipped      uint64 // messages left to another lane
	Held         uint64 // messages left for a lane with no live consumer that nobody else may serve
	DeadLettered uint64 // messages handed to the dead-letter function
	TakenOver    uint64 // messages processed on behalf of a lane that lost its last consumer
	Takeovers    uint64 // takeovers finished
	Errors       uint64 // errors of the handler, or of the dead-letter function, that the consumer went on after
}

// Counters are the counts behind Stats, for an adapter's consumer to keep
// as a field of its own and add to as it decides messages; they are safe
// for concurrent use. The zero value counts nothing yet.
type Counters struct {
	Processed, Skipped, Held, DeadLettered, TakenOver, Takeovers, Errors atomic.Uint64
}

// Stats returns the counts so far.
func (c *Counters) Stats() Stats {
	return Stats{
		Processed: c.Processed.Load(), Skipped: c.Skipped.Load(), Held: c.Held.Load(),
		DeadLettered: c.DeadLettered.Load(), TakenOver: c.TakenOver.Load(), Takeovers: c.Takeovers.Load(),
		Errors: c.Errors.Load(),
	}
}
