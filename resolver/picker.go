package resolver

import (
	"errors"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// FallbackHeader is the metadata key (and HTTP header) that tells the
// server a call reached it by fallback, and why: "noinstances" or
// "unavailable". Route receipts report it.
const FallbackHeader = "x-graylane-fallback"

// atomicFlag is an atomic.Bool whose Store skips the write when the value
// is already set, so that a flag read on every call does not bounce its
// cache line between cores.
type atomicFlag struct{ atomic.Bool }

func (f *atomicFlag) set() {
	if !f.Load() {
		f.Store(true)
	}
}

// picker is an immutable snapshot: every decision a call can meet is worked
// out when it is built, so Pick is a tag lookup, an atomic add and the
// child's Pick. It never locks and never allocates.
type picker struct {
	untagged *route
	byLane   routeIndex // lanes with instances, and lanes the policy names
	unknown  *route     // any other tag
	anyReady bool

	// For tags that are not in byLane, when the policy rejects them (strict
	// services): the decision is made per call, naming the tag.
	b  *tagBalancer
	sp *fallback.ServicePolicy
	st map[string]*laneView
}

// route is the outcome for one requested tag.
type route struct {
	err   error             // the call fails with it
	wait  *laneView         // hold the call until this lane connects (wake it if parked)
	lane  *laneView         // serve from this lane
	slots []balancer.Picker // lane.ready's pickers in weighted round-robin order
	mod   fastMod           // % len(slots)
	md    metadata.MD       // FallbackHeader for fallback routes
	stats *decisionStats
}

func newPicker(b *tagBalancer, sp *fallback.ServicePolicy, states map[string]*laneView) *picker {
	p := &picker{b: b, sp: sp, st: states}
	stateOf := func(lane string) fallback.State {
		if v := states[lane]; v != nil {
			return v.state
		}
		return fallback.Absent
	}
	slotsOf := map[*laneView][]balancer.Picker{} // one rotation per lane, shared by its routes
	build := func(t tag.Tag, requested string) *route {
		d, err := sp.Decide(b.service, t, stateOf)
		r := &route{}
		switch {
		case err != nil:
			r.err = pickError(err)
			r.stats = b.tel.decision(b.service, requested, "", reasonOf(err))
			b.tel.logDecision(b.service, requested, "", reasonOf(err), err)
		case d.Wait:
			r.wait = states[d.Lane]
		default:
			r.lane = states[d.Lane]
			if r.slots = slotsOf[r.lane]; r.slots == nil {
				for _, i := range wrrSequence(weightsOf(r.lane.ready)) {
					r.slots = append(r.slots, r.lane.ready[i].picker)
				}
				slotsOf[r.lane] = r.slots
			}
			r.mod = newFastMod(uint32(len(r.slots)))
			if d.Reason.IsFallback() {
				r.md = metadata.Pairs(FallbackHeader, d.Reason.String())
				b.tel.logDecision(b.service, requested, d.Lane, d.Reason, nil)
			}
			r.stats = b.tel.decision(b.service, requested, d.Lane, d.Reason)
			if !slices.Contains(r.lane.info.served, r.stats) {
				r.lane.info.served = append(r.lane.info.served, r.stats) // the idle sweep reads them
			}
		}
		return r
	}
	for _, v := range states {
		p.anyReady = p.anyReady || v.state == fallback.Ready
	}
	untagged, byLane, unknown := planRoutes(states, sp, build)
	p.untagged, p.byLane, p.unknown = untagged, newRouteIndex(byLane), unknown
	return p
}

func weightsOf(rc []readyChild) []uint32 {
	w := make([]uint32, len(rc))
	for i, c := range rc {
		w[i] = c.weight
	}
	return w
}

func reasonOf(err error) fallback.Reason {
	var fe *fallback.Error
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return fallback.Unavailable
}

// pickError turns a decision error into what Pick returns: a status error
// for rejections, so that even wait-for-ready calls fail at once; a plain
// error when no lane has an instance, so that wait-for-ready calls wait for
// one, as with grpc-go's own policies.
func pickError(err error) error {
	if errors.Is(err, fallback.ErrRejected) {
		return status.Error(codes.Unavailable, err.Error())
	}
	return err
}

// Pick implements balancer.Picker.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	r := p.untagged
	if t, ok := tag.FromContext(info.Ctx); ok {
		if r = p.byLane.get(t); r == nil {
			r = p.unknown
			if r.err != nil {
				return balancer.PickResult{}, p.rejectUnknown(t)
			}
		}
	}
	switch {
	case r.err != nil:
		r.stats.n.Add(1)
		return balancer.PickResult{}, r.err
	case r.wait != nil:
		p.wake(r.wait)
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	// The decision counter doubles as the round-robin position: it outlives
	// pickers, so the rotation carries on across routing changes.
	n := r.stats.n.Add(1)
	res, err := r.slots[r.mod.of(uint32(n))].Pick(info)
	if err != nil {
		return res, err
	}
	if r.md != nil {
		if res.Metadata == nil {
			res.Metadata = r.md
		} else {
			res.Metadata = metadata.Join(res.Metadata, r.md)
		}
	}
	if span := trace.SpanFromContext(info.Ctx); span.IsRecording() {
		span.SetAttributes(r.stats.attrs...)
	}
	return res, nil
}

// wake starts bringing a parked lane back, once.
func (p *picker) wake(v *laneView) {
	if v.parked && v.info.waking.CompareAndSwap(false, true) {
		go p.b.wake(v.name)
	}
}

func (p *picker) rejectUnknown(t tag.Tag) error {
	_, err := p.sp.Decide(p.b.service, t, func(lane string) fallback.State {
		if v := p.st[lane]; v != nil {
			return v.state
		}
		return fallback.Absent
	})
	if err == nil {
		return p.unknown.err
	}
	return pickError(err)
}
