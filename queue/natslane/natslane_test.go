package natslane_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/natslane"
	"github.com/graylane/graylane/queue/queuetest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

func TestName(t *testing.T) {
	for _, tt := range []struct{ lane, want string }{
		{"", "events"}, {"prod", "events"}, {"gray", "events_gray"},
		{"v1.2", "events_v1_2E2"}, {"a_b", "events_a_5Fb"}, {"a._b", "events_a_2E_5Fb"}, {"a_.b", "events_a_5F_2Eb"},
	} {
		assert.Equal(t, tt.want, natslane.Name("events", tt.lane, "prod"), tt.lane)
	}
}

func TestNewMsg(t *testing.T) {
	msg := natslane.NewMsg(context.Background(), nil, "s", nil)
	assert.Empty(t, msg.Header, "no tag, no header")
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	msg = natslane.NewMsg(ctx, nil, "s", []byte("x"))
	assert.Equal(t, []string{"gray"}, msg.Header["x-traffic-tag"], "lower case, as OpenTelemetry writes it")
}

// TestSubscribe runs a base and a gray core NATS subscription: each
// message is processed by one lane only.
func TestSubscribe(t *testing.T) {
	url := startServer(t)
	reg := registry.NewMemory()
	defer reg.Close()
	nc := connect(t, url)
	got := make(chan [2]string, 10)
	subscribe := func(lane string) (*queue.Lanes, *natslane.Subscription) {
		l, err := queue.New(context.Background(), reg, group, queue.WithLane(lane))
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		s, err := natslane.Subscribe(context.Background(), nc, "core.>", l, nil, func(ctx context.Context, msg *nats.Msg) {
			tg, _ := tag.FromContext(ctx)
			got <- [2]string{lane + ":" + string(msg.Data), tg.String()}
		})
		require.NoError(t, err)
		return l, s
	}
	base, bs := subscribe("")
	_, gs := subscribe("gray")
	queuetest.AwaitLive(t, base, "gray", true)
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	require.NoError(t, nc.PublishMsg(natslane.NewMsg(ctx, nil, "core.a", []byte("1"))))
	require.NoError(t, nc.PublishMsg(natslane.NewMsg(context.Background(), nil, "core.a", []byte("2"))))
	bad := &nats.Msg{Subject: "core.a", Data: []byte("3"), Header: nats.Header{"x-traffic-tag": {"gr@y"}}}
	require.NoError(t, nc.PublishMsg(bad))
	seen := map[string]string{}
	for range 3 {
		select {
		case m := <-got:
			seen[m[0]] = m[1]
		case <-time.After(testTimeout):
			t.Fatal("messages not processed")
		}
	}
	assert.Equal(t, map[string]string{"gray:1": "gray", ":2": "", ":3": ""}, seen, "a bad tag is ignored: the message is untagged")
	require.NoError(t, gs.Stop(context.Background()))
	require.NoError(t, bs.Stop(context.Background()))
}

// TestDurableDeletedUnderTheConsumer: a lane that comes back while the
// lane that took over from it deletes its old durable consumer makes the
// durable anew and goes on consuming its messages.
func TestDurableDeletedUnderTheConsumer(t *testing.T) {
	url := startServer(t)
	reg := registry.NewMemory()
	defer reg.Close()
	j := queuetest.NewJournal()
	base := start(t, url, reg, "", j, nil)
	defer base.Stop(t)
	gray := start(t, url, reg, "gray", j, nil)
	defer gray.Stop(t)
	queuetest.AwaitLive(t, base.l, "gray", true)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	js, err := jetstream.New(connect(t, url))
	require.NoError(t, err)
	require.NoError(t, js.DeleteConsumer(ctx, stream, gray.c.Durable()))
	publish(ctx, t, js, [2]string{"m1", "gray"}, [2]string{"m2", ""})
	j.AwaitDistinct(t, 2, testTimeout)
	byID := map[string]string{}
	for _, p := range j.Snapshot() {
		byID[p.ID] = p.Lane
	}
	assert.Equal(t, map[string]string{"m1": "gray", "m2": "prod"}, byID)
	_, err = js.Consumer(ctx, stream, gray.c.Durable())
	require.NoError(t, err, "the durable consumer was made anew")
}
