package app

// How a service is wired with graylane: everything lane-related in the demo
// is in this file. An HTTP service wraps its handler (serveHTTP) and calls
// others through a routing HTTP client (dialClients); a gRPC service is a
// grpc.Server with graylane's interceptors (newGRPCServer) and calls others
// through clients dialled with graylane's resolver and balancer
// (dialClients). The services themselves know nothing of lanes.
//
// Every piece reports to the process's MeterProvider (Telemetry). With
// tracing on, otelhttp and otelgrpc wrap every hop, outside graylane's
// middleware: graylane sets its decision (service, tag, lane, reason) on
// the client span of each routed call, and laneSpan sets the tag the
// request carries and the lane of the instance on each server span.

import (
	"context"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// newPropagator reads and writes the tag, counting rejected values on the
// process's MeterProvider; own is the lane of an instance, "" for none.
func (s *System) newPropagator(own string) (*propagation.Propagator, error) {
	return propagation.New(propagation.WithOwnTag(own), propagation.WithMeterProvider(s.tel.MeterProvider()))
}

// serveHTTP is an HTTP service's inbound side: the tag of each request goes
// into its context (header, baggage, or the instance's own lane, as prop
// says), and the request's route receipt gets this instance's hop.
func (s *System) serveHTTP(h http.Handler, prop *propagation.Propagator, self receipt.Self) http.Handler {
	if s.tracing() {
		h = laneSpan(h, self)
	}
	h = httpmw.NewHandler(h, httpmw.WithPropagator(prop), httpmw.WithRouteReceipt(self))
	return s.traceHTTP(h, self.Service)
}

// newGRPCServer is a gRPC service's inbound side: interceptors that put the
// tag of each call into its context and add this instance's hop to the
// route receipt, the standard health service, and reflection, so that
// grpcurl can list and call the services.
func (s *System) newGRPCServer(prop *propagation.Propagator, self receipt.Self) *grpc.Server {
	opts := []grpcmw.Option{grpcmw.WithPropagator(prop), grpcmw.WithRouteReceipt(self)}
	unary := []grpc.UnaryServerInterceptor{grpcmw.UnaryServerInterceptor(opts...)}
	var sopts []grpc.ServerOption
	if s.tracing() {
		sopts = append(sopts, grpc.StatsHandler(otelgrpc.NewServerHandler(s.otelgrpcOptions()...)))
		unary = append(unary, laneSpanUnary(self))
	}
	srv := grpc.NewServer(append(sopts,
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(grpcmw.StreamServerInterceptor(opts...)),
	)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
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
	mp := s.tel.MeterProvider()
	s.router = routing.NewRouter(s.reg, nil, routing.WithDynamicPolicy(s.policy), routing.WithMeterProvider(mp))
	s.detailsClient = &http.Client{Transport: s.traceTransport(httpmw.NewTransport(s.httpTransport(&http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}), httpmw.WithPropagator(s.prop), httpmw.WithRouting(s.router)))}
	var err error
	if s.reviewsConn, err = s.dialGRPC("graylane:///reviews", resolver.DialOptions(s.reg, nil,
		resolver.WithDynamicPolicy(s.policy), resolver.WithHealthCheck(""), resolver.WithMeterProvider(mp))...); err != nil {
		return err
	}
	s.ratingsConn, err = s.dialGRPC("graylane:///ratings", resolver.DialOptions(s.reg, nil,
		resolver.WithDynamicPolicy(s.policy), resolver.WithHealthCheck(""), resolver.WithMeterProvider(mp))...)
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
	opts = append(opts,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor(mw...)),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor(mw...)),
	)
	if s.tracing() {
		// The client span is in the context the balancer picks with: the
		// graylane_tag balancer sets its decision on it.
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(s.otelgrpcOptions()...)))
	}
	return grpc.NewClient(target, opts...)
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

// tracing reports whether spans are exported. Without, nothing wraps the
// hops: the request path is the same as with no telemetry at all.
func (s *System) tracing() bool { return s.tel.sdkTP != nil }

// traceHTTP makes a server span of each request to h, continuing the trace
// of the caller.
func (s *System) traceHTTP(h http.Handler, service string) http.Handler {
	if !s.tracing() {
		return h
	}
	return otelhttp.NewHandler(h, service, append(s.otelhttpOptions(),
		otelhttp.WithSpanNameFormatter(func(op string, r *http.Request) string { return op + " " + r.Method + " " + r.URL.Path }))...)
}

// traceTransport makes a client span of each request through rt, and
// sends the trace context on.
func (s *System) traceTransport(rt http.RoundTripper) http.RoundTripper {
	if !s.tracing() {
		return rt
	}
	return otelhttp.NewTransport(rt, append(s.otelhttpOptions(),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host + r.URL.Path }))...)
}

func (s *System) otelhttpOptions() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(s.tel.TracerProvider()),
		otelhttp.WithPropagators(s.tel.Propagator()),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

func (s *System) otelgrpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(s.tel.TracerProvider()),
		otelgrpc.WithPropagators(s.tel.Propagator()),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

// laneSpan sets, on the server span of each request, the tag the request
// carries (as graylane read it: header, baggage or the instance's own
// lane) and the lane of the instance that serves it.
func laneSpan(h http.Handler, self receipt.Self) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setLaneSpan(r.Context(), self)
		h.ServeHTTP(w, r)
	})
}

func laneSpanUnary(self receipt.Self) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		setLaneSpan(ctx, self)
		return handler(ctx, req)
	}
}

// attrInstance is the instance that served a request, on its server span.
const attrInstance = attribute.Key("graylane.instance")

func setLaneSpan(ctx context.Context, self receipt.Self) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		t, _ := tag.FromContext(ctx)
		span.SetAttributes(routing.AttrService.String(self.Service), routing.AttrTag.String(t.String()),
			routing.AttrLane.String(self.Lane), attrInstance.String(self.Instance))
	}
}
