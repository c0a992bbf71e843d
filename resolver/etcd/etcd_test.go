package etcd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/resolver/etcd"
	"github.com/graylane/graylane/tag"
)

const defaultTestTimeout = 10 * time.Second

// testTTL is the lease TTL of the tests that wait for leases to expire.
const testTTL = 2 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is an embedded single-member etcd on loopback, which a test can
// stop and start again on the same data directory and ports. Clients reach
// it through a proxy, so that stopping it looks to them like the death of
// an etcd process: their connections break at once (embed's own Close
// drains client streams gracefully for several seconds first).
type server struct {
	t      testing.TB
	dir    string
	client url.URL
	peer   url.URL
	front  *proxy
	e      *embed.Etcd
}

// freePort returns a loopback address with a port nobody listens on.
func freePort(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func startServer(t testing.TB) *server {
	t.Helper()
	s := &server{
		t:      t,
		dir:    t.TempDir(),
		client: url.URL{Scheme: "http", Host: freePort(t)},
		peer:   url.URL{Scheme: "http", Host: freePort(t)},
	}
	s.start()
	t.Cleanup(s.stop)
	s.front = newProxy(t, s.client.Host)
	return s
}

func (s *server) start() {
	s.t.Helper()
	require.Nil(s.t, s.e, "already running")
	cfg := embed.NewConfig()
	cfg.Name = "graylane-test"
	cfg.Dir = s.dir
	// Errors only, into the test's log: shown when a test fails or with -v.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zaptest.NewLogger(s.t, zaptest.Level(zap.ErrorLevel)))
	cfg.ListenClientUrls = []url.URL{s.client}
	cfg.AdvertiseClientUrls = []url.URL{s.client}
	cfg.ListenPeerUrls = []url.URL{s.peer}
	cfg.AdvertisePeerUrls = []url.URL{s.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	require.NoError(s.t, err)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(defaultTestTimeout):
		e.Close()
		s.t.Fatal("etcd did not become ready")
	}
	s.e = e
}

// stop stops etcd, breaking its clients' connections first.
func (s *server) stop() {
	if s.front != nil {
		s.front.reset()
	}
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// endpoint is where clients reach etcd.
func (s *server) endpoint() string { return s.front.addr() }

// newClient returns an etcd client of endpoint, closed when the test ends.
// It reconnects quickly once etcd is back, as a production client tuned
// for discovery would.
func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
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

// proxy forwards TCP connections to target until cut: then it closes every
// connection and refuses new ones, as a network partition between one
// process and etcd would, while etcd keeps serving everyone else.
type proxy struct {
	lis    net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// setCut cuts the link (closing every connection) or restores it.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		p.resetLocked()
	}
}

// reset closes every connection; new ones are forwarded as before.
func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
}

func (p *proxy) resetLocked() {
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.lis.Close()
	p.setCut(true)
	p.wg.Wait()
}

// inst returns an instance of service at addr in lane ("" for base).
func inst(service, addr, lane string) resolver.Instance {
	in := resolver.Instance{Service: service, Addr: addr}
	if lane != "" {
		in.Tag = tag.MustParse(lane)
	}
	return in
}

// next returns the watcher's next set, failing the test after the default
// timeout.
func next(t testing.TB, w resolver.Watcher) []resolver.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	got, err := w.Next(ctx)
	require.NoError(t, err)
	return got
}

// addrs renders a set as "addr/lane" strings.
func addrs(insts []resolver.Instance) []string {
	out := []string{}
	for _, in := range insts {
		out = append(out, in.Addr+"/"+in.Lane("prod"))
	}
	return out
}

// waitFor reads sets from w until ok accepts one, within timeout, and
// returns the time it took.
func waitFor(t testing.TB, w resolver.Watcher, timeout time.Duration, what string, ok func([]resolver.Instance) bool) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last []resolver.Instance
	for {
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("%s: not within %v (%v); last set %v", what, timeout, err, addrs(last))
		}
		last = got
		if ok(got) {
			return time.Since(start)
		}
	}
}

func has(addr string) func([]resolver.Instance) bool {
	return func(insts []resolver.Instance) bool {
		for _, in := range insts {
			if in.Addr == addr {
				return true
			}
		}
		return false
	}
}

func hasNot(addr string) func([]resolver.Instance) bool {
	h := has(addr)
	return func(insts []resolver.Instance) bool { return !h(insts) }
}
