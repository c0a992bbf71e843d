package queue

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/fallback"
)

// Metric names.
const (
	// DecisionMetric counts message decisions: which lane processes each
	// message, for which tag, why, and what the deciding consumer did
	// (attributes AttrGroup, AttrTag, AttrLane, AttrReason, AttrAction).
	DecisionMetric = "graylane.queue.decisions"
	// TakeoverMetric counts the messages a lane processed on behalf of a
	// lane that lost its last consumer (attributes AttrGroup, AttrFrom,
	// AttrLane).
	TakeoverMetric = "graylane.queue.takeover.messages"
)

// Attribute keys of queue telemetry.
const (
	AttrGroup  = attribute.Key("graylane.group")
	AttrTag    = attribute.Key("graylane.tag")    // the message's tag: "" untagged, UnknownTag for a tag that is no lane
	AttrLane   = attribute.Key("graylane.lane")   // the lane that processes the message (or that it is held for)
	AttrReason = attribute.Key("graylane.reason") // fallback.Reason
	AttrAction = attribute.Key("graylane.action") // Action
	AttrFrom   = attribute.Key("graylane.from")   // the lane whose messages were taken over
)

// UnknownTag stands for every tag that is neither a lane with consumers nor
// a lane the policy names, in telemetry: producers sending random tags
// cannot grow the number of time series.
const UnknownTag = "(unknown)"

// ScopeName is the instrumentation scope of queue telemetry.
const ScopeName = "github.com/graylane/graylane/queue"

// telemetry counts decisions and takeovers with one atomic add each;
// OpenTelemetry reads the counters through observable counters when it
// collects, so a message never waits on the metrics SDK.
type telemetry struct {
	decisions, takeovers metric.Int64ObservableCounter

	mu    sync.Mutex
	byKey map[statKey]*stat
	all   atomic.Pointer[[]*stat] // append-only, read without the lock
}

type statKey struct {
	metric                 uint8 // 0 decisions, 1 takeovers
	group, tag, lane, from string
	reason                 fallback.Reason
	action                 Action
}

// stat is one counter. It fills a cache line, so that consumers on
// different cores do not contend.
type stat struct {
	n      atomic.Uint64
	metric uint8
	set    attribute.Set
	_      [40]byte
}

var (
	sharedMu  sync.Mutex
	shared    = map[metric.MeterProvider]*telemetry{}
	discarded = &stat{} // counts of tables that are never reported
)

// sharedTelemetry returns the process-wide telemetry of mp (nil: the
// global provider at the time of the first call), so that the consumers of
// one group in one process add up in the same counters.
func sharedTelemetry(mp metric.MeterProvider) *telemetry {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	t := shared[mp]
	if t == nil {
		t = newTelemetry(mp)
		shared[mp] = t
	}
	return t
}

func newTelemetry(mp metric.MeterProvider) *telemetry {
	t := &telemetry{byKey: map[statKey]*stat{}}
	t.all.Store(new([]*stat))
	meter := mp.Meter(ScopeName)
	d, err1 := meter.Int64ObservableCounter(DecisionMetric,
		metric.WithDescription("Message decisions: which lane processes each message, for which tag, why, and what the deciding consumer did with it."),
		metric.WithUnit("{message}"))
	k, err2 := meter.Int64ObservableCounter(TakeoverMetric,
		metric.WithDescription("Messages processed by a lane on behalf of a lane that lost its last consumer."),
		metric.WithUnit("{message}"))
	if err1 != nil || err2 != nil {
		return t
	}
	t.decisions, t.takeovers = d, k
	_, _ = meter.RegisterCallback(t.observe, d, k)
	return t
}

func (t *telemetry) observe(_ context.Context, o metric.Observer) error {
	for _, s := range *t.all.Load() {
		c := t.decisions
		if s.metric == 1 {
			c = t.takeovers
		}
		o.ObserveInt64(c, int64(s.n.Load()), metric.WithAttributeSet(s.set))
	}
	return nil
}

func (t *telemetry) get(k statKey, attrs ...attribute.KeyValue) *stat {
	if t == nil {
		return discarded
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byKey[k]
	if s == nil {
		s = &stat{metric: k.metric, set: attribute.NewSet(attrs...)}
		t.byKey[k] = s
		all := append(*t.all.Load(), s) // readers hold the old header: they see a prefix
		t.all.Store(&all)
	}
	return s
}

// stat returns the counter of one kind of decision.
func (t *telemetry) stat(group, requested, lane string, r fallback.Reason, a Action) *stat {
	return t.get(statKey{group: group, tag: requested, lane: lane, reason: r, action: a},
		AttrGroup.String(group), AttrTag.String(requested), AttrLane.String(lane),
		AttrReason.String(r.String()), AttrAction.String(a.String()))
}

// takeover returns the counter of messages lane took over from from.
func (t *telemetry) takeover(group, from, lane string) *stat {
	return t.get(statKey{metric: 1, group: group, from: from, lane: lane},
		AttrGroup.String(group), AttrFrom.String(from), AttrLane.String(lane))
}
