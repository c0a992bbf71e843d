package grpcmw_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const defaultTestTimeout = 10 * time.Second

// echoServer answers every call with the tag found in its context ("-"
// when none) and the outgoing-side metadata it saw.
type echoServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func tagOf(ctx context.Context) string {
	if t, ok := tag.FromContext(ctx); ok {
		return t.String()
	}
	return "-"
}

func (echoServer) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return &testgrpc.SimpleResponse{Username: tagOf(ctx), OauthScope: joinMD(md)}, nil
}

func (echoServer) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for range 2 {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(tagOf(ss.Context()))}}); err != nil {
			return err
		}
	}
	return nil
}

func (echoServer) FullDuplexCall(ss grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		if _, err := ss.Recv(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(tagOf(ss.Context()))}}); err != nil {
			return err
		}
	}
}

// joinMD renders the values of the tag key and of "x-other", so that a test
// can see duplicates and lost keys.
func joinMD(md metadata.MD) string {
	out := ""
	for _, k := range []string{"x-traffic-tag", "x-other", "baggage", "x-mse-tag"} {
		out += k + "=" + join(md.Get(k)) + ";"
	}
	return out
}

func join(v []string) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += "|"
		}
		s += x
	}
	return s
}

func newProp(t testing.TB, opts ...propagation.Option) *propagation.Propagator {
	t.Helper()
	p, err := propagation.New(append([]propagation.Option{propagation.WithOwnTag("")}, opts...)...)
	require.NoError(t, err)
	return p
}

// serve starts a gRPC server on loopback with the graylane interceptors.
func serve(t testing.TB, p *propagation.Propagator) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcmw.UnaryServerInterceptor(grpcmw.WithPropagator(p))),
		grpc.StreamInterceptor(grpcmw.StreamServerInterceptor(grpcmw.WithPropagator(p))),
	)
	testgrpc.RegisterTestServiceServer(srv, echoServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t testing.TB, addr string, p *propagation.Propagator) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(p))),
		grpc.WithStreamInterceptor(grpcmw.StreamClientInterceptor(grpcmw.WithPropagator(p))),
	)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func TestServerInterceptorsSources(t *testing.T) {
	addr := serve(t, newProp(t))
	ownAddr := serve(t, newProp(t, propagation.WithOwnTag("gray")))
	plain := dialPlain(t, addr)
	own := dialPlain(t, ownAddr)

	tests := []struct {
		name   string
		client testgrpc.TestServiceClient
		md     metadata.MD
		want   string
	}{
		{"untagged", plain, nil, "-"},
		{"metadata", plain, metadata.Pairs("x-traffic-tag", "gray"), "gray"},
		{"baggage", plain, metadata.Pairs("baggage", "a=1,traffic-tag=v3"), "v3"},
		{"invalid", plain, metadata.Pairs("x-traffic-tag", "g r a y"), "-"},
		{"ambiguous", plain, metadata.Pairs("x-traffic-tag", "gray", "x-traffic-tag", "v3"), "-"},
		{"own tag", own, nil, "gray"},
		{"request beats own", own, metadata.Pairs("x-traffic-tag", "v3"), "v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			if tt.md != nil {
				ctx = metadata.NewOutgoingContext(ctx, tt.md)
			}
			resp, err := tt.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, resp.Username, "unary")

			stream, err := tt.client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
			require.NoError(t, err)
			for range 2 {
				m, err := stream.Recv()
				require.NoError(t, err)
				assert.Equal(t, tt.want, string(m.Payload.Body), "server stream")
			}
			_, err = stream.Recv()
			assert.Equal(t, io.EOF, err)
		})
	}
}

func dialPlain(t testing.TB, addr string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// TestClientMetadata pins the client side: never a duplicate key, a
// different value replaced, other metadata kept, nothing written without a
// tag.
func TestClientMetadata(t *testing.T) {
	addr := serve(t, newProp(t))
	client := dial(t, addr, newProp(t))
	bagClient := dial(t, addr, newProp(t, propagation.WithBaggageInjection()))
	mseClient := dial(t, addr, newProp(t, propagation.WithWriteDialects(propagation.DialectMSE)))
	gray := tag.MustParse("gray")

	tests := []struct {
		name   string
		client testgrpc.TestServiceClient
		tag    tag.Tag
		setup  func(context.Context) context.Context
		want   string
	}{
		{"no tag, nothing written", client, tag.Tag{}, nil, "x-traffic-tag=;x-other=;baggage=;x-mse-tag=;"},
		{"added", client, gray, nil, "x-traffic-tag=gray;x-other=;baggage=;x-mse-tag=;"},
		{"same value not appended", client, gray, func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "x-traffic-tag", "gray", "x-other", "1")
		}, "x-traffic-tag=gray;x-other=1;baggage=;x-mse-tag=;"},
		{"same value in md not appended", client, gray, func(ctx context.Context) context.Context {
			return metadata.NewOutgoingContext(ctx, metadata.Pairs("x-traffic-tag", "gray", "x-other", "1"))
		}, "x-traffic-tag=gray;x-other=1;baggage=;x-mse-tag=;"},
		{"different value replaced", client, gray, func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "x-other", "1", "X-Traffic-Tag", "v3")
		}, "x-traffic-tag=gray;x-other=1;baggage=;x-mse-tag=;"},
		{"two values replaced by one", client, gray, func(ctx context.Context) context.Context {
			ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs("x-traffic-tag", "gray", "x-other", "1"))
			return metadata.AppendToOutgoingContext(ctx, "x-traffic-tag", "v3", "x-other", "2")
		}, "x-traffic-tag=gray;x-other=1|2;baggage=;x-mse-tag=;"},
		{"other keys kept", client, gray, func(ctx context.Context) context.Context {
			return metadata.NewOutgoingContext(ctx, metadata.Pairs("x-other", "1"))
		}, "x-traffic-tag=gray;x-other=1;baggage=;x-mse-tag=;"},
		{"baggage member added, others kept", bagClient, gray, func(ctx context.Context) context.Context {
			return metadata.NewOutgoingContext(ctx, metadata.Pairs("baggage", "user=alice", "x-other", "1"))
		}, "x-traffic-tag=gray;x-other=1;baggage=user=alice,traffic-tag=gray;x-mse-tag=;"},
		{"baggage member replaced", bagClient, gray, func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "baggage", "traffic-tag=v3,user=alice", "x-traffic-tag", "gray")
		}, "x-traffic-tag=gray;x-other=;baggage=traffic-tag=gray,user=alice;x-mse-tag=;"},
		{"write dialect too", mseClient, gray, nil, "x-traffic-tag=gray;x-other=;baggage=;x-mse-tag=gray;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			if tt.setup != nil {
				ctx = tt.setup(ctx)
			}
			ctx = tag.NewContext(ctx, tt.tag)
			before, _ := metadata.FromOutgoingContext(ctx)
			resp, err := tt.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, resp.OauthScope)
			after, _ := metadata.FromOutgoingContext(ctx)
			assert.Equal(t, before, after, "the caller's context is not modified")
		})
	}
}

func TestBidiStreamCarriesTag(t *testing.T) {
	client := dial(t, serve(t, newProp(t)), newProp(t))
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	stream, err := client.FullDuplexCall(tag.NewContext(ctx, tag.MustParse("v3")))
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, stream.Send(&testgrpc.StreamingOutputCallRequest{}))
		m, err := stream.Recv()
		require.NoError(t, err)
		assert.Equal(t, "v3", string(m.Payload.Body))
	}
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	assert.Equal(t, io.EOF, err)
}

func TestInvalidEnvPanicsAtConstruction(t *testing.T) {
	t.Setenv(propagation.OwnTagEnv, "-bad")
	assert.Panics(t, func() { grpcmw.UnaryServerInterceptor() })
	assert.Panics(t, func() { grpcmw.StreamClientInterceptor() })
}
