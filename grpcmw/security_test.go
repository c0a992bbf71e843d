package grpcmw_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/receipt"
)

// receiptServer answers every call with a trailer holding many route
// receipts, each at the parser's limits.
type receiptServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (receiptServer) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	huge := strings.Repeat("svc=down;inst=x;lane=prod, ", 300)
	md := metadata.MD{}
	for range 20 {
		md.Append(receipt.Header, huge)
	}
	if err := grpc.SetTrailer(ctx, md); err != nil {
		return nil, err
	}
	from := ""
	if rc := receipt.FromContext(ctx); rc != nil {
		from = rc.Owner().From + "|" + rc.Owner().Fallback
	}
	return &testgrpc.SimpleResponse{Hostname: from}, nil
}

// TestReceiptTrailerIsBounded: a downstream that answers with many huge
// receipt trailers cannot grow the caller's receipt past receipt.MaxHops;
// the server records a forged caller name or fallback reason as nothing.
func TestReceiptTrailerIsBounded(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(
		grpcmw.WithPropagator(newProp(t)),
		grpcmw.WithRouteReceipt(receipt.Self{Service: "down", Instance: "down-0", Lane: "prod"}))))
	testgrpc.RegisterTestServiceServer(srv, receiptServer{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(newProp(t)),
			grpcmw.WithReceiptTargets(lis.Addr().String()))))
	require.NoError(t, err)
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	rc := receipt.New(receipt.Hop{Service: "front"}, true)
	for range 5 {
		_, err := client.UnaryCall(receipt.NewContext(ctx, rc), &testgrpc.SimpleRequest{})
		require.NoError(t, err)
	}
	assert.Len(t, rc.Hops(), receipt.MaxHops)
	assert.Equal(t, "front", rc.Owner().Service)

	// A client that asks by hand, with forged values.
	for _, forged := range []metadata.MD{
		metadata.Pairs(receipt.Header, "<script>", "x-graylane-fallback", "pwned"),
		metadata.Pairs(receipt.Header, "1", "x-graylane-fallback", "noinstances", "x-graylane-fallback", "unavailable"),
		metadata.Pairs(receipt.Header, strings.Repeat("a", 1000), "x-graylane-fallback", "matched"),
	} {
		resp, err := client.UnaryCall(metadata.NewOutgoingContext(ctx, forged), &testgrpc.SimpleRequest{})
		require.NoError(t, err)
		assert.Equal(t, "|", resp.Hostname, "%v", forged)
	}
}

// TestReceiptsNotAskedOfUnroutedTargets: a channel that graylane does not
// route, and that WithReceiptTargets does not name, is neither asked for a
// receipt nor believed when it sends one.
func TestReceiptsNotAskedOfUnroutedTargets(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	asked := make(chan bool, 10)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		asked <- len(metadata.ValueFromIncomingContext(ctx, receipt.Header)) > 0
		return h(ctx, req)
	}))
	testgrpc.RegisterTestServiceServer(srv, receiptServer{}) // answers with forged hops
	go srv.Serve(lis)
	defer srv.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(newProp(t)))),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor(grpcmw.WithPropagator(newProp(t)))))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	rc := receipt.New(receipt.Hop{Service: "front"}, true)
	_, err = testgrpc.NewTestServiceClient(cc).UnaryCall(receipt.NewContext(ctx, rc), &testgrpc.SimpleRequest{})
	require.NoError(t, err)
	assert.False(t, <-asked, "the server was asked for a receipt")
	assert.Len(t, rc.Hops(), 1, "hops from an unrouted server were believed: %v", rc.Hops())
}
