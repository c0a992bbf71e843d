package lanes

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
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

// Telemetry counts routing decisions. Each client (a gRPC channel's
// balancer, a Router) keeps its own Counters, so that one client's calls
// never move another's round-robin position: a decision is one atomic add
// on the client's counter of that kind of decision, and the count doubles
// as the client's rotation. OpenTelemetry reads the counters through an
// observable counter when it collects, adding up the clients' counters of
// each kind (and what clients that closed had counted), so a call never
// waits on the metrics SDK, and collection never holds up a rebuild of a
// routing table (it reads copy-on-write lists). The attributes of the
// active span are set only when the span records. Routing table changes
// are logged at debug level.
type Telemetry struct {
	logger *slog.Logger
	obs    metric.Int64ObservableCounter
	reg    metric.Registration

	mu      sync.Mutex // guards byKey and writes of entries and of each entry's live
	byKey   map[statKey]*entry
	entries atomic.Pointer[[]*entry] // append-only, read without the lock
}

type statKey struct {
	service, requested, lane string
	reason                   fallback.Reason
}

// entry is one kind of decision: its attributes, the live counters of the
// clients that make it, and what closed clients had counted.
type entry struct {
	attrs   []attribute.KeyValue
	set     attribute.Set
	retired atomic.Uint64
	live    atomic.Pointer[[]*Stats]
	// gen is odd while a closing client's counts move from live to
	// retired, so that a collection never sees them twice or not at all:
	// the series must never go down.
	gen atomic.Uint64
}

func (e *entry) total() uint64 {
	for {
		if g := e.gen.Load(); g&1 == 0 {
			n := e.retired.Load()
			for _, s := range *e.live.Load() {
				n += s.N.Load()
			}
			if e.gen.Load() == g {
				return n
			}
		}
		runtime.Gosched() // a client's counters are being handed over
	}
}

// Stats counts one client's calls of one kind of decision. It fills a
// cache line, so that routes served from different cores do not contend.
type Stats struct {
	N     atomic.Uint64
	Attrs []attribute.KeyValue // service, tag, lane, reason
	e     *entry
	lane  string
	_     [24]byte
}

var (
	sharedMu sync.Mutex
	shared   = map[metric.MeterProvider]*Telemetry{}
	global   atomic.Pointer[Telemetry]
)

// Shared returns the process-wide Telemetry of mp, the same one for every
// caller: the clients of one service add up in the same series. A nil mp
// means the global MeterProvider, the one set by the first
// otel.SetMeterProvider, before or after this call.
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
	t := &Telemetry{logger: logger, byKey: map[statKey]*entry{}}
	t.entries.Store(new([]*entry))
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
	for _, e := range *t.entries.Load() {
		o.ObserveInt64(t.obs, int64(e.total()), metric.WithAttributeSet(e.set))
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

// Counters are one client's decision counters, reported by t. They outlive
// the client's routing tables: a rebuilt table goes on counting, and
// rotating, where the last one was. Close them when the client closes.
type Counters struct {
	t      *Telemetry
	mu     sync.Mutex
	byKey  map[statKey]*Stats
	closed bool
}

// NewCounters returns a client's empty set of counters.
func (t *Telemetry) NewCounters() *Counters {
	return &Counters{t: t, byKey: map[statKey]*Stats{}}
}

// Telemetry returns the Telemetry the counters report to.
func (c *Counters) Telemetry() *Telemetry { return c.t }

// Decision returns the client's counter of one kind of decision, the same
// one every time it is asked for the same kind.
func (c *Counters) Decision(service, requested, lane string, reason fallback.Reason) *Stats {
	k := statKey{service, requested, lane, reason}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.byKey[k]; s != nil {
		return s
	}
	e := c.t.entry(k)
	s := &Stats{Attrs: e.attrs, e: e, lane: lane}
	if !c.closed {
		c.byKey[k] = s
		c.t.mu.Lock()
		live := append(slices.Clone(*e.live.Load()), s)
		e.live.Store(&live)
		c.t.mu.Unlock()
	}
	return s
}

// Calls returns how many calls the client's counters of decisions served
// by lane have counted.
func (c *Counters) Calls(lane string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, s := range c.byKey {
		if s.lane == lane {
			n += s.N.Load()
		}
	}
	return n
}

// Close hands what the counters counted over to the telemetry's totals and
// stops reporting them. Counters asked for afterwards count for nothing.
// It is idempotent.
func (c *Counters) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	for _, s := range c.byKey {
		e := s.e
		e.gen.Add(1)
		live := slices.DeleteFunc(slices.Clone(*e.live.Load()), func(x *Stats) bool { return x == s })
		e.live.Store(&live)
		e.retired.Add(s.N.Load())
		e.gen.Add(1)
	}
	clear(c.byKey)
}

// entry returns the entry of a kind of decision, made on first use.
func (t *Telemetry) entry(k statKey) *entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byKey[k]
	if e == nil {
		e = &entry{attrs: []attribute.KeyValue{
			AttrService.String(k.service), AttrTag.String(k.requested),
			AttrLane.String(k.lane), AttrReason.String(k.reason.String()),
		}}
		e.set = attribute.NewSet(e.attrs...)
		e.live.Store(new([]*Stats))
		t.byKey[k] = e
		all := append(*t.entries.Load(), e) // readers hold the old header: they see a prefix
		t.entries.Store(&all)
	}
	return e
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
