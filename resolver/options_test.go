package resolver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// stateRecorder is a gRPC resolver.ClientConn that hands each state it is
// given to the test, and refuses them with refuse.
type stateRecorder struct {
	grpcresolver.ClientConn // the methods the resolver does not call
	states                  chan grpcresolver.State
	refuse                  error
}

func (c *stateRecorder) UpdateState(s grpcresolver.State) error {
	select {
	case c.states <- s:
	default: // the test reads the first one only
	}
	return c.refuse
}

func (c *stateRecorder) ReportError(error) {}

func (c *stateRecorder) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// logRecorder is a slog.Handler that keeps the messages it receives.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

// TestResolverState: the resolver publishes one Endpoint per instance with
// its lane and name readable through EndpointLane and EndpointInstanceName,
// plus the plain Addresses for policies that read only those; a state the
// channel refuses is logged through WithResolverLogger.
func TestResolverState(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	registerAll(t, reg, prodAndGray()...)
	logs := &logRecorder{}
	b := resolver.NewBuilder(reg, resolver.WithLogger(slog.New(logs)))
	cc := &stateRecorder{states: make(chan grpcresolver.State, 1), refuse: errors.New("no thanks")}
	r, err := b.Build(grpcresolver.Target{URL: *mustURL(t, "graylane:///svc")}, cc, grpcresolver.BuildOptions{})
	require.NoError(t, err)
	defer r.Close()

	var s grpcresolver.State
	select {
	case s = <-cc.states:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no state published")
	}
	var got []string
	for _, ep := range s.Endpoints {
		require.Len(t, ep.Addresses, 1)
		got = append(got, ep.Addresses[0].Addr+" "+resolver.EndpointInstanceName(ep)+" "+resolver.EndpointLane(ep))
	}
	assert.ElementsMatch(t, []string{"127.0.0.1:1 prod-0 ", "127.0.0.1:2 gray-0 gray"}, got)
	var addrs []string
	for _, a := range s.Addresses {
		addrs = append(addrs, a.Addr)
	}
	assert.ElementsMatch(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, addrs)

	// The refusal is logged once UpdateState has returned: close the
	// resolver, which waits for its goroutine, before reading the log.
	r.Close()
	assert.Contains(t, logs.all(), "update not accepted")
}

// registerAll registers instances in reg, named after their lanes.
func registerAll(t *testing.T, reg registry.Registry, insts ...registry.Instance) {
	t.Helper()
	for _, in := range insts {
		_, err := reg.Register(context.Background(), in)
		require.NoError(t, err)
	}
}

func prodAndGray() []registry.Instance {
	return []registry.Instance{
		{Service: "svc", Addr: "127.0.0.1:1", Name: "prod-0"},
		{Service: "svc", Addr: "127.0.0.1:2", Name: "gray-0", Tag: tag.MustParse("gray")},
	}
}
