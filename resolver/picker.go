package resolver

import (
	"errors"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/tag"
)

// picker is an immutable snapshot: every decision a call can meet is worked
// out when it is built, so Pick is a tag lookup, one atomic add (on the
// channel's own counter of that decision, which is also the route's
// rotation) and the child's Pick. It never locks and never allocates.
type picker struct {
	untagged *route
	byLane   lanes.Index[route] // lanes with instances, and lanes the policy names
	unknown  *route             // any other tag
	anyReady bool
	// anyConnecting: some lane is still connecting (and calls for it wait).
	anyConnecting bool

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
	mod   lanes.FastMod     // % len(slots)
	start uint32            // where the rotation starts: random, so channels do not move in step
	md    metadata.MD       // fallback.Header for fallback routes
	stats *lanes.Stats      // the channel's counter of this decision; its count is the rotation
}

func newPicker(b *tagBalancer, sp *fallback.ServicePolicy, states map[string]*laneView) *picker {
	p := &picker{b: b, sp: sp, st: states}
	slotsOf := map[*laneView][]balancer.Picker{} // one rotation per lane, shared by its routes
	build := func(t tag.Tag, requested string) *route {
		d, err := sp.Decide(b.service, t, p.stateOf)
		r := &route{}
		switch {
		case err != nil:
			reason := lanes.ReasonOf(err)
			r.err = pickError(err)
			r.stats = b.counters.Decision(b.service, requested, "", reason)
			b.counters.Telemetry().LogDecision(b.service, requested, "", reason, err)
		case d.Wait:
			r.wait = states[d.Lane]
		default:
			r.lane = states[d.Lane]
			if r.slots = slotsOf[r.lane]; r.slots == nil {
				r.slots = r.lane.rotation()
				slotsOf[r.lane] = r.slots
			}
			r.mod = lanes.NewFastMod(uint32(len(r.slots)))
			r.start = rand.Uint32()
			if d.Reason.IsFallback() {
				r.md = metadata.Pairs(fallback.Header, d.Reason.String())
				b.counters.Telemetry().LogDecision(b.service, requested, d.Lane, d.Reason, nil)
			}
			r.stats = b.counters.Decision(b.service, requested, d.Lane, d.Reason)
		}
		return r
	}
	for _, v := range states {
		p.anyReady = p.anyReady || v.state == fallback.Ready
		p.anyConnecting = p.anyConnecting || v.state == fallback.Connecting
	}
	untagged, byLane, unknown := lanes.Plan(states, sp, build)
	p.untagged, p.byLane, p.unknown = untagged, lanes.NewIndex(byLane), unknown
	return p
}

func (p *picker) stateOf(lane string) fallback.State {
	if v := p.st[lane]; v != nil {
		return v.state
	}
	return fallback.Absent
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
		if r = p.byLane.Get(t); r == nil {
			r = p.unknown
			if r.err != nil {
				r.stats.N.Add(1)
				return balancer.PickResult{}, p.rejectUnknown(t)
			}
		}
	}
	switch {
	case r.err != nil:
		r.stats.N.Add(1)
		return balancer.PickResult{}, r.err
	case r.wait != nil:
		p.wake(r.wait)
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	n := r.stats.N.Add(1)
	res, err := r.slots[r.mod.Of(uint32(n)+r.start)].Pick(info)
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
		span.SetAttributes(r.stats.Attrs...)
	}
	return res, nil
}

// wake starts bringing a parked lane back, once.
func (p *picker) wake(v *laneView) {
	if v.parked && v.info.waking.CompareAndSwap(false, true) {
		go p.b.wake(v.name)
	}
}

// rejectUnknown returns the error of a strict rejection of t, a tag that is
// no lane, naming it (the table's error names a stand-in).
func (p *picker) rejectUnknown(t tag.Tag) error {
	if _, err := p.sp.Decide(p.b.service, t, p.stateOf); err != nil {
		return pickError(err)
	}
	return p.unknown.err
}
