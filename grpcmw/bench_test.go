package grpcmw_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/tag"
)

type minimalKey struct{}

var sink any

// BenchmarkServerInterceptor measures the unary server interceptor against
// a minimal hand-written one (impl=minimal): one metadata lookup and a
// context.WithValue.
func BenchmarkServerInterceptor(b *testing.B) {
	gl := grpcmw.UnaryServerInterceptor(grpcmw.WithPropagator(newProp(b)))
	minimal := grpc.UnaryServerInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if v := metadata.ValueFromIncomingContext(ctx, "x-traffic-tag"); len(v) > 0 {
			ctx = context.WithValue(ctx, minimalKey{}, v[0])
		}
		return h(ctx, req)
	})
	handler := func(ctx context.Context, _ any) (any, error) { sink = ctx; return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/svc/Method"}
	for _, c := range []struct {
		name string
		md   metadata.MD
	}{
		{"tag=yes", metadata.Pairs("x-traffic-tag", "gray", "user-agent", "grpc-go", "content-type", "application/grpc")},
		{"tag=no", metadata.Pairs("user-agent", "grpc-go", "content-type", "application/grpc")},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), c.md)
		for name, ic := range map[string]grpc.UnaryServerInterceptor{"graylane": gl, "minimal": minimal} {
			b.Run(c.name+"/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_, _ = ic(ctx, nil, info, handler)
				}
			})
		}
	}
}

// BenchmarkClientInterceptor measures the unary client interceptor against
// a minimal hand-written one (impl=minimal) that appends the key blindly.
func BenchmarkClientInterceptor(b *testing.B) {
	gl := grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(newProp(b)))
	minimal := grpc.UnaryClientInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if t, ok := tag.FromContext(ctx); ok {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-traffic-tag", t.String())
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		sink = ctx
		return nil
	}
	gray := tag.NewContext(context.Background(), tag.MustParse("gray"))
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"tag=yes", gray},
		{"tag=yes-with-md", metadata.AppendToOutgoingContext(gray, "x-request-id", "abc")},
		{"tag=already", metadata.AppendToOutgoingContext(gray, "x-traffic-tag", "gray")},
		{"tag=no", context.Background()},
	} {
		for name, ic := range map[string]grpc.UnaryClientInterceptor{"graylane": gl, "minimal": minimal} {
			b.Run(c.name+"/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = ic(c.ctx, "/svc/Method", nil, nil, nil, invoker)
				}
			})
		}
	}
}
