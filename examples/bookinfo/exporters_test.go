package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// grayTrace sends one gray request that starts the trace traceID, through
// a demo whose spans go to tel, and shuts tel down, which flushes them.
func grayTrace(t *testing.T, tel *app.Telemetry, traceID string) {
	t.Helper()
	sys := startSystem(t, app.Config{Telemetry: tel})
	client := newClient(t)
	p := fetch(t, client, sys.GatewayURL()+"/productpage", http.Header{
		"X-Traffic-Tag": {"gray"}, "Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"},
	})
	require.Equal(t, http.StatusOK, p.status)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	require.NoError(t, sys.Close(ctx))
	require.NoError(t, tel.Shutdown(ctx))
}

// TestTraceStdout: -trace stdout prints one JSON object per span, the
// spans of every hop of a request carrying its trace id.
func TestTraceStdout(t *testing.T) {
	var out bytes.Buffer
	exp, err := spanExporter("stdout", "", &out)
	require.NoError(t, err)
	tel, err := app.NewTelemetry(app.TelemetryConfig{SpanExporter: exp})
	require.NoError(t, err)
	const traceID = "5af92f3577b34da6a3ce929d0e0e4736"
	grayTrace(t, tel, traceID)
	// gateway; productpage, details and reviews, client and server: 7
	// (reviews-v1 calls no ratings).
	assert.Equal(t, 7, strings.Count(out.String(), `"SpanContext":{"TraceID":"`+traceID+`"`), "one line per span:\n%s", out.String())
	assert.Contains(t, out.String(), `{"Key":"graylane.reason","Value":{"Type":"STRING","Value":"noinstances"}}`)
}

// collector is an OTLP/gRPC trace collector that keeps the trace ids it
// receives.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string]int // by trace id, hex
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans[strings.ToLower(hexOf(s.GetTraceId()))]++
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestTraceOTLP: -otlp-endpoint sends the spans of every hop to a
// collector over OTLP/gRPC.
func TestTraceOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := &collector{spans: map[string]int{}}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go srv.Serve(lis)
	defer srv.Stop()

	exp, err := spanExporter("", lis.Addr().String(), nil)
	require.NoError(t, err)
	tel, err := app.NewTelemetry(app.TelemetryConfig{SpanExporter: exp})
	require.NoError(t, err)
	const traceID = "6bf92f3577b34da6a3ce929d0e0e4736"
	grayTrace(t, tel, traceID)
	col.mu.Lock()
	defer col.mu.Unlock()
	assert.Equal(t, 7, col.spans[traceID], "spans of the request's trace: %v", col.spans)
}
