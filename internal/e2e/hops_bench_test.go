package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// The hop benchmarks: what graylane costs one request across real servers
// on loopback, beside no middleware and beside OpenTelemetry's otelhttp and
// otelgrpc, the ecosystem's reference for per-request instrumentation. They
// live here, with the end-to-end tests, so that the library's module does
// not depend on those instrumentations.

func benchProp(b *testing.B) *propagation.Propagator {
	b.Helper()
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

type benchEcho struct {
	testgrpc.UnimplementedTestServiceServer
}

func (benchEcho) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{}, nil
}

// BenchmarkTwoHops measures a request through two HTTP servers on loopback
// (client -> A -> B), with graylane's middleware and transport on both
// sides (impl=graylane), without (impl=plain), and with OpenTelemetry's
// otelhttp handler and transport and a sampling tracer (impl=otel), the
// ecosystem's reference for per-request instrumentation.
func BenchmarkTwoHops(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	for _, impl := range []string{"graylane", "plain", "otel"} {
		b.Run("impl="+impl, func(b *testing.B) {
			wrap := func(h http.Handler) http.Handler { return h }
			var tr http.RoundTripper = &http.Transport{MaxIdleConnsPerHost: 64}
			switch impl {
			case "graylane":
				p := benchProp(b)
				wrap = func(h http.Handler) http.Handler { return httpmw.NewHandler(h, httpmw.WithPropagator(p)) }
				tr = httpmw.NewTransport(tr, httpmw.WithPropagator(p))
			case "otel":
				wrap = func(h http.Handler) http.Handler {
					return otelhttp.NewHandler(h, "hop", otelhttp.WithTracerProvider(tp))
				}
				tr = otelhttp.NewTransport(tr, otelhttp.WithTracerProvider(tp))
			}
			client := &http.Client{Transport: tr}
			srvB := httptest.NewServer(wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			})))
			defer srvB.Close()
			srvA := httptest.NewServer(wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, srvB.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				io.Copy(w, resp.Body)
				resp.Body.Close()
			})))
			defer srvA.Close()
			defer client.CloseIdleConnections()

			req, _ := http.NewRequest(http.MethodGet, srvA.URL, nil)
			req.Header.Set("X-Traffic-Tag", "gray")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkGRPCHop measures one unary call over loopback: with no
// middleware (impl=plain), with graylane's interceptors on both sides and a
// tagged context (impl=graylane), and with OpenTelemetry's otelgrpc stats
// handlers on both sides and a sampling tracer (impl=otel), the ecosystem's
// reference for per-call instrumentation.
func BenchmarkGRPCHop(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	impls := []struct {
		name   string
		server []grpc.ServerOption
		client []grpc.DialOption
		ctx    context.Context
	}{
		{name: "plain", ctx: context.Background()},
		{
			name:   "graylane",
			server: []grpc.ServerOption{grpc.UnaryInterceptor(grpcmw.UnaryServerInterceptor(grpcmw.WithPropagator(benchProp(b))))},
			client: []grpc.DialOption{grpc.WithUnaryInterceptor(grpcmw.UnaryClientInterceptor(grpcmw.WithPropagator(benchProp(b))))},
			ctx:    tag.NewContext(context.Background(), tag.MustParse("gray")),
		},
		{
			name:   "otel",
			server: []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp)))},
			client: []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp)))},
			ctx:    context.Background(),
		},
	}
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer(impl.server...)
			testgrpc.RegisterTestServiceServer(srv, benchEcho{})
			go srv.Serve(lis)
			defer srv.Stop()
			cc, err := grpc.NewClient(lis.Addr().String(), append(impl.client, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			client := testgrpc.NewTestServiceClient(cc)
			req := &testgrpc.SimpleRequest{}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.UnaryCall(impl.ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
