package e2e

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/internal/leakcheck"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// streamer is one instance of a gRPC service: UnaryCall answers with its
// name and the fallback reason it was reached with; StreamingOutputCall
// sends the same, every few milliseconds, until the client goes away.
type streamer struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	srv  *grpc.Server
	addr string
}

func reasonOf(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, fallback.Header); len(v) == 1 {
		return v[0]
	}
	return ""
}

func (s *streamer) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Hostname: s.name, Username: reasonOf(ctx)}, nil
}

func (s *streamer) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	body := []byte(s.name + "/" + reasonOf(ss.Context()))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			return err
		}
		select {
		case <-ss.Context().Done():
			return ss.Context().Err()
		case <-tick.C:
		}
	}
}

// startStreamer runs an instance of service "svc" in lane ("" for the base
// lane) on loopback and registers it.
func startStreamer(t *testing.T, reg registry.Registry, name, lane string) *streamer {
	t.Helper()
	p := grpcmw.WithPropagator(mustProp(t, lane))
	s := &streamer{name: name, srv: grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(p)),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(p)),
	)}
	testgrpc.RegisterTestServiceServer(s.srv, s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = lis.Addr().String()
	go s.srv.Serve(lis)
	inst := registry.Instance{Service: "svc", Addr: s.addr, Name: name}
	if lane != "" {
		inst.Tag = tag.MustParse(lane)
	}
	_, err = reg.Register(context.Background(), inst)
	require.NoError(t, err)
	return s
}

// unaryOutcome is one unary call of the background load.
type unaryOutcome struct {
	start, end time.Time
	served     string
	reason     string
	err        error
}

// TestFaultInstanceCrashMidStream crashes the only gray instance of a
// service (grpc.Server.Stop, no deregistration) while gray server-streaming
// calls are in flight to it and gray unary calls run in a loop. The streams
// to it fail with Unavailable; an untagged stream to prod carries on; the
// next gray calls fall back to prod with the reason "unavailable" at once
// and none fails; of the unary load, only calls sent before the client saw
// the connection drop may fail; no goroutine and no heap is left behind.
func TestFaultInstanceCrashMidStream(t *testing.T) {
	// The instances, the client and their buffers are gone after the
	// test. What may stay is global state built on first use (gRPC's and
	// protobuf's registries, the routing counters every balancer of the
	// process shares): measured, under 200 KiB when the test runs first in
	// its process, under 10 KiB on later runs. The test makes about a
	// thousand calls: keeping 512 bytes of each would exceed 512 KiB.
	const heapSlack = 512 << 10
	base := leakcheck.Take()
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reg := registry.NewMemory()
		defer reg.Close()
		prod := startStreamer(t, reg, "svc-prod-0", "")
		defer prod.srv.Stop()
		gray := startStreamer(t, reg, "svc-gray-0", "gray")
		defer gray.srv.Stop()

		p := mustProp(t, "")
		cc, err := grpc.NewClient("graylane:///svc", append(resolver.DialOptions(reg, nil),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(p))),
			grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor(grpcmw.WithPropagator(p))))...)
		require.NoError(t, err)
		defer cc.Close()
		client := testgrpc.NewTestServiceClient(cc)
		grayCtx := tag.NewContext(ctx, tag.MustParse("gray"))

		unary := func(ctx context.Context) unaryOutcome {
			o := unaryOutcome{start: time.Now()}
			resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			o.end, o.err = time.Now(), err
			if err == nil {
				o.served, o.reason = resp.Hostname, resp.Username
			}
			return o
		}
		for o := unary(grayCtx); o.served != "svc-gray-0"; o = unary(grayCtx) {
			require.NoError(t, ctx.Err(), "the gray lane never served: %v", o.err)
		}

		// Streams in flight: three gray ones, one untagged.
		open := func(ctx context.Context) grpc.ServerStreamingClient[testgrpc.StreamingOutputCallResponse] {
			s, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
			require.NoError(t, err)
			return s
		}
		first := func(s grpc.ServerStreamingClient[testgrpc.StreamingOutputCallResponse]) string {
			m, err := s.Recv()
			require.NoError(t, err)
			return string(m.GetPayload().GetBody())
		}
		streamCtx, stopStreams := context.WithCancel(ctx)
		defer stopStreams()
		const grayStreams = 3
		var grays []grpc.ServerStreamingClient[testgrpc.StreamingOutputCallResponse]
		for range grayStreams {
			s := open(tag.NewContext(streamCtx, tag.MustParse("gray")))
			require.Equal(t, "svc-gray-0/", first(s))
			grays = append(grays, s)
		}
		untagged := open(streamCtx)
		require.Equal(t, "svc-prod-0/", first(untagged))

		// Gray unary load from two goroutines, before, during and after the
		// crash.
		var (
			loadMu   sync.Mutex
			outcomes []unaryOutcome
			loadWG   sync.WaitGroup
		)
		loadCtx, stopLoad := context.WithCancel(grayCtx)
		defer stopLoad()
		started := make(chan struct{})
		var startOnce sync.Once
		for range 2 {
			loadWG.Add(1)
			go func() {
				defer loadWG.Done()
				for loadCtx.Err() == nil {
					o := unary(loadCtx)
					if loadCtx.Err() != nil {
						return // cut by the end of the load, not by the fault
					}
					loadMu.Lock()
					outcomes = append(outcomes, o)
					if len(outcomes) >= 100 {
						startOnce.Do(func() { close(started) })
					}
					loadMu.Unlock()
				}
			}()
		}
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("the load did not start")
		}

		crashed := time.Now()
		gray.srv.Stop() // the crash: connections cut, listener closed, still registered

		type streamEnd struct {
			at   time.Time
			code codes.Code
			msgs int
		}
		ends := make(chan streamEnd, grayStreams)
		for _, s := range grays {
			go func() {
				n := 0
				for {
					if _, err := s.Recv(); err != nil {
						ends <- streamEnd{at: time.Now(), code: status.Code(err), msgs: n}
						return
					}
					n++
				}
			}()
		}
		var lastStreamEnd time.Time
		failedStreams := 0
		for range grayStreams {
			select {
			case e := <-ends:
				failedStreams++
				assert.Equal(t, codes.Unavailable, e.code, "a stream cut by the crash fails with Unavailable")
				if e.at.After(lastStreamEnd) {
					lastStreamEnd = e.at
				}
			case <-ctx.Done():
				t.Fatal("a gray stream outlived the crash")
			}
		}

		// The next gray calls: prod, "unavailable", none failing.
		o := unary(grayCtx)
		require.NoError(t, o.err, "the first gray call after the failed streams")
		firstFallback := o.end.Sub(lastStreamEnd)
		assert.Equal(t, "svc-prod-0", o.served)
		assert.Equal(t, "unavailable", o.reason, "the gray instance is registered but down")
		const after = 300
		failedAfter := 0
		for range after {
			o := unary(grayCtx)
			if o.err != nil {
				failedAfter++
				continue
			}
			assert.Equal(t, "svc-prod-0/unavailable", o.served+"/"+o.reason)
		}
		s := open(tag.NewContext(streamCtx, tag.MustParse("gray")))
		assert.Equal(t, "svc-prod-0/unavailable", first(s), "a new gray stream falls back too")

		// The untagged stream to prod never noticed.
		for range 3 {
			m, err := untagged.Recv()
			require.NoError(t, err, "the untagged stream to prod survives the crash of gray")
			assert.Equal(t, "svc-prod-0/", string(m.GetPayload().GetBody()))
		}
		stopStreams()
		stopLoad()
		loadWG.Wait()

		// A call is exposed to the crash when it ends after it and starts
		// before the client has seen the connection drop (the streams on
		// that connection failing): such a call may already be on the
		// dead connection. Only exposed calls may fail.
		var inFlight, exposed, failedLoad, failedUnexposed, failedLate, fellBack int
		for _, o := range outcomes {
			if o.start.Before(crashed) && o.end.After(crashed) {
				inFlight++
			}
			isExposed := o.start.Before(lastStreamEnd) && o.end.After(crashed)
			if isExposed {
				exposed++
			}
			switch {
			case o.err != nil:
				failedLoad++
				if !isExposed {
					failedUnexposed++
				}
				if o.start.After(lastStreamEnd) {
					failedLate++
				}
			case o.start.After(lastStreamEnd):
				assert.Equal(t, "svc-prod-0/unavailable", o.served+"/"+o.reason)
				fellBack++
			}
		}
		t.Logf("crash: %d of %d gray streams failed, the last %v after the crash; first gray call after them fell back in %v",
			failedStreams, grayStreams, lastStreamEnd.Sub(crashed).Round(time.Microsecond), firstFallback.Round(time.Microsecond))
		t.Logf("unary gray load: %d calls, %d in flight at the crash, %d exposed to it, %d failed (%d after the streams failed), %d fell back; then %d sequential gray calls, %d failed",
			len(outcomes), inFlight, exposed, failedLoad, failedLate, fellBack, after, failedAfter)
		assert.Equal(t, grayStreams, failedStreams)
		assert.Zero(t, failedAfter, "gray calls after the crash was noticed")
		assert.Zero(t, failedUnexposed, "only calls exposed to the crash may fail")
		assert.Less(t, firstFallback, time.Second, "gray falls back at once")
	}()
	leakcheck.Check(t, base, heapSlack)
}
