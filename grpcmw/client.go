package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// UnaryClientInterceptor returns an interceptor that writes the tag of each
// call's context into its outgoing metadata.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	p := newConfig(opts).prop
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		rc := receipt.FromContext(ctx)
		if rc == nil {
			return invoker(outgoing(ctx, p), method, req, reply, cc, callOpts...)
		}
		var trailer metadata.MD
		ctx = metadata.AppendToOutgoingContext(outgoing(ctx, p), receipt.Header, rc.Owner().Service)
		err := invoker(ctx, method, req, reply, cc, append(callOpts, grpc.Trailer(&trailer))...)
		collect(rc, trailer)
		return err
	}
}

// StreamClientInterceptor returns an interceptor that writes the tag of each
// stream's context into its outgoing metadata.
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	p := newConfig(opts).prop
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		rc := receipt.FromContext(ctx)
		if rc == nil {
			return streamer(outgoing(ctx, p), desc, cc, method, callOpts...)
		}
		ctx = metadata.AppendToOutgoingContext(outgoing(ctx, p), receipt.Header, rc.Owner().Service)
		cs, err := streamer(ctx, desc, cc, method, callOpts...)
		if err != nil {
			return cs, err
		}
		return &receiptStream{ClientStream: cs, rc: rc}, nil
	}
}

// outgoing returns ctx with its outgoing metadata carrying the tag of ctx.
// Metadata that already carries it is left alone; a missing key is
// appended (which copies nothing); anything else is rewritten on a copy of
// the metadata, every other key kept.
func outgoing(ctx context.Context, p *propagation.Propagator) context.Context {
	t, ok := tag.FromContext(ctx)
	if !ok {
		return ctx
	}
	values := func(key string) []string { return metadata.ValueFromOutgoingContext(ctx, key) }
	if p.MetadataCarries(values, t) {
		return ctx
	}
	if !p.InjectsBaggage() && len(values(p.Header())) == 0 {
		return metadata.AppendToOutgoingContext(ctx, p.Header(), t.String())
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if md == nil {
		md = metadata.MD{}
	}
	p.InjectMetadata(md, t)
	return metadata.NewOutgoingContext(ctx, md)
}
