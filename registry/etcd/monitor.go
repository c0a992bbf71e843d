package etcd

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/connectivity"
)

// Names of the registry's metrics.
const (
	// ConnectedMetric is a gauge: 1 while etcd answers, 0 during an outage.
	ConnectedMetric = "graylane.registry.connected"
	// OutagesMetric counts the outages: the times etcd stopped answering.
	OutagesMetric = "graylane.registry.outages"
	// OutageDurationMetric is a histogram of the length of outages, in
	// seconds, recorded when each ends.
	OutageDurationMetric = "graylane.registry.outage.duration"
	// ReregistrationsMetric counts the times the registry lost its lease
	// (expired during an outage, or revoked by someone else) and put its
	// instances again under a new one.
	ReregistrationsMetric = "graylane.registry.reregistrations"
)

// Attribute keys of the registry's metrics.
const (
	AttrRegistry = attribute.Key("graylane.registry")        // always "etcd"
	AttrPrefix   = attribute.Key("graylane.registry.prefix") // the key prefix
)

const scopeName = "github.com/graylane/graylane/registry/etcd"

// Timing of the monitor and of retries.
const (
	probeTimeout  = 2 * time.Second       // a read that takes longer means an outage
	probeInterval = time.Second           // probes during an outage
	retryMin      = 50 * time.Millisecond // first retry of a failed operation
	retryMax      = 2 * time.Second       // longest wait between retries
	opTimeout     = 5 * time.Second       // background writes and reads
	closeTimeout  = 1 * time.Second       // revoking the lease on Close
	retryJitter   = 0.2                   // ± fraction of each wait
)

// errUnreachable is the outage reason when gRPC gives up connecting.
var errUnreachable = errors.New("no connection to any etcd endpoint")

// monitor decides whether etcd is reachable, reports it through metrics
// and logs, and wakes the registry's retry loops when an outage ends.
//
// It reads a key whenever there is reason to doubt (the client's connection
// leaves READY, an operation of the registry fails) and, during an outage,
// every probeInterval and whenever the connection becomes READY again. An
// outage starts when a read fails or times out, or at once when gRPC reports
// TRANSIENT_FAILURE (no endpoint accepts a connection); it ends with the
// first successful read.
type monitor struct {
	client *clientv3.Client
	cfg    *config
	attrs  metric.MeasurementOption

	outages  metric.Int64Counter
	duration metric.Float64Histogram
	rereg    metric.Int64Counter
	reg      metric.Registration

	down     atomic.Bool
	suspectc chan struct{}

	mu    sync.Mutex
	since time.Time     // start of the current outage
	back  chan struct{} // closed when the current outage ends
}

func newMonitor(client *clientv3.Client, cfg *config) *monitor {
	m := &monitor{
		client:   client,
		cfg:      cfg,
		attrs:    metric.WithAttributeSet(attribute.NewSet(AttrRegistry.String("etcd"), AttrPrefix.String(cfg.prefix))),
		suspectc: make(chan struct{}, 1),
		back:     make(chan struct{}),
	}
	meter := cfg.mp.Meter(scopeName)
	// Instrument errors only come from invalid names or options, which are
	// constants here; the returned instruments are then no-ops.
	m.outages, _ = meter.Int64Counter(OutagesMetric,
		metric.WithDescription("Outages of the registry: times etcd stopped answering. Watchers keep the last known instances meanwhile."),
		metric.WithUnit("{outage}"))
	m.duration, _ = meter.Float64Histogram(OutageDurationMetric,
		metric.WithDescription("Length of registry outages, recorded when each ends."),
		metric.WithUnit("s"))
	m.rereg, _ = meter.Int64Counter(ReregistrationsMetric,
		metric.WithDescription("Times the registry lost its lease and registered its instances again under a new one."),
		metric.WithUnit("{lease}"))
	connected, err := meter.Int64ObservableGauge(ConnectedMetric,
		metric.WithDescription("1 while etcd answers the registry, 0 during an outage."),
		metric.WithUnit("{1}"))
	if err == nil {
		m.reg, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			v := int64(1)
			if m.down.Load() {
				v = 0
			}
			o.ObserveInt64(connected, v, m.attrs)
			return nil
		}, connected)
	}
	return m
}

// close stops reporting the gauge.
func (m *monitor) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}

// suspect asks for a check: an operation failed in a way that may mean etcd
// is unreachable.
func (m *monitor) suspect() {
	select {
	case m.suspectc <- struct{}{}:
	default:
	}
}

// reconnected returns a channel closed when the current or next outage
// ends: retry loops wait on it besides their backoff.
func (m *monitor) reconnected() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.back
}

// run checks reachability until ctx is done.
func (m *monitor) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	conn := m.client.ActiveConnection()
	states := make(chan connectivity.State, 1) // latest state only
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := conn.GetState()
		for {
			select {
			case <-states:
			default:
			}
			states <- s
			if !conn.WaitForStateChange(ctx, s) {
				return
			}
			s = conn.GetState()
		}
	}()

	var (
		state   = conn.GetState()
		probing chan error // the result of the probe in flight, if any
		retry   *time.Timer
		retryc  <-chan time.Time
	)
	probe := func() {
		if probing != nil {
			return // the probe in flight answers for this change too
		}
		stopTimer(retry)
		retryc = nil
		probing = make(chan error, 1)
		wg.Add(1)
		go func(result chan<- error) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			// A linearizable read of one key: it needs a connection and a
			// leader.
			_, err := m.client.Get(pctx, m.cfg.prefix, clientv3.WithCountOnly())
			result <- err
		}(probing)
	}
	defer func() { stopTimer(retry) }()
	probe() // once at start
	for {
		select {
		case <-ctx.Done():
			return
		case state = <-states:
			switch {
			case state == connectivity.TransientFailure:
				// No endpoint accepts a connection: no need to wait for a
				// probe to time out.
				m.setDown(errUnreachable)
			case state != connectivity.Idle || m.down.Load():
				// An idle channel has simply had nothing to do.
				probe()
			}
		case <-m.suspectc:
			probe()
		case <-retryc:
			retryc = nil
			probe()
		case err := <-probing:
			probing = nil
			switch {
			case ctx.Err() != nil:
				return
			case err == nil:
				m.setUp()
			default:
				m.setDown(err)
				stopTimer(retry)
				retry = time.NewTimer(probeInterval)
				retryc = retry.C
			}
		}
	}
}

func (m *monitor) setDown(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down.Load() {
		return
	}
	m.down.Store(true)
	m.since = time.Now()
	m.outages.Add(context.Background(), 1, m.attrs)
	m.cfg.logger.Warn("graylane etcd: registry unreachable; watchers keep the last known instances",
		"endpoints", m.client.Endpoints(), "prefix", m.cfg.prefix, "error", err)
}

func (m *monitor) setUp() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.down.Load() {
		return
	}
	m.down.Store(false)
	d := time.Since(m.since)
	m.duration.Record(context.Background(), d.Seconds(), m.attrs)
	m.cfg.logger.Info("graylane etcd: registry reachable again",
		"endpoints", m.client.Endpoints(), "prefix", m.cfg.prefix, "outage", d.Round(time.Millisecond).String())
	close(m.back)
	m.back = make(chan struct{})
}

// backoff paces the retries of one loop: from retryMin, doubling up to
// retryMax, with jitter.
type backoff struct{ next time.Duration }

func (b *backoff) reset() { b.next = 0 }

// delay returns the wait before the next retry.
func (b *backoff) delay() time.Duration {
	if b.next == 0 {
		b.next = retryMin
	}
	d := time.Duration(float64(b.next) * (1 + retryJitter*(2*rand.Float64()-1)))
	b.next = min(2*b.next, retryMax)
	return d
}

// wait waits for the next retry, or for the end of an outage, and reports
// false when ctx is done first.
func (b *backoff) wait(ctx context.Context, m *monitor) bool {
	t := time.NewTimer(b.delay())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.reconnected():
		return true
	case <-ctx.Done():
		return false
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
