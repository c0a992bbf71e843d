package grpcmw

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// WithRouteReceipt turns route receipts on in the server interceptors (see
// package receipt): a call whose metadata asks for one gets this server's
// hop, and those of the services it calls through graylane's clients, in
// the trailer x-graylane-route (self.Header names another); with
// self.Always, every call keeps a Receipt the handler can read. The client
// interceptors need nothing: they ask the next service, on the Receipt's
// header, whenever the call's context holds a Receipt.
//
// The interceptors panic if self.Header is not a valid metadata key
// (receipt.CheckHeader).
func WithRouteReceipt(self receipt.Self) Option {
	return optionFunc(func(c *config) { c.self = &self })
}

// startReceipt returns ctx with a Receipt when this server records receipts
// and the call asks for one (or Always).
func startReceipt(ctx context.Context, self *receipt.Self, t tag.Tag) (context.Context, *receipt.Receipt) {
	if self == nil {
		return ctx, nil
	}
	asked := metadata.ValueFromIncomingContext(ctx, self.HeaderName())
	if len(asked) == 0 && !self.Always {
		return ctx, nil
	}
	from := ""
	if len(asked) > 0 {
		from = receipt.Caller(asked[0])
	}
	reason := ""
	if v := metadata.ValueFromIncomingContext(ctx, fallback.Header); len(v) == 1 {
		if r, ok := fallback.ParseHeader(v[0]); ok {
			reason = r.String()
		}
	}
	rc := self.Receipt(self.Hop(t.String(), reason, from), len(asked) > 0)
	return receipt.NewContext(ctx, rc), rc
}

func receiptTrailer(rc *receipt.Receipt) metadata.MD {
	return metadata.Pairs(rc.Header(), rc.String())
}

// collect adds the hops a trailer reports, and says whether there were
// any.
func collect(rc *receipt.Receipt, md metadata.MD) bool {
	found := false
	for _, v := range md.Get(rc.Header()) {
		hops, _ := receipt.Parse(v)
		rc.Add(hops...)
		found = found || len(hops) > 0
	}
	return found
}

// receiptStream reads the receipt from the trailer when the stream ends.
type receiptStream struct {
	grpc.ClientStream
	rc   *receipt.Receipt
	once sync.Once
}

func (s *receiptStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.once.Do(func() { collect(s.rc, s.ClientStream.Trailer()) })
	}
	return err
}
