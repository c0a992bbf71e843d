package httpmw_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

const defaultTestTimeout = 10 * time.Second

// httpFleet runs HTTP instances on loopback, registered in one registry.
type httpFleet struct {
	t      *testing.T
	reg    *registry.Memory
	router *routing.Router
	client *http.Client

	mu    sync.Mutex
	insts map[string]*httpInstance
	next  map[string]string // service -> downstream service
}

type httpInstance struct {
	name  string
	srv   *httptest.Server
	reg   registry.Registration
	calls atomic.Int64
}

func newHTTPFleet(t *testing.T, policy *fallback.Policy, opts ...routing.Option) *httpFleet {
	f := &httpFleet{t: t, reg: registry.NewMemory(), insts: map[string]*httpInstance{}, next: map[string]string{}}
	f.router = routing.NewRouter(f.reg, policy, opts...)
	f.client = &http.Client{Transport: httpmw.NewTransport(&http.Transport{},
		httpmw.WithPropagator(newProp(t)), httpmw.WithRouting(f.router))}
	t.Cleanup(func() {
		f.client.CloseIdleConnections()
		f.router.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, in := range f.insts {
			in.srv.Close()
		}
	})
	return f
}

// start runs an instance that answers with its name (and its downstream's
// answer), and the fallback reason it was reached with.
func (f *httpFleet) start(service, lane, name string, weight uint32) *httpInstance {
	in := &httpInstance{name: name}
	self := receipt.Self{Service: service, Instance: name, Lane: lane}
	if lane == "" {
		self.Lane = tag.Base
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.calls.Add(1)
		out := name
		f.mu.Lock()
		next := f.next[service]
		f.mu.Unlock()
		if next != "" {
			body, _, err := f.get(r.Context(), next, "")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			out += ">" + body
		}
		w.Header().Set("X-Reason", r.Header.Get("X-Graylane-Fallback"))
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, out)
	})
	in.srv = httptest.NewServer(httpmw.NewHandler(h, httpmw.WithPropagator(newProp(f.t)), httpmw.WithRouteReceipt(self)))
	var tg tag.Tag
	if lane != "" {
		tg = tag.MustParse(lane)
	}
	var err error
	in.reg, err = f.reg.Register(context.Background(), registry.Instance{
		Service: service, Addr: in.srv.Listener.Addr().String(), Name: name, Tag: tg, Weight: weight,
	})
	require.NoError(f.t, err)
	f.mu.Lock()
	f.insts[name] = in
	f.mu.Unlock()
	return in
}

// stop takes an instance down the polite way: deregister, wait until the
// router no longer picks it (drain), then close.
func (in *httpInstance) stop(t *testing.T, f *httpFleet, service, lane string) {
	require.NoError(t, in.reg.Deregister(context.Background()))
	tg := tag.MustParse(lane)
	require.Eventually(t, func() bool {
		r, err := f.router.Route(context.Background(), service, tg)
		return err == nil && r.Instance.Name != in.name
	}, defaultTestTimeout, time.Millisecond)
	// Requests routed here just before still finish: Shutdown, unlike
	// Close, leaves connections that are being opened alone.
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	require.NoError(t, in.srv.Config.Shutdown(ctx))
	in.srv.Close()
}

// get calls http://service/ with lane as the context's tag.
func (f *httpFleet) get(ctx context.Context, service, lane string) (body, reason string, err error) {
	if lane != "" {
		ctx = tag.NewContext(ctx, tag.MustParse(lane))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+service+"/", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if resp.Header.Get("X-Host") != service {
		return "", "", fmt.Errorf("Host header %q, want the logical name %q", resp.Header.Get("X-Host"), service)
	}
	return string(b), resp.Header.Get("X-Reason"), err
}

type httpResult struct{ body, reason string }

func (f *httpFleet) call(service, lane string) httpResult {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	body, reason, err := f.get(ctx, service, lane)
	require.NoError(f.t, err)
	return httpResult{body, reason}
}

func TestRoutingMatrix(t *testing.T) {
	f := newHTTPFleet(t, nil)
	for _, svc := range []string{"a", "b", "c"} {
		f.start(svc, "", svc+"-prod", 0)
		f.start(svc, "gray", svc+"-gray", 0)
		f.start(svc, "v3", svc+"-v3", 0)
	}
	for _, svc := range []string{"a", "b", "c"} {
		for range 30 {
			assert.Equal(t, httpResult{svc + "-prod", ""}, f.call(svc, ""))
		}
		for _, lane := range []string{"gray", "v3", "prod"} {
			for range 10 {
				assert.Equal(t, httpResult{svc + "-" + lane, ""}, f.call(svc, lane))
			}
		}
		assert.Equal(t, int64(10), f.insts[svc+"-gray"].calls.Load(), "no untagged request reached gray")
		assert.Equal(t, int64(10), f.insts[svc+"-v3"].calls.Load(), "no untagged request reached v3")
		assert.Equal(t, httpResult{svc + "-prod", "noinstances"}, f.call(svc, "dev"))
	}
}

func TestRoutingUnavailable(t *testing.T) {
	t.Run("registry says not serving", func(t *testing.T) {
		f := newHTTPFleet(t, nil)
		f.start("svc", "", "prod", 0)
		gray := f.start("svc", "gray", "gray", 0)
		assert.Equal(t, "gray", f.call("svc", "gray").body)
		inst := gray.reg.Instance()
		inst.Health = registry.NotServing
		require.NoError(t, gray.reg.Update(context.Background(), inst))
		require.Eventually(t, func() bool { return f.call("svc", "gray") == httpResult{"prod", "unavailable"} },
			defaultTestTimeout, time.Millisecond)
	})
	t.Run("stopped", func(t *testing.T) {
		f := newHTTPFleet(t, nil)
		f.start("svc", "", "prod", 0)
		gray := f.start("svc", "gray", "gray", 0)
		assert.Equal(t, "gray", f.call("svc", "gray").body)
		gray.srv.Close() // crashed: still registered, refuses connections
		f.client.CloseIdleConnections()
		// The refused connection is retried at once on a new choice: no request fails.
		for range 10 {
			assert.Equal(t, httpResult{"prod", "unavailable"}, f.call("svc", "gray"))
		}
	})
}

func TestRoutingErrors(t *testing.T) {
	strictGray, err := fallback.NewPolicy(fallback.WithLaneMode("gray", fallback.Strict))
	require.NoError(t, err)
	f := newHTTPFleet(t, strictGray)
	f.start("svc", "", "prod", 0)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	_, _, err = f.get(ctx, "svc", "gray")
	require.Error(t, err)
	assert.ErrorIs(t, err, fallback.ErrRejected)
	for _, want := range []string{`service "svc"`, `tag "gray"`, "noinstances", "strict"} {
		assert.Contains(t, err.Error(), want)
	}

	_, _, err = f.get(ctx, "nosuch", "")
	assert.ErrorIs(t, err, routing.ErrUnknownService)
	assert.ErrorIs(t, err, fallback.ErrNoInstance, "an unknown service is a case of no instance")
	assert.Contains(t, err.Error(), `service "nosuch"`)

	// Hosts that are not logical go out as they are.
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "direct") }))
	defer direct.Close()
	resp, err := f.client.Get(direct.URL)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "direct", string(b))
}

func TestRoutingDynamicPolicy(t *testing.T) {
	dyn := fallback.NewDynamic(nil)
	f := newHTTPFleet(t, nil, routing.WithDynamicPolicy(dyn))
	f.start("svc", "", "prod", 0)
	assert.Equal(t, httpResult{"prod", "noinstances"}, f.call("svc", "gray"))

	strict, err := fallback.NewPolicy(fallback.WithService("svc", fallback.WithMode(fallback.Strict)))
	require.NoError(t, err)
	dyn.Store(strict)
	require.Eventually(t, func() bool {
		_, _, err := f.get(context.Background(), "svc", "gray")
		return errors.Is(err, fallback.ErrRejected)
	}, defaultTestTimeout, time.Millisecond)
}

func TestRoutingChainAndReturnToLane(t *testing.T) {
	policy, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"))
	require.NoError(t, err)
	f := newHTTPFleet(t, policy)
	f.start("a", "", "a-prod", 0)
	f.start("a", "dev", "a-dev", 0)
	f.start("b", "", "b-prod", 0)
	f.start("c", "", "c-prod", 0)
	f.start("c", "dev-alice", "c-alice", 0)
	f.next["a"], f.next["b"] = "b", "c"

	assert.Equal(t, httpResult{"a-dev>b-prod>c-alice", "noinstances"}, f.call("a", "dev-alice"))
	assert.Equal(t, httpResult{"a-prod>b-prod>c-prod", ""}, f.call("a", ""))
}

func TestRoutingWeighted(t *testing.T) {
	f := newHTTPFleet(t, nil)
	f.start("svc", "", "prod", 0)
	light := f.start("svc", "gray", "light", 1)
	heavy := f.start("svc", "gray", "heavy", 3)
	for range 4000 {
		f.call("svc", "gray")
	}
	assert.InDelta(t, 1000, light.calls.Load(), 200)
	assert.InDelta(t, 3000, heavy.calls.Load(), 200)
}

func TestRoutingScaleUnderLoad(t *testing.T) {
	f := newHTTPFleet(t, nil)
	f.start("svc", "", "prod", 0)
	var (
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		total, failed atomic.Int64
		errs          = make(chan error, 100)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := f.get(context.Background(), "svc", []string{"gray", ""}[i%2])
				total.Add(1)
				if err != nil {
					failed.Add(1)
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for range 3 {
		gray := f.start("svc", "gray", "gray", 0)
		require.Eventually(t, func() bool { return gray.calls.Load() > 50 }, defaultTestTimeout, time.Millisecond)
		gray.stop(t, f, "svc", "gray")
		n := total.Load()
		require.Eventually(t, func() bool { return total.Load() > n+100 }, defaultTestTimeout, time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	var all []string
	for err := range errs {
		all = append(all, err.Error())
	}
	assert.Zero(t, failed.Load(), strings.Join(all, "\n"))
}

func TestRouteReceiptOverHTTP(t *testing.T) {
	f := newHTTPFleet(t, nil)
	f.start("a", "", "a-prod", 0)
	f.start("a", "gray", "a-gray", 0)
	f.start("b", "", "b-prod", 0)
	f.next["a"] = "b"

	front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://a/", nil)
		resp, err := f.client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		io.Copy(w, resp.Body)
		resp.Body.Close()
	}), httpmw.WithPropagator(newProp(t)), httpmw.WithRouteReceipt(receipt.Self{Service: "front", Instance: "front-0", Lane: "prod"})))
	defer front.Close()

	req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
	req.Header.Set("X-Traffic-Tag", "gray")
	req.Header.Set(receipt.Header, receipt.Ask)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	defer http.DefaultClient.CloseIdleConnections()
	hops, err := receipt.Parse(resp.Header.Get(receipt.Header))
	require.NoError(t, err)
	assert.Equal(t, []receipt.Hop{
		{Service: "front", Instance: "front-0", Lane: "prod", Tag: "gray"},
		{Service: "a", Instance: "a-gray", Lane: "gray", Tag: "gray", From: "front"},
		{Service: "b", Instance: "b-prod", Lane: "prod", Tag: "gray", Fallback: "noinstances", From: "a"},
	}, hops)

	// Not asked: not told.
	req.Header.Del(receipt.Header)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, resp.Header.Get(receipt.Header))
}

// TestRouteFilter: a request that WithRouteFilter turns down is not routed,
// even with a logical host that the registry knows: it goes to its URL as
// it is. The others are routed.
func TestRouteFilter(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	_, err := reg.Register(context.Background(), registry.Instance{Service: "reviews", Addr: "127.0.0.1:9"})
	require.NoError(t, err)
	router := routing.NewRouter(reg, nil)
	defer router.Close()
	hosts := make(chan string, 1)
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hosts <- r.URL.Host
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	tr := httpmw.NewTransport(base, httpmw.WithRouting(router),
		httpmw.WithRouteFilter(func(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/outside/") }))
	for path, want := range map[string]string{"/reviews/0": "127.0.0.1:9", "/outside/reviews/0": "reviews"} {
		req, err := http.NewRequest(http.MethodGet, "http://reviews"+path, nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, <-hosts, path)
	}
}

// TestRoutingRetriesClosedConnections: an instance that closes a
// connection without answering (as one stopping gracefully may, while a
// kept-alive connection is being reused) costs an idempotent request
// nothing: it goes once more, to the next instance. A request that is not
// idempotent is not sent twice.
func TestRoutingRetriesClosedConnections(t *testing.T) {
	f := newHTTPFleet(t, nil)
	f.start("svc", "", "good", 0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	var hangups atomic.Int64
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				bufio.NewReader(c).ReadString('\n') // the request line: the request was sent
				hangups.Add(1)
				c.Close()
			}()
		}
	}()
	_, err = f.reg.Register(context.Background(), registry.Instance{Service: "svc", Addr: lis.Addr().String(), Name: "hangup"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		insts := f.reg.Instances("svc")
		return len(insts) == 2
	}, defaultTestTimeout, time.Millisecond)

	for range 10 {
		body, _, err := f.get(context.Background(), "svc", "")
		require.NoError(t, err)
		assert.Equal(t, "good", body)
	}
	assert.Positive(t, hangups.Load(), "the closing instance was never tried")

	before := hangups.Load()
	var failed int
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, "http://svc/", strings.NewReader("x"))
		req.GetBody = nil
		resp, err := f.client.Do(req)
		if err != nil {
			failed++
			continue
		}
		resp.Body.Close()
	}
	assert.Equal(t, int(hangups.Load()-before), failed, "a POST that met a hang-up was sent again")
	assert.Positive(t, failed)
}

// TestRoutingSpanAttributes: a routed call records its decision on the
// span of its context, and a refused one its reason, with no lane.
func TestRoutingSpanAttributes(t *testing.T) {
	strictV3, err := fallback.NewPolicy(fallback.WithLaneMode("v3", fallback.Strict))
	require.NoError(t, err)
	f := newHTTPFleet(t, strictV3)
	f.start("svc", "", "prod", 0)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })

	tests := []struct {
		lane, wantLane, wantReason string
		wantErr                    bool
	}{
		{lane: "", wantLane: "prod", wantReason: "untagged"},
		{lane: "gray", wantLane: "prod", wantReason: "noinstances"},
		{lane: "v3", wantLane: "", wantReason: "noinstances", wantErr: true},
	}
	for _, tt := range tests {
		t.Run("tag="+tt.lane, func(t *testing.T) {
			ctx, span := tp.Tracer("test").Start(context.Background(), "call")
			_, _, err := f.get(ctx, "svc", tt.lane)
			span.End()
			assert.Equal(t, tt.wantErr, err != nil, "error: %v", err)
			ended := rec.Ended()
			attrs := map[attribute.Key]string{}
			for _, kv := range ended[len(ended)-1].Attributes() {
				attrs[kv.Key] = kv.Value.AsString()
			}
			assert.Equal(t, map[attribute.Key]string{
				routing.AttrService: "svc", routing.AttrTag: tt.lane,
				routing.AttrLane: tt.wantLane, routing.AttrReason: tt.wantReason,
			}, attrs)
		})
	}
}
