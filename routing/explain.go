package routing

import (
	"cmp"
	"slices"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Explanation is the decision graylane would make for one call, and how it
// got there: what Explain returns.
type Explanation struct {
	// Service is the service called.
	Service string
	// Tag is the requested tag; "" for an untagged call.
	Tag string
	// Lane is the lane that would serve the call; "" when it would fail.
	Lane string
	// Reason is fallback.Matched or fallback.Untagged when the requested
	// lane would serve the call, otherwise why it could not (also when the
	// call would fail). It means nothing when the service has no instance
	// at all (errors.Is(Err, ErrUnknownService)).
	Reason fallback.Reason
	// Walk lists the lanes the decision asked about, in the order it asked:
	// the requested lane (the base lane for an untagged call), then the
	// lanes of its fallback chain as far as the decision went.
	Walk []Step
	// Instances are the instances the call would be spread over, by
	// weight: the ready instances of Lane, sorted by address.
	Instances []registry.Instance
	// Lanes are every lane of the service that has instances, the base
	// lane first and the others by name.
	Lanes []LaneStatus
	// Err is why the call would fail (nil when it would be served): the
	// very error Router.Route returns, wrapping ErrUnknownService,
	// fallback.ErrRejected or fallback.ErrNoInstance.
	Err error
}

// Step is one lane the decision asked about.
type Step struct {
	Lane  string
	State fallback.State // Absent, NotReady or Ready
}

// LaneStatus is one lane of a service as routing sees it.
type LaneStatus struct {
	Lane  string
	State fallback.State // Ready when one of its instances may serve, else NotReady
	// Instances are all the lane's instances, sorted by address.
	Instances []registry.Instance
	// Ready is how many of them may serve: those the registry says are
	// serving.
	Ready int
}

// Explain returns the decision a Router (and graylane's gRPC balancer)
// would make now for a call of service with tag t (the zero Tag for an
// untagged call), if the registry held insts for the service, under policy
// (nil: fallback.Default()). It runs the code a Router's routing table is
// built with: the same grouping of instances into lanes, the same lane
// states from registry health, the same fallback.ServicePolicy.Decide.
//
// What Explain cannot see: the instances a Router skips for a while after
// a failed connection (Router.Failed), and the connection states of a gRPC
// channel, whose lanes may still be connecting or failing. It answers for
// a client that has just started and reaches every instance the registry
// says is serving. insts are not modified; instances of other services
// among them are ignored. Explain never fails: a call that would fail has
// Err set.
func Explain(policy *fallback.Policy, service string, t tag.Tag, insts []registry.Instance) Explanation {
	if policy == nil {
		policy = fallback.Default()
	}
	e := Explanation{Service: service, Tag: t.String()}
	mine := make([]registry.Instance, 0, len(insts))
	for _, in := range insts {
		if in.Service == service {
			mine = append(mine, in)
		}
	}
	slices.SortFunc(mine, func(a, b registry.Instance) int { return cmp.Compare(a.Addr, b.Addr) })
	if len(mine) == 0 {
		e.Err = unknownServiceError(service)
		return e
	}
	base := policy.Base()
	byLane := groupLanes(base, mine, nil, true)
	e.Lanes = laneStatuses(base, byLane)
	state := func(lane string) fallback.State {
		st := fallback.Absent
		if l := byLane[lane]; l != nil {
			st = l.state
		}
		e.Walk = append(e.Walk, Step{Lane: lane, State: st})
		return st
	}
	d, err := policy.Service(service).Decide(service, t, state)
	e.Reason = d.Reason
	if err != nil {
		e.Err = err
		e.Reason = lanes.ReasonOf(err)
		return e
	}
	e.Lane = d.Lane
	e.Instances = byLane[d.Lane].insts
	return e
}

// Lanes returns the lanes of a service whose registry holds insts: each
// lane's instances and how many may serve, with the same lane states as
// Explain and the Router. base names the lane of instances without a tag
// ("" means tag.Base). The base lane comes first, the others by name.
func Lanes(base string, insts []registry.Instance) []LaneStatus {
	if base == "" {
		base = tag.Base
	}
	sorted := slices.SortedFunc(slices.Values(insts), func(a, b registry.Instance) int { return cmp.Compare(a.Addr, b.Addr) })
	return laneStatuses(base, groupLanes(base, sorted, nil, true))
}

func laneStatuses(base string, byLane map[string]*tableLane) []LaneStatus {
	out := make([]LaneStatus, 0, len(byLane))
	for _, l := range byLane {
		out = append(out, LaneStatus{Lane: l.name, State: l.state, Instances: l.all, Ready: len(l.insts)})
	}
	slices.SortFunc(out, func(a, b LaneStatus) int {
		switch {
		case a.Lane == b.Lane:
			return 0
		case a.Lane == base:
			return -1
		case b.Lane == base:
			return 1
		}
		return cmp.Compare(a.Lane, b.Lane)
	})
	return out
}
