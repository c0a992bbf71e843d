package queue

import (
	"github.com/graylane/graylane/tag"
)

// Takeover is the pending messages of one lane, From, that the consumers of
// another lane take over: messages that From's consumers were to process,
// received or not, and never committed or acknowledged, when From lost its
// last live consumer (or the policy changed). An adapter reads From's
// consumer group (or durable consumer) from where it had got to, up to
// where the taking lane had got to when it saw the change, and processes
// the messages that Takes accepts. Everything after that point the taking
// lane decides live, with the new table.
type Takeover struct {
	// From is the lane whose pending messages are taken over.
	From string
	old  *Table
	new  *Table
}

// Takes reports whether a message tagged t, pending in From, is the taking
// consumer's to process: From served it before the change and the taking
// lane serves it now. Takes does not count decisions.
func (k Takeover) Takes(t tag.Tag) bool {
	o, n := k.old.route(t), k.new.route(t)
	return o.Lane == k.From && o.Action != Process && n.Action == Process
}

// Table returns the table after the change.
func (k Takeover) Table() *Table { return k.new }

// Takeovers returns the lanes whose pending messages the consumers of
// next's lane take over when the table changes from prev to next: each lane
// that served some messages in prev, has no live consumer in next, and
// whose messages next's lane serves in next. prev and next must be tables
// of the same consumer lane; with prev nil, Takeovers returns nil.
func Takeovers(prev, next *Table) []Takeover {
	if prev == nil || next == nil || prev.own != next.own {
		return nil
	}
	var out []Takeover
	add := func(o, n *Route) {
		if n.Action != Process || o.Action == Process || o.Lane == next.own || next.Live(o.Lane) || !tag.Valid(o.Lane) {
			return
		}
		for _, k := range out {
			if k.From == o.Lane {
				return
			}
		}
		out = append(out, Takeover{From: o.Lane, old: prev, new: next})
	}
	add(prev.untagged, next.untagged)
	add(prev.unknown, next.unknown)
	for _, t := range []*Table{prev, next} {
		for lane := range t.byLane.All() {
			tg, ok := tag.Of(lane)
			if ok {
				add(prev.route(tg), next.route(tg))
			}
		}
	}
	return out
}

// TakeoverFrom returns the takeover of lane's pending messages by the
// consumers of t's lane, as if lane had just lost its last consumer: for a
// consumer that starts, or is given a partition, while lane is down, and
// finds that lane's consumers left messages behind. ok is false when lane
// is live, is t's own lane, or would leave no message to t's lane.
func (t *Table) TakeoverFrom(lane string) (k Takeover, ok bool) {
	if lane == t.own || t.Live(lane) {
		return Takeover{}, false
	}
	if _, valid := tag.Of(lane); !valid {
		return Takeover{}, false
	}
	in := t.in
	in.forceLive, in.tel = lane, nil // not counted
	prev := build(t.group, t.own, t.version, in)
	for _, k := range Takeovers(prev, t) {
		if k.From == lane {
			return k, true
		}
	}
	return Takeover{}, false
}
