package resolver

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/fallback"
)

// DecisionMetric is the name of the counter of routing decisions.
const DecisionMetric = "graylane.route.decisions"

// Attribute keys of routing telemetry: on the decision counter and on the
// active span of the call.
const (
	AttrService = attribute.Key("graylane.service")
	AttrTag     = attribute.Key("graylane.tag")  // requested tag: "" untagged, "(unknown)" for a tag that is no lane
	AttrLane    = attribute.Key("graylane.lane") // chosen lane: "" when the call was refused
	AttrReason  = attribute.Key("graylane.reason")
)

// UnknownTag stands for every requested tag that is neither a lane of the
// service nor named by its policy, in telemetry: a client sending random
// tags cannot grow the number of time series.
const UnknownTag = "(unknown)"

const scopeName = "github.com/graylane/graylane/resolver"

// telemetry reports routing decisions. Counting is one atomic add per call
// on a counter that outlives pickers; OpenTelemetry reads the counters
// through an observable counter when it collects, so a call never waits on
// the metrics SDK. The attributes of the active span are set only when the
// span records. Routing table changes are logged at debug level.
type telemetry struct {
	logger *slog.Logger
	meter  metric.Meter
	obs    metric.Int64ObservableCounter

	mu    sync.Mutex
	stats map[statKey]*decisionStats
	reg   metric.Registration
}

type statKey struct {
	service, requested, lane string
	reason                   fallback.Reason
}

// decisionStats counts the calls of one kind of decision. It fills a cache
// line, so that routes served from different cores do not contend.
type decisionStats struct {
	n     atomic.Uint64
	attrs []attribute.KeyValue
	set   attribute.Set
	_     [32]byte
}

var (
	sharedOnce sync.Once
	shared     *telemetry
)

// sharedTelemetry returns the process-wide telemetry of gRPC balancers,
// which report to the global MeterProvider: the one set by the first
// otel.SetMeterProvider, before or after the first balancer is built.
// Balancers of several channels to one service add up in the same
// counters.
func sharedTelemetry() *telemetry {
	sharedOnce.Do(func() { shared = newTelemetryWith(otel.GetMeterProvider(), nil) })
	return shared
}

func newTelemetryWith(mp metric.MeterProvider, logger *slog.Logger) *telemetry {
	t := &telemetry{logger: logger, meter: mp.Meter(scopeName), stats: map[statKey]*decisionStats{}}
	obs, err := t.meter.Int64ObservableCounter(DecisionMetric,
		metric.WithDescription("Routing decisions: which lane served each call, for which requested tag, and why."),
		metric.WithUnit("{call}"))
	if err != nil {
		return t
	}
	t.obs = obs
	t.reg, _ = t.meter.RegisterCallback(t.observe, obs)
	return t
}

func (t *telemetry) observe(_ context.Context, o metric.Observer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.stats {
		o.ObserveInt64(t.obs, int64(s.n.Load()), metric.WithAttributeSet(s.set))
	}
	return nil
}

// close stops reporting.
func (t *telemetry) close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

func (t *telemetry) log() *slog.Logger {
	if t.logger != nil {
		return t.logger
	}
	return slog.Default()
}

// decision returns the counter of one kind of decision, the same one every
// time it is asked for the same kind.
func (t *telemetry) decision(service, requested, lane string, reason fallback.Reason) *decisionStats {
	k := statKey{service, requested, lane, reason}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats[k]
	if s == nil {
		s = &decisionStats{attrs: []attribute.KeyValue{
			AttrService.String(service), AttrTag.String(requested),
			AttrLane.String(lane), AttrReason.String(reason.String()),
		}}
		s.set = attribute.NewSet(s.attrs...)
		t.stats[k] = s
	}
	return s
}

// logDecision logs a fallback or a refusal at debug level. It runs when a
// routing table is built, not per call.
func (t *telemetry) logDecision(service, requested, lane string, reason fallback.Reason, err error) {
	l := t.log()
	if !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if err != nil {
		l.Debug("graylane: calls refused", "service", service, "tag", requested, "reason", reason.String(), "error", err)
		return
	}
	l.Debug("graylane: calls fall back", "service", service, "tag", requested, "lane", lane, "reason", reason.String())
}
