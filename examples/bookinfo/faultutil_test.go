package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/resolver/etcd"
)

// resources is the number of goroutines and the live heap at one moment.
type resources struct {
	goroutines int
	heap       uint64
}

// liveHeap returns the heap in use after a full collection. The second
// cycle frees what sync.Pools kept as victims of the first.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// measure returns the goroutine count once it has stopped changing for
// 50ms (within 2s: goroutines of an earlier test may still be ending), and
// the live heap.
func measure() resources {
	n, since := runtime.NumGoroutine(), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); <-tick.C {
		if m := runtime.NumGoroutine(); m != n {
			n, since = m, time.Now()
		} else if time.Since(since) >= 50*time.Millisecond {
			break
		}
	}
	return resources{goroutines: n, heap: liveHeap()}
}

// backToBaseline waits, within 10s, for the goroutine count to return to
// the baseline's, then checks the live heap against it with heapSlack.
// Call it after everything the test started has been closed, outside the
// function that held it, so that none of it is still reachable.
func backToBaseline(t *testing.T, base resources, heapSlack uint64) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	n := runtime.NumGoroutine()
	for deadline := start.Add(10 * time.Second); n > base.goroutines && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		<-tick.C
	}
	waited := time.Since(start)
	heap := liveHeap()
	t.Logf("goroutines %d before, %d after (back within %v); heap %.2f MiB before, %.2f MiB after (%+.1f KiB, slack %d KiB)",
		base.goroutines, n, waited.Round(time.Millisecond), mib(base.heap), mib(heap), kib(heap, base.heap), heapSlack>>10)
	if n > base.goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left over:\n%s", n-base.goroutines, buf[:runtime.Stack(buf, true)])
	}
	assert.LessOrEqual(t, heap, base.heap+heapSlack, "live heap did not return to the baseline")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// kib returns a-b in KiB, signed.
func kib(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 }

// startFaultSystem runs the demo as startSystem does, without an admin
// page, with its instances registered through a crashRegistry over
// cfg.Registry (a Memory of its own when nil). It returns the System, the
// crashRegistry, and a function that stops them: the fault tests stop
// everything themselves, before they measure what is left.
//
// Before closing the System, the function cuts every connection to the
// instances. Clients dial ahead (net/http dials a connection for a request
// that an idle one then serves, and keeps the new one idle), and
// http.Server.Shutdown waits 5s for a connection that never carried a
// request; the System closes its clients' idle connections only after its
// instances have stopped, so without the cut closing it may take 5s more.
func startFaultSystem(t *testing.T, ctx context.Context, cfg app.Config) (*app.System, *crashRegistry, func()) {
	t.Helper()
	if cfg.GatewayAddr == "" {
		cfg.GatewayAddr = "127.0.0.1:0"
	}
	if cfg.Drain == 0 {
		cfg.Drain = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var mem *resolver.Memory
	if cfg.Registry == nil {
		mem = resolver.NewMemory()
		cfg.Registry = mem
	}
	reg := newCrashRegistry(cfg.Registry)
	cfg.Registry = reg
	closeAll := func(sys *app.System) {
		reg.cut()
		if sys != nil {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			assert.NoError(t, sys.Close(ctx))
		}
		reg.close()
		if mem != nil {
			mem.Close()
		}
	}
	sys, err := app.Start(ctx, cfg)
	if err != nil {
		closeAll(nil)
		require.NoError(t, err)
	}
	return sys, reg, func() { closeAll(sys) }
}

var warmOnce, warmEtcdOnce sync.Once

// warmUp runs a System once per process, with requests through every
// lane, so that what it builds on first use and keeps for the life of the
// process (template and regular expression caches, gRPC's and protobuf's
// registries, net/http's tables, the routing counters shared by every
// client of the process) is there before a test measures its baseline.
func warmUp(t *testing.T) {
	warmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		sys, _, closeSys := startFaultSystem(t, ctx, app.Config{Replicas: map[string]int{"reviews-v2": 1, "ratings-v2": 1}})
		defer closeSys()
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		for _, lane := range []string{"", "gray", "v3", "warm-up"} {
			for _, path := range []string{"/productpage", "/api/v1/products/0", "/api/v1/products/0/reviews"} {
				_, _, err := get(ctx, client, sys.GatewayURL()+path, http.Header{"X-Traffic-Tag": {lane}})
				require.NoError(t, err)
			}
		}
	})
}

// warmUpEtcd does for an embedded etcd and a Registry on it what warmUp
// does for a System: the first of a process builds about 2.5 MiB of global
// state that stays (Prometheus series pre-registered for every gRPC method
// of etcd, protobuf descriptors, the etcd client's gRPC resolver).
func warmUpEtcd(t *testing.T) {
	warmEtcdOnce.Do(func() {
		srv := startEtcd(t)
		defer srv.close()
		client, err := newEtcdClient(srv.endpoint())
		require.NoError(t, err)
		defer client.Close()
		reg, err := etcd.New(client, etcd.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		defer reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		_, err = reg.Register(ctx, resolver.Instance{Service: "warm-up", Addr: "127.0.0.1:1"})
		require.NoError(t, err)
		w, err := reg.Watch(ctx, "warm-up")
		require.NoError(t, err)
		defer w.Close()
		_, err = w.Next(ctx)
		require.NoError(t, err)
	})
}

// newEtcdClient returns an etcd client of endpoint that reconnects quickly
// once etcd is back, as a client tuned for discovery would.
func newEtcdClient(endpoint string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
}

// get fetches a page through the gateway with a route receipt, within ctx.
func get(ctx context.Context, client *http.Client, rawURL string, header http.Header) (page, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return page{}, 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set(receipt.Header, receipt.Ask)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return page{}, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, time.Since(start), err
	}
	return fetchParse(resp, string(b)), time.Since(start), nil
}

// pollPage fetches until ok holds, within ctx, and returns the page and
// when its answer arrived. Each fetch is a round trip through the System,
// which paces the polling; a fetch that fails at once is retried after
// 5ms.
func pollPage(t *testing.T, ctx context.Context, what string, fetch func() (page, error), ok func(page) bool) (page, time.Time) {
	t.Helper()
	var (
		p   page
		err error
	)
	for ctx.Err() == nil {
		if p, err = fetch(); err == nil && ok(p) {
			return p, time.Now()
		}
		if err != nil {
			pace(ctx, 5*time.Millisecond)
		}
	}
	t.Fatalf("%s: not before the deadline; last page: status %d, route %v, error %v", what, p.status, p.route(), err)
	return p, time.Time{}
}

// hop returns the page's hop of service, if any.
func (p page) hop(service string) (receipt.Hop, bool) {
	for _, h := range p.hops {
		if h.Service == service {
			return h, true
		}
	}
	return receipt.Hop{}, false
}

// pageError returns the failure the page reports, if any: the texts
// productpage shows when a downstream call failed.
func pageError(body string) string {
	for _, f := range []string{"Error fetching product details", "Error fetching product reviews", "Ratings service is currently unavailable"} {
		if strings.Contains(body, f) {
			return f
		}
	}
	return ""
}

// sample is one request of a load, as the recorder saw it.
type sample struct {
	start, end time.Time
	header     string // the value of the recorder's header ("" when absent)
	status     int
	err        string // transport error or page failure, "" for success
	hops       []receipt.Hop
}

func (s sample) failed() bool { return s.err != "" || s.status != http.StatusOK }

func (s sample) hop(service string) (receipt.Hop, bool) { return page{hops: s.hops}.hop(service) }

// recorder is the http.RoundTripper of a load generator's client: it
// records, for each request, when it ran, the value of one request header,
// and how it ended (status, page failures, route receipt), so that a test
// can tell the requests before, during and after a fault apart.
type recorder struct {
	base   http.RoundTripper
	header string

	mu      sync.Mutex
	samples []sample
}

func newRecorder(header string) *recorder {
	return &recorder{base: &http.Transport{MaxIdleConnsPerHost: 64}, header: header}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := sample{start: time.Now(), header: req.Header.Get(r.header)}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		s.end, s.err = time.Now(), err.Error()
		r.add(s)
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.end, s.status = time.Now(), resp.StatusCode
	s.hops, _ = receipt.Parse(resp.Header.Get(receipt.Header))
	if err != nil {
		s.err = err.Error()
	} else {
		s.err = pageError(string(body))
	}
	r.add(s)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *recorder) add(s sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

func (r *recorder) all() []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.samples)
}

func (r *recorder) client() *http.Client { return &http.Client{Transport: r} }

func (r *recorder) close() { r.base.(*http.Transport).CloseIdleConnections() }

// crashRegistry is a Registry that puts a TCP front before each instance
// registered through it, and registers the front's address instead. A
// front counts the connections it accepts, and crash makes an instance
// look, from the network, like a process that died: its connections are
// cut and new ones are refused, while it stays registered. The System
// knows nothing of it: this is how the tests crash an instance.
type crashRegistry struct {
	resolver.Registry

	mu     sync.Mutex
	fronts map[string]*front // by instance name
}

func newCrashRegistry(inner resolver.Registry) *crashRegistry {
	return &crashRegistry{Registry: inner, fronts: map[string]*front{}}
}

func (r *crashRegistry) Register(ctx context.Context, inst resolver.Instance) (resolver.Registration, error) {
	f, err := newFront(inst.Addr)
	if err != nil {
		return nil, err
	}
	inst.Addr = f.lis.Addr().String()
	reg, err := r.Registry.Register(ctx, inst)
	if err != nil {
		f.close()
		return nil, err
	}
	r.mu.Lock()
	if old := r.fronts[inst.Name]; old != nil {
		old.close()
	}
	r.fronts[inst.Name] = f
	r.mu.Unlock()
	return reg, nil
}

// crash crashes the named instances.
func (r *crashRegistry) crash(t *testing.T, names ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		f := r.fronts[n]
		require.NotNil(t, f, "no instance %q", n)
		f.crash()
	}
}

// accepted returns the connections accepted by every instance so far.
func (r *crashRegistry) accepted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, f := range r.fronts {
		n += f.accepted.Load()
	}
	return n
}

// cut cuts every connection to the instances; new ones are accepted.
func (r *crashRegistry) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fronts {
		f.cutConns()
	}
}

// close stops every front; call it after the System is closed.
func (r *crashRegistry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fronts {
		f.close()
	}
}

// front forwards the TCP connections it accepts to an instance.
type front struct {
	lis      net.Listener
	target   string
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu      sync.Mutex
	crashed bool
	conns   map[net.Conn]struct{}
}

func newFront(target string) (*front, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *front) serve() {
	defer f.wg.Done()
	for {
		in, err := f.lis.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		out, err := net.Dial("tcp", f.target)
		f.mu.Lock()
		if err != nil || f.crashed {
			f.mu.Unlock()
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		f.conns[in], f.conns[out] = struct{}{}, struct{}{}
		f.wg.Add(2)
		f.mu.Unlock()
		go f.pipe(in, out)
		go f.pipe(out, in)
	}
}

func (f *front) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	f.mu.Lock()
	delete(f.conns, dst)
	delete(f.conns, src)
	f.mu.Unlock()
}

// crash closes the listener, so that new connections are refused, and
// cuts every connection.
func (f *front) crash() {
	f.lis.Close()
	f.mu.Lock()
	f.crashed = true
	f.mu.Unlock()
	f.cutConns()
}

// cutConns closes every connection the front forwards.
func (f *front) cutConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

func (f *front) close() {
	f.crash()
	f.wg.Wait()
}

// etcdServer is an embedded single-member etcd on loopback that a test
// can stop and start again on the same data directory and ports. Clients
// reach it through a front, so that stopping it looks to them like the
// death of an etcd process: their connections break at once.
type etcdServer struct {
	t      *testing.T
	dir    string
	client url.URL
	peer   url.URL
	front  *front
	e      *embed.Etcd
}

func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	s := &etcdServer{
		t:      t,
		dir:    t.TempDir(),
		client: url.URL{Scheme: "http", Host: freeAddr(t)},
		peer:   url.URL{Scheme: "http", Host: freeAddr(t)},
	}
	s.start()
	f, err := newFront(s.client.Host)
	require.NoError(t, err)
	s.front = f
	return s
}

func (s *etcdServer) start() {
	s.t.Helper()
	require.Nil(s.t, s.e, "etcd is running")
	cfg := embed.NewConfig()
	cfg.Name = "bookinfo-fault"
	cfg.Dir = s.dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{s.client}, []url.URL{s.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{s.peer}, []url.URL{s.peer}
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

// stop stops etcd, cutting its clients' connections first.
func (s *etcdServer) stop() {
	s.front.cutConns()
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// close stops etcd and its front.
func (s *etcdServer) close() {
	s.stop()
	s.front.close()
}

// endpoint is where clients reach etcd.
func (s *etcdServer) endpoint() string { return s.front.lis.Addr().String() }

// logEvents is a slog.Handler that hands the messages it receives that
// contain a word to a test, so that it can wait for an event the System
// only logs.
type logEvents struct {
	word string
	ch   chan string
}

func newLogEvents(word string) *logEvents { return &logEvents{word: word, ch: make(chan string, 64)} }

func (l *logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (l *logEvents) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logEvents) WithGroup(string) slog.Handler            { return l }
func (l *logEvents) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, l.word) {
		return nil
	}
	select {
	case l.ch <- r.Message:
	default: // nobody is waiting for that many
	}
	return nil
}

// await returns when a message containing msg is logged, and when.
func (l *logEvents) await(t *testing.T, ctx context.Context, msg string) time.Time {
	t.Helper()
	for {
		select {
		case m := <-l.ch:
			if strings.Contains(m, msg) {
				return time.Now()
			}
		case <-ctx.Done():
			t.Fatalf("%q was not logged", msg)
		}
	}
}

// describe renders hops as "service@instance(lane) tag=…[ !fallback][ error=…]".
func describe(hops []receipt.Hop) []string {
	var out []string
	for _, h := range hops {
		s := h.Service + "@" + h.Instance + "(" + h.Lane + ") tag=" + h.Tag
		if h.Fallback != "" {
			s += " !" + h.Fallback
		}
		if h.Error != "" {
			s += " error=" + h.Error
		}
		out = append(out, s)
	}
	return out
}
