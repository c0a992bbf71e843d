package natslane_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/natslane"
	"github.com/graylane/graylane/queue/queuetest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testTimeout = 30 * time.Second
	stream      = "EVENTS"
	group       = "events"
)

// startServer runs an embedded NATS server with JetStream on a random
// loopback port and creates the stream.
func startServer(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(testTimeout), "NATS server not ready")
	nc := connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"events.>"}})
	require.NoError(t, err)
	return s.ClientURL()
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// running is a consumer with a connection of its own, running in a
// goroutine.
type running struct {
	crashOnNext atomic.Bool
	nc          *nats.Conn
	c           *natslane.Consumer
	l           *queue.Lanes
	cancel      context.CancelFunc
	done        chan error
}

func start(t testing.TB, url string, reg registry.Registry, lane string, j *queuetest.Journal, lopts []queue.Option, copts ...natslane.Option) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	l, err := queue.New(ctx, reg, group, append([]queue.Option{queue.WithLane(lane)}, lopts...)...)
	require.NoError(t, err)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	name := lane
	if name == "" {
		name = queuetest.BaseLane
	}
	r := &running{nc: nc, l: l, done: make(chan error, 1)}
	h := func(ctx context.Context, msg jetstream.Msg) error {
		j.Add(ctx, string(msg.Data()), name)
		if r.crashOnNext.Load() {
			r.c.Crash() // before the ack: the message stays unacknowledged
			r.nc.Close()
		}
		return nil
	}
	c, err := natslane.NewConsumer(js, stream, l, h, copts...)
	require.NoError(t, err)
	rctx, rcancel := context.WithCancel(context.Background())
	r.c, r.cancel = c, rcancel
	go func() { r.done <- c.Run(rctx) }()
	return r
}

// Stop stops the consumer gracefully, waits for Run to return and closes
// its connection and Lanes.
func (r *running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("consumer did not stop")
	}
	r.nc.Close()
	require.NoError(t, r.l.Close())
}

// ArmCrash makes the handler crash the consumer at its next message.
func (r *running) ArmCrash() { r.crashOnNext.Store(true) }

// Crash makes the consumer die in the middle of its next message (or at
// once, when none comes within a second) and returns its registration,
// still in the registry. It may run in any goroutine.
func (r *running) Crash() (registry.Registration, error) {
	r.crashOnNext.Store(true)
	select {
	case <-r.done:
	case <-time.After(time.Second):
		r.c.Crash()
		r.nc.Close()
		<-r.done
	}
	r.cancel()
	r.nc.Close()
	return r.c.Registration(), r.l.Close()
}

// publish sends messages (id, tag) to JetStream, tagged with Inject.
func publish(ctx context.Context, t testing.TB, js jetstream.JetStream, msgs ...[2]string) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		mctx := ctx
		if m[1] != "" {
			mctx = tag.NewContext(ctx, tag.MustParse(m[1]))
		}
		f, err := js.PublishMsgAsync(natslane.NewMsg(mctx, nil, "events.page", []byte(m[0])))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}
