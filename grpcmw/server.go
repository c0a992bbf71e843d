package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// UnaryServerInterceptor returns an interceptor that puts the tag of each
// incoming unary call into the handler's context.
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	c := newConfig(opts)
	p, self := c.prop, c.self
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = incoming(ctx, p)
		if self == nil {
			return handler(ctx, req)
		}
		t, _ := tag.FromContext(ctx)
		ctx, rc := startReceipt(ctx, self, t)
		resp, err := handler(ctx, req)
		if rc != nil && rc.Expose() {
			_ = grpc.SetTrailer(ctx, receiptTrailer(rc))
		}
		return resp, err
	}
}

// StreamServerInterceptor returns an interceptor that puts the tag of each
// incoming stream into the context the handler gets from
// ServerStream.Context().
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	c := newConfig(opts)
	p, self := c.prop, c.self
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		tctx := incoming(ctx, p)
		var rc *receipt.Receipt
		if self != nil {
			t, _ := tag.FromContext(tctx)
			tctx, rc = startReceipt(tctx, self, t)
		}
		if tctx != ctx {
			ss = &serverStream{ServerStream: ss, ctx: tctx}
		}
		err := handler(srv, ss)
		if rc != nil && rc.Expose() {
			ss.SetTrailer(receiptTrailer(rc))
		}
		return err
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
