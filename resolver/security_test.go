package resolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// securityTestTimeout bounds each test of this file.
const securityTestTimeout = 10 * time.Second

// randomTag returns a valid tag that no test registers.
func randomTag(i int) tag.Tag {
	return tag.MustParse(fmt.Sprintf("r%d-%x", i, rand.Uint64()))
}

// TestBalancerUnknownTagsDoNotGrowState: gRPC calls with thousands of
// different tags that are no lane are served by the base lane and counted
// under "(unknown)"; the balancer keeps no state for them.
func TestBalancerUnknownTagsDoNotGrowState(t *testing.T) {
	const service = "security-unknown-tags"
	reg := registry.NewMemory()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), securityTestTimeout)
	defer cancel()
	for _, lane := range []string{"", "gray"} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go srv.Serve(lis)
		defer srv.Stop()
		in := registry.Instance{Service: service, Addr: lis.Addr().String()}
		if lane != "" {
			in.Tag = tag.MustParse(lane)
		}
		_, err = reg.Register(ctx, in)
		require.NoError(t, err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	cc, err := grpc.NewClient("graylane:///"+service, append(DialOptions(reg, nil, WithMeterProvider(mp)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)

	const n = 1000
	for i := range n {
		_, err := client.Check(tag.NewContext(ctx, randomTag(i)), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		require.NoError(t, err)
	}
	_, err = client.Check(tag.NewContext(ctx, tag.MustParse("gray")), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)

	requested := map[string]int64{}
	for k, n := range metrictest.Counts(t, reader, routing.DecisionMetric, routing.AttrService, routing.AttrTag) {
		if svc, tg, _ := strings.Cut(k, "/"); svc == service {
			requested[tg] += n
		}
	}
	assert.Equal(t, int64(n), requested[routing.UnknownTag])
	for r := range requested {
		assert.Contains(t, []string{"", "prod", "gray", routing.UnknownTag}, r, "a series per registry lane only")
	}
}
