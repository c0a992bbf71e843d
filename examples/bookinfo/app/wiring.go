package app

// How a service is wired with graylane: everything lane-related in the demo
// is in this file. An HTTP service wraps its handler (serveHTTP) and calls
// others through a routing HTTP client (dialClients); a gRPC service is a
// grpc.Server with graylane's interceptors (newGRPCServer) and calls others
// through clients dialled with graylane's resolver and balancer
// (dialClients). The services themselves know nothing of lanes.

import (
	"context"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/routing"
)

// serveHTTP is an HTTP service's inbound side: the tag of each request goes
// into its context (header, baggage, or the instance's own lane, as prop
// says), and the request's route receipt gets this instance's hop.
func serveHTTP(h http.Handler, prop *propagation.Propagator, self receipt.Self) http.Handler {
	return httpmw.NewHandler(h, httpmw.WithPropagator(prop), httpmw.WithRouteReceipt(self))
}

// newGRPCServer is a gRPC service's inbound side: interceptors that put the
// tag of each call into its context and add this instance's hop to the
// route receipt, and the standard health service.
func newGRPCServer(prop *propagation.Propagator, self receipt.Self) *grpc.Server {
	opts := []grpcmw.Option{grpcmw.WithPropagator(prop), grpcmw.WithRouteReceipt(self)}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(opts...)),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(opts...)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	return srv
}

// dialClients builds the outbound side that every instance of this process
// shares: an HTTP client whose transport writes the context's tag on each
// request and routes logical hosts (http://details) to an instance of the
// tag's lane, falling back by the policy; and gRPC clients of reviews and
// ratings through graylane's resolver and balancer, with interceptors that
// write the tag. With NoRouting, baseline.go builds them instead.
func (s *System) dialClients() error {
	s.ratingsStore = ratings.NewStore()
	if s.cfg.NoRouting {
		return s.dialFixed()
	}
	s.router = routing.NewRouter(s.reg, nil, routing.WithDynamicPolicy(s.policy))
	s.detailsClient = &http.Client{Transport: httpmw.NewTransport(s.httpTransport(&http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}), httpmw.WithPropagator(s.prop), httpmw.WithRouting(s.router))}
	var err error
	if s.reviewsConn, err = s.dialGRPC("graylane:///reviews", resolver.DialOptions(s.reg, nil,
		resolver.WithDynamicPolicy(s.policy), resolver.WithHealthCheck(""))...); err != nil {
		return err
	}
	s.ratingsConn, err = s.dialGRPC("graylane:///ratings", resolver.DialOptions(s.reg, nil,
		resolver.WithDynamicPolicy(s.policy), resolver.WithHealthCheck(""))...)
	return err
}

// dialGRPC dials target with graylane's client interceptors, which write
// the context's tag on every call.
func (s *System) dialGRPC(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	mw := []grpcmw.Option{grpcmw.WithPropagator(s.prop)}
	if s.cfg.NoRouting {
		mw = append(mw, grpcmw.WithReceiptTargets(target)) // the demo's own instance
	}
	if dial := s.cfg.Dial; dial != nil {
		opts = append(opts, grpc.WithContextDialer(dial))
	}
	return grpc.NewClient(target, append(opts,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(mw...)),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor(mw...)),
	)...)
}

// httpTransport sets t's dialer to Config.Dial, if any.
func (s *System) httpTransport(t *http.Transport) *http.Transport {
	if dial := s.cfg.Dial; dial != nil {
		t.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) }
	}
	return t
}

// upstreams are productpage's clients.
func (s *System) upstreams() productpage.Upstreams {
	return productpage.Upstreams{
		DetailsURL:    s.detailsURL(),
		DetailsClient: s.detailsClient,
		Reviews:       bookinfopb.NewReviewsClient(s.reviewsConn),
		Ratings:       bookinfopb.NewRatingsClient(s.ratingsConn),
	}
}
