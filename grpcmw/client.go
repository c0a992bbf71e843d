package grpcmw

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// UnaryClientInterceptor returns an interceptor that writes the tag of each
// call's context into its outgoing metadata. When the context holds a route
// receipt and the channel is routed by graylane (or named by
// WithReceiptTargets), it asks the server for its hops and adds them.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	c := newConfig(opts)
	p := c.prop
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		rc := receipt.FromContext(ctx)
		if rc == nil || !c.asksReceipt(cc) {
			return invoker(outgoing(ctx, p), method, req, reply, cc, callOpts...)
		}
		var trailer metadata.MD
		ctx = metadata.AppendToOutgoingContext(outgoing(ctx, p), rc.Header(), rc.Owner().Service)
		err := invoker(ctx, method, req, reply, cc, append(callOpts, grpc.Trailer(&trailer))...)
		if !collect(rc, trailer) && err != nil {
			t, _ := tag.FromContext(ctx)
			rc.Add(rc.Failed(targetService(cc), t.String(), errors.New(status.Convert(err).Message())))
		}
		return err
	}
}

// StreamClientInterceptor returns an interceptor that writes the tag of each
// stream's context into its outgoing metadata.
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	c := newConfig(opts)
	p := c.prop
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		rc := receipt.FromContext(ctx)
		if rc == nil || !c.asksReceipt(cc) {
			return streamer(outgoing(ctx, p), desc, cc, method, callOpts...)
		}
		ctx = metadata.AppendToOutgoingContext(outgoing(ctx, p), rc.Header(), rc.Owner().Service)
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
	if p.WritesOnlyHeader() && len(values(p.Header())) == 0 {
		return metadata.AppendToOutgoingContext(ctx, p.Header(), t.String())
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if md == nil {
		md = metadata.MD{}
	}
	p.InjectMetadata(md, t)
	return metadata.NewOutgoingContext(ctx, md)
}

// targetService names the service a client connection calls, for route
// receipts: the last path element of its target ("reviews" for
// "graylane:///reviews"), or the whole target.
func targetService(cc *grpc.ClientConn) string {
	if cc == nil {
		return ""
	}
	t := cc.Target()
	if i := strings.LastIndexByte(t, '/'); i >= 0 && i < len(t)-1 {
		return t[i+1:]
	}
	return t
}
