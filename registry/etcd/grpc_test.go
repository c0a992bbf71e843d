package etcd_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/registrytest"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// backend is a gRPC server on loopback that answers with its name and the
// fallback reason the call reached it with.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	addr string
	srv  *grpc.Server
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{name: name, addr: lis.Addr().String(), srv: grpc.NewServer()}
	testgrpc.RegisterTestServiceServer(b.srv, b)
	go b.srv.Serve(lis)
	t.Cleanup(b.srv.Stop)
	return b
}

func (b *backend) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	reason := ""
	if v := metadata.ValueFromIncomingContext(ctx, fallback.Header); len(v) == 1 {
		reason = v[0]
	}
	return &testgrpc.SimpleResponse{Hostname: b.name, Username: reason}, nil
}

// instance returns the backend as an instance of service in lane.
func (b *backend) instance(service, lane string) registry.Instance {
	in := registrytest.Inst(service, b.addr, lane)
	in.Name = b.name
	return in
}

// dial returns a client of service that routes by lane over reg, closed
// when the test ends.
func dial(t testing.TB, reg registry.Registry, service string) testgrpc.TestServiceClient {
	t.Helper()
	prop, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	cc, err := grpc.NewClient("graylane:///"+service, append(resolver.DialOptions(reg, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(prop))),
	)...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

type result struct {
	served string // name of the backend
	reason string // fallback reason it was reached with
	err    error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%s (%s)", r.served, r.reason)
}

func call(client testgrpc.TestServiceClient, lane string) result {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if lane != "" {
		ctx = tag.NewContext(ctx, tag.MustParse(lane))
	}
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil {
		return result{err: err}
	}
	return result{served: resp.Hostname, reason: resp.Username}
}

// eventually calls with lane until ok accepts the result, within timeout,
// and returns the last result and the time it took.
func eventually(t testing.TB, client testgrpc.TestServiceClient, lane string, timeout time.Duration, what string, ok func(result) bool) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var last result
	for time.Now().Before(deadline) {
		if last = call(client, lane); ok(last) { // each call is a round trip: the loop paces itself
			return last, time.Since(start)
		}
	}
	t.Fatalf("%s: not within %v; last result %v", what, timeout, last)
	return last, 0
}

func servedBy(name string) func(result) bool {
	return func(r result) bool { return r.err == nil && r.served == name }
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// TestChangePropagation measures the time from Register returning in one
// process to a gRPC client of another process routing calls of the lane
// to the new instance: etcd write, watch event, resolver update,
// connection, picker.
func TestChangePropagation(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	servers, _ := newRegistry(t, newClient(t, srv.Endpoint()))
	clients, _ := newRegistry(t, newClient(t, srv.Endpoint()))

	prod := startBackend(t, "prod")
	_, err := servers.Register(ctx, prod.instance("svc", ""))
	require.NoError(t, err)
	client := dial(t, clients, "svc")
	eventually(t, client, "", defaultTestTimeout, "prod up", servedBy("prod"))

	const trials = 100
	lat := make([]time.Duration, 0, trials)
	for i := range trials {
		gray := startBackend(t, fmt.Sprintf("gray-%d", i))
		h, err := servers.Register(ctx, gray.instance("svc", "gray"))
		require.NoError(t, err)
		_, took := eventually(t, client, "gray", defaultTestTimeout, "gray routed", servedBy(gray.name))
		lat = append(lat, took)

		require.NoError(t, h.Deregister(ctx))
		r, _ := eventually(t, client, "gray", defaultTestTimeout, "gray gone", servedBy("prod"))
		require.Equal(t, "noinstances", r.reason)
		gray.srv.Stop()
	}
	slices.Sort(lat)
	p50, p90, p99, pmax := percentile(lat, .50), percentile(lat, .90), percentile(lat, .99), lat[len(lat)-1]
	t.Logf("Register to routed, %d trials: p50 %v, p90 %v, p99 %v, max %v", trials,
		p50.Round(10*time.Microsecond), p90.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), pmax.Round(10*time.Microsecond))
	assert.LessOrEqual(t, p99, 500*time.Millisecond)
}

// TestAbandonFallsBack: an instance whose process stops renewing its lease
// leaves its lane within the TTL, and the lane's calls fall back to prod
// with reason noinstances, without a failed call.
func TestAbandonFallsBack(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	prodReg, _ := newRegistry(t, newClient(t, srv.Endpoint()))
	grayReg, _ := newRegistry(t, newClient(t, srv.Endpoint()), etcd.WithTTL(testTTL))
	clients, _ := newRegistry(t, newClient(t, srv.Endpoint()))

	prod, gray := startBackend(t, "prod"), startBackend(t, "gray")
	_, err := prodReg.Register(ctx, prod.instance("svc", ""))
	require.NoError(t, err)
	_, err = grayReg.Register(ctx, gray.instance("svc", "gray"))
	require.NoError(t, err)
	client := dial(t, clients, "svc")
	eventually(t, client, "gray", defaultTestTimeout, "gray routed", servedBy("gray"))

	// The gray server keeps running: only its registration dies, so the
	// fallback comes from the registry (noinstances), not from a failed
	// connection (unavailable).
	grayReg.Abandon()
	var calls, onGray atomic.Int64
	r, took := eventually(t, client, "gray", testTTL+time.Second, "gray lane empty", func(r result) bool {
		calls.Add(1)
		if r.served == "gray" {
			onGray.Add(1)
		}
		return r.err == nil && r.served == "prod"
	})
	assert.Equal(t, "noinstances", r.reason)
	t.Logf("gray lane left %v after Abandon (TTL %v); %d calls meanwhile, %d on gray",
		took.Round(time.Millisecond), testTTL, calls.Load(), onGray.Load())
	for range 20 {
		r := call(client, "gray")
		require.NoError(t, r.err)
		assert.Equal(t, "prod", r.served)
		assert.Equal(t, "noinstances", r.reason)
	}
}

// load calls client from several goroutines, tagged gray and untagged in
// turn, until stopped, and counts what happens.
type load struct {
	client   testgrpc.TestServiceClient
	stopc    chan struct{}
	progress chan struct{} // signalled after calls
	wg       sync.WaitGroup
	total    atomic.Int64
	failed   atomic.Int64
	misrout  atomic.Int64 // a gray call not on gray, an untagged call not on prod
	mu       sync.Mutex
	errs     []string
}

func startLoad(client testgrpc.TestServiceClient, workers int) *load {
	l := &load{client: client, stopc: make(chan struct{}), progress: make(chan struct{}, 1)}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				lane, want := "gray", "gray"
				if i%2 == 1 {
					lane, want = "", "prod"
				}
				r := call(l.client, lane)
				l.total.Add(1)
				select {
				case l.progress <- struct{}{}:
				default:
				}
				switch {
				case r.err != nil:
					l.failed.Add(1)
					l.note(fmt.Sprintf("%q: %v", lane, r.err))
				case r.served != want:
					l.misrout.Add(1)
					l.note(fmt.Sprintf("%q: served by %v", lane, r))
				}
			}
		}()
	}
	return l
}

func (l *load) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, s)
	}
}

// waitCalls returns once n more calls have been made.
func (l *load) waitCalls(t testing.TB, n int64) {
	t.Helper()
	target := l.total.Load() + n
	timeout := time.NewTimer(defaultTestTimeout)
	defer timeout.Stop()
	for l.total.Load() < target {
		select {
		case <-l.progress:
		case <-timeout.C:
			t.Fatal("the load stalled")
		}
	}
}

func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}
