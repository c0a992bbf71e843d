package kafkalane_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/kafkalane"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// sink keeps benchmark records on the heap, where a producer's records are.
var sink *kgo.Record

// BenchmarkInject is the produce-side cost: writing a record's tag into
// its headers, against setting the same header by hand. Both allocate the
// record itself, as a producer does.
func BenchmarkInject(b *testing.B) {
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	value := []byte("gray")
	b.Run("impl=baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := &kgo.Record{Context: ctx}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "x-traffic-tag", Value: []byte(string(value))})
			sink = r
		}
	})
	b.Run("impl=graylane", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := &kgo.Record{Context: ctx}
			kafkalane.Inject(ctx, nil, r)
			sink = r
		}
	})
}

// BenchmarkConsume consumes the same 20,000 records (half tagged gray) from
// kfake with a bare kgo group consumer and with a base-lane Consumer while
// a gray consumer is registered; run with -count to interleave the two.
func BenchmarkConsume(b *testing.B) {
	const n = 20000
	br := newBroker(b)
	prod := br.producer(b)
	batch := make([][2]string, 0, n)
	for i := range n {
		tg := ""
		if i%2 == 0 {
			tg = "gray"
		}
		batch = append(batch, [2]string{strconv.Itoa(i), tg})
	}
	produce(context.Background(), b, prod, batch...)
	reg := registry.NewMemory()
	defer reg.Close()
	gray, err := queue.New(context.Background(), reg, br.group, queue.WithLane("gray"))
	require.NoError(b, err)
	_, err = gray.Register(context.Background())
	require.NoError(b, err)
	require.NoError(b, gray.Close())
	round := 0
	b.Run("impl=baseline", func(b *testing.B) {
		for b.Loop() {
			round++
			cl, err := kgo.NewClient(append(br.opts(), kgo.ConsumerGroup(br.group+"-bare-"+strconv.Itoa(round)),
				kgo.ConsumeTopics(br.topic), kgo.DisableAutoCommit())...)
			require.NoError(b, err)
			seen := 0
			for seen < n {
				fs := cl.PollRecords(context.Background(), 500)
				fs.EachRecord(func(r *kgo.Record) {
					if v := r.Headers; len(v) >= 0 {
						seen++
					}
				})
				require.NoError(b, cl.CommitUncommittedOffsets(context.Background()))
			}
			cl.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	b.Run("impl=graylane", func(b *testing.B) {
		for b.Loop() {
			round++
			l, err := queue.New(context.Background(), reg, br.group+"-lanes-"+strconv.Itoa(round), queue.WithLane(""))
			require.NoError(b, err)
			// The gray lane is live for this group too.
			gl, err := queue.New(context.Background(), reg, l.Group(), queue.WithLane("gray"))
			require.NoError(b, err)
			greg, err := gl.Register(context.Background())
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			processed, all := 0, make(chan struct{})
			c, err := kafkalane.NewConsumer(l, br.topic, func(context.Context, *kgo.Record) error {
				if processed++; processed == n/2 { // every untagged record
					close(all)
				}
				return nil
			},
				kafkalane.WithClientOptions(br.opts()...), kafkalane.WithMaxPollRecords(500))
			require.NoError(b, err)
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			<-all
			cancel()
			require.NoError(b, <-done)
			require.NoError(b, greg.Deregister(context.Background()))
			require.NoError(b, gl.Close())
			require.NoError(b, l.Close())
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
}
