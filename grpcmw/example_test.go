package grpcmw_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/tag"
)

type laneServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (laneServer) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	t, _ := tag.FromContext(ctx)
	return &testgrpc.SimpleResponse{Username: t.String()}, nil
}

// The server interceptors put the tag into the handler's context; the
// client interceptors write the tag of the call's context.
func Example() {
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor()),
	)
	testgrpc.RegisterTestServiceServer(srv, laneServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor()),
	)
	if err != nil {
		panic(err)
	}
	defer cc.Close()

	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	resp, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil {
		panic(err)
	}
	fmt.Println("the server saw", resp.Username)
	// Output: the server saw gray
}
