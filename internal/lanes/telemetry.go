package lanes

import (
	"context"
	"errors"
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
	AttrTag     = attribute.Key("graylane.tag")  // requested tag: "" untagged, UnknownTag for a tag that is no lane
	AttrLane    = attribute.Key("graylane.lane") // chosen lane: "" when the call was refused
	AttrReason  = attribute.Key("graylane.reason")
)

// UnknownTag stands for every requested tag that is neither a lane of the
// service nor named by its policy, in telemetry: a client sending random
// tags cannot grow the number of time series.
const UnknownTag = "(unknown)"

// ScopeName is the instrumentation scope of routing telemetry.
const ScopeName = "github.com/graylane/graylane/routing"

// Telemetry counts routing decisions. Counting is one atomic add per call
// on a counter that outlives routing tables; OpenTelemetry reads the
// counters through an observable counter when it collects, so a call never
// waits on the metrics SDK, and collection never holds up a rebuild of a
// table (it reads a copy-on-write list of the counters). The attributes of
// the active span are set only when the span records. Routing table
// changes are logged at debug level.
type Telemetry struct {
	logger *slog.Logger
	obs    metric.Int64ObservableCounter
	reg    metric.Registration

	mu    sync.Mutex // guards byKey and writes of all
	byKey map[statKey]*Stats
	all   atomic.Pointer[[]*Stats] // append-only, read without the lock
}

type statKey struct {
	service, requested, lane string
	reason                   fallback.Reason
}

// Stats counts the calls of one kind of decision. It fills a cache line, so
// that routes served from different cores do not contend.
type Stats struct {
	N     atomic.Uint64
	Attrs []attribute.KeyValue // service, tag, lane, reason
	set   attribute.Set
	_     [32]byte
}

var (
	sharedMu sync.Mutex
	shared   = map[metric.MeterProvider]*Telemetry{}
	global   atomic.Pointer[Telemetry]
)

// Shared returns the process-wide Telemetry of mp, the same one for every
// caller: routing tables of several clients of one service add up in the
// same counters. A nil mp means the global MeterProvider, the one set by
// the first otel.SetMeterProvider, before or after this call.
func Shared(mp metric.MeterProvider) *Telemetry {
	if mp == nil {
		if t := global.Load(); t != nil {
			return t
		}
		mp = otel.GetMeterProvider()
		sharedMu.Lock()
		defer sharedMu.Unlock()
		if t := global.Load(); t != nil {
			return t
		}
		t := New(mp, nil)
		global.Store(t)
		return t
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	t := shared[mp]
	if t == nil {
		t = New(mp, nil)
		shared[mp] = t
	}
	return t
}

// New returns a Telemetry of its own that reports to mp, logging with
// logger (nil: slog.Default at each log). Close stops its reporting.
func New(mp metric.MeterProvider, logger *slog.Logger) *Telemetry {
	t := &Telemetry{logger: logger, byKey: map[statKey]*Stats{}}
	t.all.Store(new([]*Stats))
	meter := mp.Meter(ScopeName)
	obs, err := meter.Int64ObservableCounter(DecisionMetric,
		metric.WithDescription("Routing decisions: which lane served each call, for which requested tag, and why."),
		metric.WithUnit("{call}"))
	if err != nil {
		return t
	}
	t.obs = obs
	t.reg, _ = meter.RegisterCallback(t.observe, obs)
	return t
}

func (t *Telemetry) observe(_ context.Context, o metric.Observer) error {
	for _, s := range *t.all.Load() {
		o.ObserveInt64(t.obs, int64(s.N.Load()), metric.WithAttributeSet(s.set))
	}
	return nil
}

// Close stops reporting.
func (t *Telemetry) Close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// Log returns the logger of routing events.
func (t *Telemetry) Log() *slog.Logger {
	if t.logger != nil {
		return t.logger
	}
	return slog.Default()
}

// Decision returns the counter of one kind of decision, the same one every
// time it is asked for the same kind.
func (t *Telemetry) Decision(service, requested, lane string, reason fallback.Reason) *Stats {
	k := statKey{service, requested, lane, reason}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byKey[k]
	if s == nil {
		s = &Stats{Attrs: []attribute.KeyValue{
			AttrService.String(service), AttrTag.String(requested),
			AttrLane.String(lane), AttrReason.String(reason.String()),
		}}
		s.set = attribute.NewSet(s.Attrs...)
		t.byKey[k] = s
		all := append(*t.all.Load(), s) // readers hold the old header: they see a prefix
		t.all.Store(&all)
	}
	return s
}

// LogDecision logs a fallback or a refusal at debug level. It runs when a
// routing table is built, not per call.
func (t *Telemetry) LogDecision(service, requested, lane string, reason fallback.Reason, err error) {
	l := t.Log()
	if !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if err != nil {
		l.Debug("graylane: calls refused", "service", service, "tag", requested, "reason", reason.String(), "error", err)
		return
	}
	l.Debug("graylane: calls fall back", "service", service, "tag", requested, "lane", lane, "reason", reason.String())
}

// ReasonOf returns the reason a decision error carries (Unavailable when it
// carries none).
func ReasonOf(err error) fallback.Reason {
	var fe *fallback.Error
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return fallback.Unavailable
}
