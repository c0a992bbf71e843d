package queue

import (
	"strconv"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// Action is what a consumer does with one message.
type Action uint8

const (
	// Process: the consumer's lane serves the message. Call the handler,
	// then commit or acknowledge it.
	Process Action = iota
	// Skip: another lane's consumers serve the message. Commit or
	// acknowledge it without calling the handler.
	Skip
	// Hold: the message belongs to a lane that has no live consumer and
	// may not be served by any other lane: a strict lane (or the base lane,
	// for an untagged message, while it has no consumer). It waits in that
	// lane's own consumer group. Commit or acknowledge it here, without
	// calling the handler: it is not this consumer's.
	Hold
	// DeadLetter: the message belongs to a strict lane that has no live
	// consumer, the group was built WithDeadLetter, and this consumer is of
	// the base lane: hand the message to the dead-letter destination, then
	// commit or acknowledge it.
	DeadLetter
)

var actionNames = [...]string{Process: "process", Skip: "skip", Hold: "hold", DeadLetter: "deadletter"}

// String returns "process", "skip", "hold" or "deadletter".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Route is the decision for every message that carries one tag, as seen by
// the consumers of one lane. It is part of an immutable Table: read-only.
type Route struct {
	// Action is what the consumer does with the message.
	Action Action
	// Lane is the lane whose consumers process the message, or the lane it
	// is held for (Hold, DeadLetter).
	Lane string
	// Reason is Matched or Untagged when the message's own lane serves it,
	// or why that lane could not (NoInstances, Unavailable), as in
	// fallback.Decision and fallback.Error.
	Reason fallback.Reason
	// Tag is the message's tag when it names a lane the table knows, held
	// by the table (so that a consumer can put it in the handler's context
	// without copying the header's bytes); the zero Tag otherwise.
	Tag tag.Tag

	stat *stat
}
