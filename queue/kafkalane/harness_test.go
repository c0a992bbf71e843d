package kafkalane_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/kafkalane"
	"github.com/graylane/graylane/queue/queuetest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

const (
	testTimeout = 30 * time.Second
	partitions  = 4
)

// broker is a Kafka cluster for one test: kfake in process, or the brokers
// of KAFKA_BROKERS. Each test has a topic and a group name of its own.
type broker struct {
	seeds []string
	topic string
	group string
	fake  bool
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	b := &broker{
		topic: fmt.Sprintf("events-%d", rand.Uint32()),
		group: fmt.Sprintf("events-%d", rand.Uint32()),
	}
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		b.seeds = strings.Split(env, ",")
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...))
		require.NoError(t, err)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_, err = kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, b.topic)
		require.NoError(t, err)
		t.Cleanup(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...))
			if err == nil {
				_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), b.topic)
				cl.Close()
			}
		})
		return b
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, b.topic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	b.seeds, b.fake = c.ListenAddrs(), true
	return b
}

func (b *broker) opts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(b.seeds...), kgo.FetchMaxWait(100 * time.Millisecond)}
}

// producer returns a client that tags records with ProduceHook.
func (b *broker) producer(t testing.TB) *kgo.Client {
	t.Helper()
	hook, err := kafkalane.ProduceHook(nil)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(b.opts(), hook, kgo.DefaultProduceTopic(b.topic), kgo.ProducerLinger(0))...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// handler returns a Handler that records each record it processes in j,
// as processed by a consumer of lane.
func handler(j *queuetest.Journal, lane string) kafkalane.Handler {
	return func(ctx context.Context, r *kgo.Record) error {
		j.Add(ctx, string(r.Value), lane)
		return nil
	}
}

// running is a consumer running in a goroutine.
type running struct {
	crashOnNext atomic.Bool // the handler crashes the consumer after its next record
	c           *kafkalane.Consumer
	l           *queue.Lanes
	cancel      context.CancelFunc
	done        chan error
}

func (b *broker) start(t testing.TB, reg registry.Registry, lane string, h kafkalane.Handler, lopts []queue.Option, copts ...kafkalane.Option) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	l, err := queue.New(ctx, reg, b.group, append([]queue.Option{queue.WithLane(lane)}, lopts...)...)
	require.NoError(t, err)
	r := &running{l: l, done: make(chan error, 1)}
	crashing := func(ctx context.Context, rec *kgo.Record) error {
		err := h(ctx, rec)
		if r.crashOnNext.Load() {
			r.c.Crash() // in the middle of a batch: what it processed is not committed
			r.cancel()
		}
		return err
	}
	c, err := kafkalane.NewConsumer(l, b.topic, crashing, append([]kafkalane.Option{kafkalane.WithClientOptions(b.opts()...)}, copts...)...)
	require.NoError(t, err)
	rctx, rcancel := context.WithCancel(context.Background())
	r.c, r.cancel = c, rcancel
	go func() { r.done <- c.Run(rctx) }()
	return r
}

// Stop stops the consumer gracefully and waits for Run to return.
func (r *running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("consumer did not stop")
	}
	require.NoError(t, r.l.Close())
}

// ArmCrash makes the handler crash the consumer after its next record.
func (r *running) ArmCrash() { r.crashOnNext.Store(true) }

// Crash makes the consumer crash in the middle of its next batch (or at
// once, when no record comes within a second) and returns its
// registration, still in the registry. It may run in any goroutine.
func (r *running) Crash() (registry.Registration, error) {
	r.crashOnNext.Store(true)
	select {
	case <-r.done:
	case <-time.After(time.Second):
		r.c.Crash()
		r.cancel()
		<-r.done
	}
	return r.c.Registration(), r.l.Close()
}

// produce sends one record with the given id and tag ("" untagged).
func produce(ctx context.Context, t testing.TB, cl *kgo.Client, records ...[2]string) {
	t.Helper()
	rs := make([]*kgo.Record, len(records))
	for i, r := range records {
		rctx := ctx
		if r[1] != "" {
			rctx = tag.NewContext(ctx, tag.MustParse(r[1]))
		}
		rs[i] = &kgo.Record{Value: []byte(r[0]), Key: []byte(r[0]), Context: rctx}
	}
	require.NoError(t, cl.ProduceSync(ctx, rs...).FirstErr())
}
