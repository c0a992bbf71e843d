package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/internal/tcpproxy"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/registrytest"
)

const defaultTestTimeout = 10 * time.Second

// testTTL is the lease TTL of the tests that wait for leases to expire.
const testTTL = 2 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newClient returns an etcd client of endpoint, closed when the test ends.
// It reconnects quickly once etcd is back, as a production client tuned
// for discovery would.
func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := etcdtest.NewClient(endpoint)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// newProxy returns a proxy to target, closed when the test ends: a link
// between one process and etcd that the test can cut.
func newProxy(t testing.TB, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// logSink records the registry's log lines; a failed test prints them.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func newLogger(t testing.TB) (*slog.Logger, *logSink) {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", strings.Join(s.all(), "\n"))
		}
	})
	return slog.New(s), s
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}

func (s *logSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// count returns the number of lines at level whose message contains msg.
func (s *logSink) count(level slog.Level, msg string) int {
	n := 0
	for _, l := range s.all() {
		if strings.Contains(l, " "+level.String()+" ") && strings.Contains(l, msg) {
			n++
		}
	}
	return n
}

// newRegistry returns a Registry on client, closed when the test ends, with
// a recording logger and the test's prefix.
func newRegistry(t testing.TB, client *clientv3.Client, opts ...etcd.Option) (*etcd.Registry, *logSink) {
	t.Helper()
	logger, sink := newLogger(t)
	r, err := etcd.New(client, append([]etcd.Option{etcd.WithLogger(logger)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r, sink
}

// metrics reads the registry's metrics through a ManualReader.
type metrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMetrics(t testing.TB) *metrics {
	m := &metrics{reader: sdkmetric.NewManualReader()}
	m.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(m.reader))
	t.Cleanup(func() { m.mp.Shutdown(context.Background()) })
	return m
}

// value returns the sum of the int64 points of the metric, and whether it
// was reported at all.
func (m *metrics) value(t testing.TB, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, m.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, met := range sm.Metrics {
			if met.Name != name {
				continue
			}
			var v int64
			switch d := met.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					v += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					v += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					v += int64(p.Count)
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", name, met.Data)
			}
			return v, true
		}
	}
	return 0, false
}

// waitFor reads sets from w until ok accepts one, within timeout, and
// returns the time it took.
func waitFor(t testing.TB, w registry.Watcher, timeout time.Duration, what string, ok func([]registry.Instance) bool) time.Duration {
	t.Helper()
	_, took := registrytest.WaitFor(t, w, timeout, what, ok)
	return took
}

func has(addr string) func([]registry.Instance) bool {
	return func(insts []registry.Instance) bool {
		for _, in := range insts {
			if in.Addr == addr {
				return true
			}
		}
		return false
	}
}

func hasNot(addr string) func([]registry.Instance) bool {
	h := has(addr)
	return func(insts []registry.Instance) bool { return !h(insts) }
}
