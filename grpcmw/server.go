package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// UnaryServerInterceptor returns an interceptor that puts the tag of each
// incoming unary call into the handler's context.
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	p := newConfig(opts).prop
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(incoming(ctx, p), req)
	}
}

// StreamServerInterceptor returns an interceptor that puts the tag of each
// incoming stream into the context the handler gets from
// ServerStream.Context().
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	p := newConfig(opts).prop
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if tctx := incoming(ctx, p); tctx != ctx {
			ss = &serverStream{ServerStream: ss, ctx: tctx}
		}
		return handler(srv, ss)
	}
}

// incoming returns ctx with the tag of the incoming metadata, or ctx itself
// when there is none.
func incoming(ctx context.Context, p *propagation.Propagator) context.Context {
	t, _ := p.ReadMetadata(ctx, func(key string) []string {
		return metadata.ValueFromIncomingContext(ctx, key)
	})
	if t.IsZero() {
		return ctx
	}
	return tag.NewContext(ctx, t)
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
