package queue_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
)

// decider is what a consumer does per message before its handler: read the
// tag from the message's headers and decide.
type decider struct {
	p *propagation.Propagator
	l *queue.Lanes
}

func (d decider) decide(h propagation.MessageHeader) *queue.Route {
	t, src := d.p.ReadMessage(context.Background(), h)
	if src == propagation.SourceOwn {
		t = tg("")
	}
	return d.l.Table().Decide(t)
}

func newDecider(tb testing.TB) decider {
	reg := registry.NewMemory()
	tb.Cleanup(func() { reg.Close() })
	for _, lane := range []string{"", "gray"} {
		l, err := queue.New(context.Background(), reg, "events", queue.WithLane(lane))
		require.NoError(tb, err)
		_, err = l.Register(context.Background())
		require.NoError(tb, err)
		require.NoError(tb, l.Close())
	}
	l, err := queue.New(context.Background(), reg, "events", queue.WithLane(""))
	require.NoError(tb, err)
	tb.Cleanup(func() { l.Close() })
	p, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(tb, err)
	return decider{p, l}
}

var messages = []struct {
	name   string
	h      propagation.MessageHeader
	action queue.Action
}{
	{"skip", propagation.MessageHeader{"traceparent": {"00-x"}, "x-traffic-tag": {"gray"}}, queue.Skip},
	{"process-untagged", propagation.MessageHeader{"traceparent": {"00-x"}}, queue.Process},
	{"process-fallback", propagation.MessageHeader{"x-traffic-tag": {"v3"}}, queue.Process},
	{"skip-baggage", propagation.MessageHeader{"baggage": {"user=alice,traffic-tag=gray"}}, queue.Skip},
}

func TestDecideDoesNotAllocate(t *testing.T) {
	d := newDecider(t)
	for _, m := range messages {
		require.Equal(t, m.action, d.decide(m.h).Action, m.name)
		assert.Zero(t, testing.AllocsPerRun(1000, func() { d.decide(m.h) }), m.name)
	}
}

// BenchmarkDecide reads the tag of a message and decides, as a base-lane
// consumer does for every message; the baseline reads the same header
// without graylane.
func BenchmarkDecide(b *testing.B) {
	d := newDecider(b)
	for _, m := range messages {
		b.Run("msg="+m.name+"/impl=baseline", func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if v := m.h["x-traffic-tag"]; len(v) == 1 && v[0] == "gray" {
					n++
				}
			}
		})
		b.Run("msg="+m.name+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d.decide(m.h).Action != m.action {
					b.Fatal("wrong action")
				}
			}
		})
	}
}
