package resolver_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

const defaultTestTimeout = 10 * time.Second

// fleet runs gRPC instances of several services on loopback, registered in
// one in-memory registry.
type fleet struct {
	t   *testing.T
	reg *registry.Memory

	mu    sync.Mutex
	insts map[string]*instance
	next  map[string]testgrpc.TestServiceClient // downstream client per service
}

// instance is one gRPC server. It counts its calls and connections, and
// answers with its name, the fallback reason it was reached with, and what
// its downstream service answered.
type instance struct {
	testgrpc.UnimplementedTestServiceServer
	f       *fleet
	name    string
	service string
	addr    string
	srv     *grpc.Server
	health  *health.Server
	reg     registry.Registration

	calls    atomic.Int64
	accepted atomic.Int64
	open     atomic.Int64

	// handshake delays each connection the instance accepts: it stays
	// connecting that long.
	handshake atomic.Int64 // time.Duration
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, reg: registry.NewMemory(), insts: map[string]*instance{}, next: map[string]testgrpc.TestServiceClient{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, in := range f.insts {
			in.srv.Stop()
		}
		f.reg.Close()
	})
	return f
}

// start runs and registers an instance of service in lane ("" for base).
func (f *fleet) start(service, lane, name string, weight uint32) *instance {
	f.t.Helper()
	return f.startSlow(service, lane, name, weight, 0)
}

// startSlow is start for an instance whose every connection takes
// handshake to be accepted.
func (f *fleet) startSlow(service, lane, name string, weight uint32, handshake time.Duration) *instance {
	f.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f.t, err)
	in := &instance{f: f, name: name, service: service, addr: lis.Addr().String(), health: health.NewServer()}
	in.handshake.Store(int64(handshake))
	in.srv = grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(grpcmw.WithPropagator(prop(f.t)))),
	)
	testgrpc.RegisterTestServiceServer(in.srv, in)
	healthpb.RegisterHealthServer(in.srv, in.health)
	go in.srv.Serve(&countingListener{Listener: lis, in: in})
	var tg tag.Tag
	if lane != "" {
		tg = tag.MustParse(lane)
	}
	in.reg, err = f.reg.Register(context.Background(), registry.Instance{
		Service: service, Addr: in.addr, Name: name, Tag: tg, Weight: weight,
	})
	require.NoError(f.t, err)
	f.mu.Lock()
	f.insts[name] = in
	f.mu.Unlock()
	return in
}

// stop takes an instance down the polite way: deregister, then stop
// gracefully (in-flight calls finish).
func (in *instance) stop() {
	require.NoError(in.f.t, in.reg.Deregister(context.Background()))
	in.srv.GracefulStop()
}

func (in *instance) retag(lane string) {
	cur := in.reg.Instance()
	cur.Tag = tag.Tag{}
	if lane != "" {
		cur.Tag = tag.MustParse(lane)
	}
	require.NoError(in.f.t, in.reg.Update(context.Background(), cur))
}

func (in *instance) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	in.calls.Add(1)
	reason := ""
	if v := metadata.ValueFromIncomingContext(ctx, fallback.Header); len(v) == 1 {
		reason = v[0]
	}
	out := in.name
	in.f.mu.Lock()
	next := in.f.next[in.service]
	in.f.mu.Unlock()
	if next != nil {
		resp, err := next.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if err != nil {
			return nil, err
		}
		out += ">" + resp.Hostname
	}
	return &testgrpc.SimpleResponse{Hostname: out, Username: reason}, nil
}

type countingListener struct {
	net.Listener
	in *instance
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if d := time.Duration(l.in.handshake.Load()); d > 0 {
		time.Sleep(d) // the fault being injected: a slow handshake
	}
	l.in.accepted.Add(1)
	l.in.open.Add(1)
	return &countingConn{Conn: c, in: l.in}, nil
}

type countingConn struct {
	net.Conn
	in   *instance
	once sync.Once
}

func (c *countingConn) Close() error {
	c.once.Do(func() { c.in.open.Add(-1) })
	return c.Conn.Close()
}

func prop(t testing.TB) *propagation.Propagator {
	t.Helper()
	p, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	return p
}

// dial returns a client of service that routes by lane.
func (f *fleet) dial(service string, policy *fallback.Policy, opts ...resolver.Option) testgrpc.TestServiceClient {
	f.t.Helper()
	return f.dialFrom(f.reg, service, policy, opts...)
}

// dialFrom is dial over another view of the fleet's registry.
func (f *fleet) dialFrom(reg registry.Registry, service string, policy *fallback.Policy, opts ...resolver.Option) testgrpc.TestServiceClient {
	f.t.Helper()
	cc, err := grpc.NewClient("graylane:///"+service, append(resolver.DialOptions(reg, policy, opts...),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(prop(f.t)))),
	)...)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// chain makes every instance of service call downstream with client.
func (f *fleet) chain(service string, client testgrpc.TestServiceClient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next[service] = client
}

type result struct {
	served string // instance names along the chain, "a>b>c"
	reason string // fallback reason the first hop was reached with
	err    error
}

func call(client testgrpc.TestServiceClient, lane string, opts ...grpc.CallOption) result {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if lane != "" {
		ctx = tag.NewContext(ctx, tag.MustParse(lane))
	}
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, opts...)
	if err != nil {
		return result{err: err}
	}
	return result{served: resp.Hostname, reason: resp.Username}
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%s (%s)", r.served, r.reason)
}

// eventually calls until the result satisfies ok, or fails the test.
func eventually(t *testing.T, what string, do func() result, ok func(result) bool) result {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	var last result
	for time.Now().Before(deadline) {
		if last = do(); ok(last) { // each call is a round trip: the loop paces itself
			return last
		}
	}
	t.Fatalf("%s: last result %v", what, last)
	return last
}

func servedBy(prefix string) func(result) bool {
	return func(r result) bool { return r.err == nil && strings.HasPrefix(r.served, prefix) }
}
