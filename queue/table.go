package queue

import (
	"errors"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Table is the decision of the consumers of one lane for every message,
// worked out when the group's live consumers or the policy change: deciding
// for one message is a lookup of its tag and an atomic add. A Table is
// immutable and safe for concurrent use.
type Table struct {
	group    string
	own      string // the consumer's lane
	base     string
	version  uint64
	states   map[string]fallback.State // lanes with registered consumers
	untagged *Route
	byLane   lanes.Index[Route] // lanes with consumers, and lanes the policy names
	unknown  *Route             // any other tag
	pred     string             // see Predecessor
	predOK   bool

	// What the table was built from, to build variants (TakeoverFrom).
	in buildInput
}

type buildInput struct {
	sp         *fallback.ServicePolicy
	insts      []registry.Instance
	deadLetter bool
	tel        *telemetry
	forceLive  string // a lane taken as live whatever the registry says
}

// Decide returns the route of a message tagged t (the zero Tag for an
// untagged message) and counts the decision. It never blocks and never
// allocates.
func (t *Table) Decide(tg tag.Tag) *Route {
	r := t.route(tg)
	r.stat.n.Add(1)
	return r
}

// route is Decide without counting.
func (t *Table) route(tg tag.Tag) *Route {
	if tg.IsZero() {
		return t.untagged
	}
	if r := t.byLane.Get(tg); r != nil {
		return r
	}
	return t.unknown
}

// Lane returns the lane of the consumers the table decides for.
func (t *Table) Lane() string { return t.own }

// Group returns the consumer group's name.
func (t *Table) Group() string { return t.group }

// Version increases with every new Table of a Lanes.
func (t *Table) Version() uint64 { return t.version }

// Live reports whether lane has a live consumer: a registered instance
// that is serving. The table's own lane is always live.
func (t *Table) Live(lane string) bool {
	return lane == t.own || t.states[lane] == fallback.Ready
}

// Predecessor returns the lane that serves the messages of the table's lane
// while that lane has no live consumer, such as "prod" for "gray" with the
// default policy; ok is false when no lane does (the base lane, a strict
// lane, or a chain without a live consumer). An adapter starts a lane that
// comes up for the first time where its predecessor has got to, so that it
// takes over from then on without going back over what the predecessor
// has already processed.
func (t *Table) Predecessor() (lane string, ok bool) { return t.pred, t.predOK }

// build works out the table of the consumers of lane own, given the
// group's instances and the policy.
func build(group, own string, version uint64, in buildInput) *Table {
	sp, deadLetter, tel := in.sp, in.deadLetter, in.tel
	base := sp.Base()
	if own == "" {
		own = base
	}
	t := &Table{group: group, own: own, base: base, version: version, states: map[string]fallback.State{}, in: in}
	for _, in := range in.insts {
		lane := in.Lane(base)
		if in.Health == registry.Serving {
			t.states[lane] = fallback.Ready
		} else if t.states[lane] != fallback.Ready {
			t.states[lane] = fallback.NotReady
		}
	}
	if in.forceLive != "" {
		t.states[in.forceLive] = fallback.Ready
	}
	state := func(lane string) fallback.State {
		if lane == own {
			return fallback.Ready
		}
		if st, ok := t.states[lane]; ok {
			return st
		}
		return fallback.Absent
	}
	mk := func(tg tag.Tag, requested string) *Route {
		r := &Route{Tag: tg}
		d, err := sp.Decide(group, tg, state)
		switch {
		case err != nil:
			r.Action, r.Lane, r.Reason = Hold, base, lanes.ReasonOf(err)
			var fe *fallback.Error
			if errors.As(err, &fe) && errors.Is(err, fallback.ErrRejected) {
				r.Lane = fe.Tag
				if deadLetter && own == base {
					r.Action = DeadLetter
				}
			}
		case d.Lane == own && !d.Wait:
			r.Action, r.Lane, r.Reason = Process, d.Lane, d.Reason
		default:
			r.Action, r.Lane, r.Reason = Skip, d.Lane, d.Reason
		}
		if requested == lanes.UnknownTag {
			r.Tag = tag.Tag{}
			if r.Action == Hold {
				r.Lane = lanes.UnknownTag
			}
		}
		r.stat = tel.stat(group, requested, r.Lane, r.Reason, r.Action)
		return r
	}
	untagged, byLane, unknown := lanes.Plan(t.states, sp, mk)
	if _, ok := byLane[own]; !ok && own != base {
		if ot, valid := tag.Of(own); valid {
			byLane[own] = mk(ot, own)
		}
	}
	t.untagged, t.byLane, t.unknown = untagged, lanes.NewIndex(byLane), unknown

	if own != base {
		ownTag, _ := tag.Of(own)
		without := func(lane string) fallback.State {
			if lane == own {
				return fallback.Absent
			}
			return state(lane)
		}
		if d, err := sp.Decide(group, ownTag, without); err == nil && !d.Wait {
			t.pred, t.predOK = d.Lane, true
		} else if errors.Is(err, fallback.ErrRejected) && deadLetter {
			t.pred, t.predOK = base, true
		}
	}
	return t
}
