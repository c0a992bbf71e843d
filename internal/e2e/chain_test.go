package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const defaultTestTimeout = 10 * time.Second

// stack is how the services of a chain are wrapped: graylane's middleware
// on net/http or chi, or OpenTelemetry instrumentation carrying the tag
// through a composite propagator alone.
type stack struct {
	name        string
	httpServer  func(own string, h http.HandlerFunc) http.Handler
	httpClient  func() http.RoundTripper
	grpcServer  func(own string) []grpc.ServerOption
	grpcClient  func() []grpc.DialOption
	checksTrace bool
}

func mustProp(t *testing.T, own string, opts ...propagation.Option) *propagation.Propagator {
	t.Helper()
	p, err := propagation.New(append([]propagation.Option{propagation.WithOwnTag(own)}, opts...)...)
	require.NoError(t, err)
	return p
}

func graylaneStack(t *testing.T, name string, router func(http.Handler, *propagation.Propagator) http.Handler) stack {
	return stack{
		name: name,
		httpServer: func(own string, h http.HandlerFunc) http.Handler {
			return router(h, mustProp(t, own))
		},
		httpClient: func() http.RoundTripper {
			return httpmw.NewTransport(&http.Transport{}, httpmw.WithPropagator(mustProp(t, "")))
		},
		grpcServer: func(own string) []grpc.ServerOption {
			p := grpcmw.WithPropagator(mustProp(t, own))
			return []grpc.ServerOption{
				grpc.UnaryInterceptor(grpcmw.UnaryServerInterceptor(p)),
				grpc.StreamInterceptor(grpcmw.StreamServerInterceptor(p)),
			}
		},
		grpcClient: func() []grpc.DialOption {
			p := grpcmw.WithPropagator(mustProp(t, ""))
			return []grpc.DialOption{
				grpc.WithUnaryInterceptor(grpcmw.UnaryClientInterceptor(p)),
				grpc.WithStreamInterceptor(grpcmw.StreamClientInterceptor(p)),
			}
		},
	}
}

func stacks(t *testing.T) []stack {
	netHTTP := graylaneStack(t, "net/http", func(h http.Handler, p *propagation.Propagator) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		return httpmw.NewHandler(mux, httpmw.WithPropagator(p))
	})
	withChi := graylaneStack(t, "chi", func(h http.Handler, p *propagation.Propagator) http.Handler {
		r := chi.NewRouter()
		r.Use(httpmw.Middleware(httpmw.WithPropagator(p)))
		r.Handle("/*", h)
		return r
	})
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	composite := func(own string) otelprop.TextMapPropagator {
		return otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{},
			mustProp(t, own, propagation.WithBaggageInjection()))
	}
	otelStack := stack{
		name: "otel",
		httpServer: func(own string, h http.HandlerFunc) http.Handler {
			return otelhttp.NewHandler(h, "hop", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(composite(own)))
		},
		httpClient: func() http.RoundTripper {
			return otelhttp.NewTransport(&http.Transport{}, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(composite("")))
		},
		grpcServer: func(own string) []grpc.ServerOption {
			return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
				otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(composite(own))))}
		},
		grpcClient: func() []grpc.DialOption {
			return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(composite(""))))}
		},
		checksTrace: true,
	}
	return []stack{netHTTP, withChi, otelStack}
}

func tagOf(ctx context.Context) string {
	if t, ok := tag.FromContext(ctx); ok {
		return t.String()
	}
	return "-"
}

// lastHop is the fourth service: a gRPC server stream that reports the tag,
// the trace and the baggage it sees.
type lastHop struct {
	testgrpc.UnimplementedTestServiceServer
}

func (lastHop) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	ctx := ss.Context()
	report := fmt.Sprintf("hop4=%s trace=%s user=%s", tagOf(ctx),
		trace.SpanContextFromContext(ctx).TraceID(), baggage.FromContext(ctx).Member("user").Value())
	for _, part := range strings.SplitAfter(report, " ") {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(part)}}); err != nil {
			return err
		}
	}
	return nil
}

// secondHop is a gRPC unary service that calls the third hop over HTTP.
type secondHop struct {
	testgrpc.UnimplementedTestServiceServer
	client *http.Client
	next   string
}

func (s secondHop) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.next, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &testgrpc.SimpleResponse{Username: "hop2=" + tagOf(ctx) + " " + string(b)}, nil
}

func serveGRPC(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string, opts []grpc.DialOption) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// startChain runs HTTP -> gRPC (unary) -> HTTP -> gRPC (server stream) and
// returns the URL of the first hop. The first hop's own tag is own.
func startChain(t *testing.T, s stack, own string) string {
	t.Helper()
	hop4 := grpc.NewServer(s.grpcServer("")...)
	testgrpc.RegisterTestServiceServer(hop4, lastHop{})
	hop4Client := dial(t, serveGRPC(t, hop4), s.grpcClient())

	hop3 := httptest.NewServer(s.httpServer("", func(w http.ResponseWriter, r *http.Request) {
		stream, err := hop4Client.StreamingOutputCall(r.Context(), &testgrpc.StreamingOutputCallRequest{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "hop3=%s ", tagOf(r.Context()))
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				fmt.Fprintf(w, "error: %v", err)
				return
			}
			w.Write(m.Payload.Body)
		}
	}))
	t.Cleanup(hop3.Close)

	httpClient := &http.Client{Transport: s.httpClient()}
	t.Cleanup(httpClient.CloseIdleConnections)
	hop2 := grpc.NewServer(s.grpcServer("")...)
	testgrpc.RegisterTestServiceServer(hop2, secondHop{client: httpClient, next: hop3.URL})
	hop2Client := dial(t, serveGRPC(t, hop2), s.grpcClient())

	hop1 := httptest.NewServer(s.httpServer(own, func(w http.ResponseWriter, r *http.Request) {
		resp, err := hop2Client.UnaryCall(r.Context(), &testgrpc.SimpleRequest{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "hop1=%s %s", tagOf(r.Context()), resp.Username)
	}))
	t.Cleanup(hop1.Close)
	return hop1.URL
}

var (
	traceID     = "0102030405060708090a0b0c0d0e0f10"
	traceparent = "00-" + traceID + "-0102030405060708-01"
)

// TestFourHops sends requests through the four hops, with the tag in each
// source, and checks what every hop saw.
func TestFourHops(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			plain := startChain(t, s, "")
			gray := startChain(t, s, "gray") // the first service is a gray instance
			tests := []struct {
				name   string
				url    string
				header http.Header
				want   string
			}{
				{"header", plain, http.Header{"X-Traffic-Tag": {"gray"}}, "gray"},
				{"baggage", plain, http.Header{"Baggage": {"user=alice,traffic-tag=gray"}}, "gray"},
				{"own tag default", gray, nil, "gray"},
				{"request tag beats own tag", gray, http.Header{"X-Traffic-Tag": {"v3"}}, "v3"},
				{"untagged", plain, nil, "-"},
				{"invalid is untagged", plain, http.Header{"X-Traffic-Tag": {"no such lane!"}}, "-"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
					defer cancel()
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
					require.NoError(t, err)
					req.Header = tt.header.Clone()
					if req.Header == nil {
						req.Header = http.Header{}
					}
					req.Header.Set("Traceparent", traceparent)
					if req.Header.Get("Baggage") == "" {
						req.Header.Set("Baggage", "user=alice")
					}
					resp, err := http.DefaultClient.Do(req)
					require.NoError(t, err)
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

					want := fmt.Sprintf("hop1=%[1]s hop2=%[1]s hop3=%[1]s hop4=%[1]s ", tt.want)
					assert.True(t, strings.HasPrefix(string(body), want), "got %q, want prefix %q", body, want)
					if s.checksTrace {
						assert.Contains(t, string(body), "trace="+traceID, "trace context intact at the last hop")
						assert.Contains(t, string(body), "user=alice", "other baggage members intact at the last hop")
					}
				})
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
}
