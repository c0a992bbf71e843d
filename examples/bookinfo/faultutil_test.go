package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/internal/tcpproxy"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
)

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
	cfg = testConfig(cfg)
	// The fault tests measure the synchronous path, heap included: the
	// event stream a page view load fills would count as growth.
	cfg.NoEvents = true
	if cfg.Replicas == nil {
		cfg.Replicas = map[string]int{}
	}
	cfg.Replicas["notifications-v1"] = 0
	if cfg.Telemetry == nil {
		cfg.Telemetry, _ = faultTelemetry()
	}
	var mem *registry.Memory
	if cfg.Registry == nil {
		mem = registry.NewMemory()
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
		srv := etcdtest.Start(t)
		defer srv.Close()
		client, err := etcdtest.NewClient(srv.Endpoint())
		require.NoError(t, err)
		defer client.Close()
		reg, err := etcd.New(client, etcd.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		defer reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		_, err = reg.Register(ctx, registry.Instance{Service: "warm-up", Addr: "127.0.0.1:1"})
		require.NoError(t, err)
		w, err := reg.Watch(ctx, "warm-up")
		require.NoError(t, err)
		defer w.Close()
		_, err = w.Next(ctx)
		require.NoError(t, err)
	})
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
	registry.Registry

	mu     sync.Mutex
	fronts map[string]*tcpproxy.Proxy // by instance name
}

func newCrashRegistry(inner registry.Registry) *crashRegistry {
	return &crashRegistry{Registry: inner, fronts: map[string]*tcpproxy.Proxy{}}
}

func (r *crashRegistry) Register(ctx context.Context, inst registry.Instance) (registry.Registration, error) {
	f, err := tcpproxy.New(inst.Addr)
	if err != nil {
		return nil, err
	}
	inst.Addr = f.Addr()
	reg, err := r.Registry.Register(ctx, inst)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.mu.Lock()
	if old := r.fronts[inst.Name]; old != nil {
		old.Close()
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
		f.Crash()
	}
}

// accepted returns the connections accepted by every instance so far.
func (r *crashRegistry) accepted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, f := range r.fronts {
		n += f.Accepted()
	}
	return n
}

// cut cuts every connection to the instances; new ones are accepted.
func (r *crashRegistry) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fronts {
		f.Reset()
	}
}

// close stops every front; call it after the System is closed.
func (r *crashRegistry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.fronts {
		f.Close()
	}
}

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
