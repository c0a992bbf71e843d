package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// relay is a gRPC service that calls the next service, if any.
type relay struct {
	testgrpc.UnimplementedTestServiceServer
	next testgrpc.TestServiceClient
}

func (s relay) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s.next == nil {
		return &testgrpc.SimpleResponse{}, nil
	}
	return s.next.UnaryCall(ctx, req)
}

func startRelay(t *testing.T, reg registry.Registry, service, lane string, next testgrpc.TestServiceClient) {
	t.Helper()
	self := receipt.Self{Service: service, Instance: fmt.Sprintf("%s-%s", service, lane), Lane: lane}
	p := grpcmw.WithPropagator(mustProp(t, ""))
	srv := grpc.NewServer(grpc.UnaryInterceptor(grpcmw.UnaryServerInterceptor(p, grpcmw.WithRouteReceipt(self))))
	testgrpc.RegisterTestServiceServer(srv, relay{next: next})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	inst := registry.Instance{Service: service, Addr: lis.Addr().String(), Name: self.Instance}
	if lane != tag.Base {
		inst.Tag = tag.MustParse(lane)
	}
	_, err = reg.Register(context.Background(), inst)
	require.NoError(t, err)
}

func routedClient(t *testing.T, reg registry.Registry, service string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("graylane:///"+service, append(resolver.DialOptions(reg, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(mustProp(t, "")))))...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// TestRouteReceiptAcrossProtocols: HTTP front -> gRPC mid (has gray) ->
// gRPC back (prod only). The receipt lists every hop, the fallback reason
// the balancer attached, and who called whom.
func TestRouteReceiptAcrossProtocols(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	startRelay(t, reg, "back", "prod", nil)
	back := routedClient(t, reg, "back")
	startRelay(t, reg, "mid", "prod", back)
	startRelay(t, reg, "mid", "gray", back)
	mid := routedClient(t, reg, "mid")

	front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := mid.UnaryCall(r.Context(), &testgrpc.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}), httpmw.WithPropagator(mustProp(t, "")), httpmw.WithRouteReceipt(receipt.Self{Service: "front", Instance: "front-0", Lane: "prod"})))
	defer front.Close()
	defer http.DefaultClient.CloseIdleConnections()

	get := func() []receipt.Hop {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Header.Set("X-Traffic-Tag", "gray")
		req.Header.Set(receipt.Header, receipt.Ask)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		hops, err := receipt.Parse(resp.Header.Get(receipt.Header))
		require.NoError(t, err)
		return hops
	}
	want := []receipt.Hop{
		{Service: "front", Instance: "front-0", Lane: "prod", Tag: "gray"},
		{Service: "mid", Instance: "mid-gray", Lane: "gray", Tag: "gray", From: "front"},
		{Service: "back", Instance: "back-prod", Lane: "prod", Tag: "gray", Fallback: "noinstances", From: "mid"},
	}
	// The gray lane of mid may still be connecting on the very first call.
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, get()) }, defaultTestTimeout, time.Millisecond)
	assert.Equal(t, want, get())
}
