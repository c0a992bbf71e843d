package kubernetes

import (
	"context"
	"fmt"
	"net"
	"slices"
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
	"github.com/graylane/graylane/registry/kubernetes/kubetest"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// backend is a gRPC server on loopback that answers with its name and the
// fallback reason the call reached it with: the process of one Pod.
//
// The API server refuses loopback addresses in EndpointSlices, so each
// backend has a Pod IP of its own in 10.244.0.0/16, which the clients'
// dialer (kubetest.Dial) maps to 127.0.0.1, keeping the port.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	ip   string
	port int32
	srv  *grpc.Server
}

var podIPs atomic.Int64

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{name: name, ip: kubetest.PodIP(int(podIPs.Add(1))),
		port: int32(lis.Addr().(*net.TCPAddr).Port), srv: grpc.NewServer()}
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

// deploy creates the backend's Pod (named after it) and an EndpointSlice
// of service with its one endpoint, as Kubernetes would for a Pod of the
// Service's Deployment. The slice is named after the Pod.
func (c *cluster) deploy(b *backend, service string, labels map[string]string) {
	c.t.Helper()
	c.pod(b.name, labels, nil)
	c.endpoint(b, service, true)
}

// endpoint writes the backend's slice, its endpoint ready or not.
func (c *cluster) endpoint(b *backend, service string, ready bool) {
	c.t.Helper()
	c.slice(b.name, service, "grpc", b.port, ep{ip: b.ip, pod: b.name, notReady: !ready})
}

// dial returns a client of service that routes by lane over reg, closed
// when the test ends.
func dial(t testing.TB, reg registry.Registry, service string) testgrpc.TestServiceClient {
	t.Helper()
	prop, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	cc, err := grpc.NewClient("graylane:///"+service, append(resolver.DialOptions(reg, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(kubetest.Dial),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(prop))),
	)...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

type result struct {
	served, reason string
	err            error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%s (%s)", r.served, r.reason)
}

func call(ctx context.Context, client testgrpc.TestServiceClient, lane string) result {
	ctx, cancel := context.WithTimeout(ctx, wait)
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

// eventually calls with lane until ok accepts the result, within wait,
// and returns the last result and the time since start. The client's
// routing can only be observed by calling: the loop polls, one call per
// millisecond at most.
func eventually(t testing.TB, client testgrpc.TestServiceClient, lane, what string, start time.Time, ok func(result) bool) (result, time.Duration) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var last result
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); <-tick.C {
		if last = call(bg, client, lane); ok(last) {
			return last, time.Since(start)
		}
	}
	t.Fatalf("%s: not within %v; last result %v", what, wait, last)
	return last, 0
}

func servedBy(name, reason string) func(result) bool {
	return func(r result) bool { return r.err == nil && r.served == name && r.reason == reason }
}

func fellBack(reason string) func(result) bool {
	return func(r result) bool { return r.err == nil && r.reason == reason }
}

// TestGRPCLanes: the resolver and balancer over the Registry route by the
// Pods' lanes and fall back as they do over any registry.
func TestGRPCLanes(t *testing.T) {
	c := newCluster(t)
	prod, gray := startBackend(t, "reviews-v1"), startBackend(t, "reviews-v2")
	c.deploy(prod, "reviews", nil)
	c.deploy(gray, "reviews", map[string]string{DefaultLaneLabel: "gray"})
	reg := c.registry(nil, WithPortName("grpc"))
	client := dial(t, reg, "reviews")
	now := time.Now()

	eventually(t, client, "gray", "gray to v2", now, servedBy("reviews-v2", ""))
	for range 10 {
		assert.Equal(t, "reviews-v1 ()", call(bg, client, "").String(), "untagged calls stay in the base lane")
		assert.Equal(t, "reviews-v2 ()", call(bg, client, "gray").String())
		assert.Equal(t, "reviews-v1 (noinstances)", call(bg, client, "v3").String(), "a lane with no pod falls back")
	}
	c.endpoint(gray, "reviews", false)
	eventually(t, client, "gray", "v2 not ready", now, servedBy("reviews-v1", "unavailable"))
	c.endpoint(gray, "reviews", true)
	eventually(t, client, "gray", "v2 ready", now, servedBy("reviews-v2", ""))
	c.deleteSlice(gray.name)
	eventually(t, client, "gray", "v2's endpoint deleted", now, servedBy("reviews-v1", "noinstances"))
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func summary(lat []time.Duration) string {
	slices.Sort(lat)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", r(percentile(lat, .5)), r(percentile(lat, .9)), r(percentile(lat, .99)), r(lat[len(lat)-1]))
}

// TestRoutingLatency measures the time from a write to the API server (a
// lane label flipped on a live Pod; an endpoint's readiness flipped) to a
// gRPC client routing by it: API server, watch event, informer, Registry,
// resolver, balancer.
func TestRoutingLatency(t *testing.T) {
	c := newCluster(t)
	prod, gray := startBackend(t, "prod"), startBackend(t, "gray")
	c.deploy(prod, "svc", nil)
	c.deploy(gray, "svc", nil)
	reg := c.registry(nil, WithPortName("grpc"))
	client := dial(t, reg, "svc")
	eventually(t, client, "gray", "first set", time.Now(), fellBack("noinstances"))

	const trials = 100
	var labelFlips, readyFlips []time.Duration
	for i := range trials {
		start := time.Now()
		if i%2 == 0 {
			c.label(gray.name, DefaultLaneLabel, ptr("gray"))
			_, took := eventually(t, client, "gray", "labelled gray", start, servedBy("gray", ""))
			labelFlips = append(labelFlips, took)
		} else {
			c.label(gray.name, DefaultLaneLabel, nil)
			_, took := eventually(t, client, "gray", "label removed", start, fellBack("noinstances"))
			labelFlips = append(labelFlips, took)
		}
	}
	c.label(gray.name, DefaultLaneLabel, ptr("gray"))
	eventually(t, client, "gray", "labelled gray", time.Now(), servedBy("gray", ""))
	for i := range trials {
		start := time.Now()
		ready := i%2 == 1
		c.endpoint(gray, "svc", ready)
		if ready {
			_, took := eventually(t, client, "gray", "ready", start, servedBy("gray", ""))
			readyFlips = append(readyFlips, took)
		} else {
			_, took := eventually(t, client, "gray", "not ready", start, servedBy("prod", "unavailable"))
			readyFlips = append(readyFlips, took)
		}
	}
	all := append(slices.Clone(labelFlips), readyFlips...)
	t.Logf("lane label flip to routed, %d trials: %s", trials, summary(labelFlips))
	t.Logf("readiness flip to routed, %d trials: %s", trials, summary(readyFlips))
	t.Logf("both, %d trials: %s", len(all), summary(all))
	assert.LessOrEqual(t, percentile(labelFlips, .99), time.Second)
	assert.LessOrEqual(t, percentile(readyFlips, .99), time.Second)
}

// TestRouterAndPolicies: the HTTP Router reads the Registry as it reads
// any registry, and a policy's chains and strict lanes apply unchanged:
// dev-alice falls back to dev, then to prod; strict lane audit fails.
func TestRouterAndPolicies(t *testing.T) {
	c := newCluster(t)
	c.pod("v1", nil, nil)
	c.pod("v2", map[string]string{DefaultLaneLabel: "dev"}, nil)
	c.slice("s", "details", "http", 9080, ep{ip: "10.0.0.1", pod: "v1"}, ep{ip: "10.0.0.2", pod: "v2"})
	reg := c.registry(nil, WithPortName("http"))
	policy, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"), fallback.WithLaneMode("audit", fallback.Strict))
	require.NoError(t, err)
	router := routing.NewRouter(reg, policy)
	t.Cleanup(func() { router.Close() })

	for _, tc := range []struct{ tag, addr, lane string }{
		{"", "10.0.0.1:9080", "prod"},
		{"dev", "10.0.0.2:9080", "dev"},
		{"dev-alice", "10.0.0.2:9080", "dev"},
		{"gray", "10.0.0.1:9080", "prod"},
	} {
		var tg tag.Tag
		if tc.tag != "" {
			tg = tag.MustParse(tc.tag)
		}
		rt, err := router.Route(bg, "details", tg)
		require.NoError(t, err, tc.tag)
		assert.Equal(t, tc.addr, rt.Instance.Addr, tc.tag)
		assert.Equal(t, tc.lane, rt.Lane, tc.tag)
	}
	_, err = router.Route(bg, "details", tag.MustParse("audit"))
	assert.ErrorIs(t, err, fallback.ErrRejected)

	c.slice("s", "details", "http", 9080, ep{ip: "10.0.0.1", pod: "v1"}, ep{ip: "10.0.0.2", pod: "v2", notReady: true})
	deadline := time.Now().Add(wait)
	for tick := time.NewTicker(time.Millisecond); ; <-tick.C { // the Router has no change to await
		rt, err := router.Route(bg, "details", tag.MustParse("dev"))
		require.NoError(t, err)
		if rt.Lane == "prod" {
			assert.Equal(t, fallback.Unavailable, rt.Reason)
			tick.Stop()
			break
		}
		require.True(t, time.Now().Before(deadline), "dev not ready: still routed to %v", rt.Lane)
	}
}
