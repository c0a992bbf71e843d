package lanes

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/graylane/graylane/fallback"
)

// blockingObserver stands for a slow metrics pipeline: it blocks in its
// first observation until released.
type blockingObserver struct {
	embedded.Observer
	entered, release chan struct{}
}

func (o *blockingObserver) ObserveFloat64(metric.Float64Observable, float64, ...metric.ObserveOption) {
}
func (o *blockingObserver) ObserveInt64(metric.Int64Observable, int64, ...metric.ObserveOption) {
	select {
	case o.entered <- struct{}{}:
		<-o.release
	default:
	}
}

// TestCollectionDoesNotBlockDecisions: while a collection is under way, a
// routing table being built still gets its counters at once.
func TestCollectionDoesNotBlockDecisions(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	tel := New(mp, nil)
	defer tel.Close()
	c := tel.NewCounters()
	c.Decision("svc", "", "prod", fallback.Untagged).N.Add(3)

	o := &blockingObserver{entered: make(chan struct{}), release: make(chan struct{})}
	collected := make(chan error, 1)
	go func() { collected <- tel.observe(context.Background(), o) }()
	<-o.entered // the collection holds its first observation

	done := make(chan *Stats, 1)
	go func() { done <- c.Decision("svc", "gray", "gray", fallback.Matched) }()
	select {
	case s := <-done:
		assert.NotNil(t, s)
	case <-time.After(10 * time.Second):
		t.Fatal("a decision waited for the collection")
	}
	close(o.release)
	require.NoError(t, <-collected)
}

// collect reads the decision counter, keyed "tag:reason".
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			require.Equal(t, DecisionMetric, m.Name)
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				tg, _ := dp.Attributes.Value(AttrTag)
				r, _ := dp.Attributes.Value(AttrReason)
				got[tg.AsString()+":"+r.AsString()] = dp.Value
			}
		}
	}
	return got
}

// TestTelemetryCounts: every kind of decision is one series; the clients'
// own counters of a kind add up in it, and what a closed client counted
// stays.
func TestTelemetryCounts(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tel := New(mp, nil)
	defer tel.Close()
	c1, c2 := tel.NewCounters(), tel.NewCounters()
	a := c1.Decision("svc", "gray", "prod", fallback.NoInstances)
	require.Same(t, a, c1.Decision("svc", "gray", "prod", fallback.NoInstances))
	b := c2.Decision("svc", "gray", "prod", fallback.NoInstances)
	require.NotSame(t, a, b, "each client counts, and rotates, on its own")
	a.N.Add(2)
	b.N.Add(5)
	c1.Decision("svc", "", "prod", fallback.Untagged).N.Add(1)
	assert.Equal(t, map[string]int64{"gray:noinstances": 7, ":untagged": 1}, collect(t, reader))
	assert.Equal(t, uint64(3), c1.Calls("prod"))
	assert.Zero(t, c1.Calls("gray"))

	c1.Close()
	c1.Close()
	assert.Equal(t, map[string]int64{"gray:noinstances": 7, ":untagged": 1}, collect(t, reader), "a closed client's counts stay")
	b.N.Add(1)
	assert.Equal(t, map[string]int64{"gray:noinstances": 8, ":untagged": 1}, collect(t, reader))
}

// TestCloseIsNeverSeenHalfway: collections racing with clients that close
// never see a series go down.
func TestCloseIsNeverSeenHalfway(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tel := New(mp, nil)
	defer tel.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := tel.NewCounters()
			c.Decision("svc", "", "prod", fallback.Untagged).N.Add(1)
			c.Close()
		}
	}()
	var last int64
	for range 200 {
		n := collect(t, reader)[":untagged"]
		require.GreaterOrEqual(t, n, last, "the series went down")
		last = n
	}
	close(stop)
	<-done
}

// TestShared: one Telemetry per MeterProvider, and one for the global.
func TestShared(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	assert.Same(t, Shared(mp), Shared(mp))
	assert.Same(t, Shared(nil), Shared(nil))
	assert.NotSame(t, Shared(mp), Shared(nil))
}
