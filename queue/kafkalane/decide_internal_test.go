package kafkalane

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
)

// newBaseConsumer returns a base-lane Consumer whose registry has a live
// gray consumer, without running it.
func newBaseConsumer(tb testing.TB) *Consumer {
	reg := registry.NewMemory()
	tb.Cleanup(func() { reg.Close() })
	gray, err := queue.New(context.Background(), reg, "events", queue.WithLane("gray"))
	require.NoError(tb, err)
	_, err = gray.Register(context.Background())
	require.NoError(tb, err)
	require.NoError(tb, gray.Close())
	l, err := queue.New(context.Background(), reg, "events", queue.WithLane(""))
	require.NoError(tb, err)
	tb.Cleanup(func() { l.Close() })
	c, err := NewConsumer(l, "events", func(context.Context, *kgo.Record) error { return nil })
	require.NoError(tb, err)
	return c
}

var decideRecords = []struct {
	name   string
	r      *kgo.Record
	action queue.Action
}{
	{"skip", &kgo.Record{Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-x")}, {Key: "x-traffic-tag", Value: []byte("gray")}}}, queue.Skip},
	{"process-untagged", &kgo.Record{Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-x")}}}, queue.Process},
}

func TestDecideRecordDoesNotAllocate(t *testing.T) {
	c := newBaseConsumer(t)
	ctx := context.Background()
	for _, d := range decideRecords {
		require.Equal(t, d.action, c.lanes.Table().Decide(c.tagOf(ctx, d.r)).Action, d.name)
		assert.Zero(t, testing.AllocsPerRun(1000, func() { c.lanes.Table().Decide(c.tagOf(ctx, d.r)) }), d.name)
	}
}

// BenchmarkDecideRecord is the consume-side decision: reading a record's
// tag from its headers and looking up what the lane does with it, against
// reading the same header by hand.
func BenchmarkDecideRecord(b *testing.B) {
	c := newBaseConsumer(b)
	ctx := context.Background()
	for _, d := range decideRecords {
		b.Run("record="+d.name+"/impl=baseline", func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for _, h := range d.r.Headers {
					if h.Key == "x-traffic-tag" && string(h.Value) == "gray" {
						n++
					}
				}
			}
		})
		b.Run("record="+d.name+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c.lanes.Table().Decide(c.tagOf(ctx, d.r)).Action != d.action {
					b.Fatal("wrong action")
				}
			}
		})
	}
}
