package kafkalane_test

import (
	"context"
	"testing"

	"github.com/graylane/graylane/queue/queuetest"
	"github.com/graylane/graylane/registry"
)

// TestLaneChurn publishes 10,000 records, half of them tagged gray and
// some v3, while the gray lane's consumers come up and go down five times,
// by graceful stops and by crashes (the registration then expires later,
// as an etcd lease would). It checks that no record is lost, that
// duplicates are few and all inside a switch window, that no untagged
// record is processed by the gray lane, and that the base lane processes no
// gray record while a gray consumer had been live for more than a second
// (see queuetest.Churn).
func TestLaneChurn(t *testing.T) {
	b := newBroker(t)
	reg := registry.NewMemory()
	defer reg.Close()
	j := queuetest.NewJournal()
	base := b.start(t, reg, "", handler(j, queuetest.BaseLane), nil)
	queuetest.AwaitLive(t, base.l, queuetest.BaseLane, true)
	prod := b.producer(t)
	name := "kafka lane churn (kfake)"
	if !b.fake {
		name = "kafka lane churn (KAFKA_BROKERS)"
	}
	(&queuetest.Churn{
		Name: name, Noun: "records",
		Registry: reg, Base: base.l, Journal: j,
		Start: func() queuetest.Member {
			return b.start(t, reg, queuetest.ChurnLane, handler(j, queuetest.ChurnLane), nil)
		},
		Publish:  func(ctx context.Context, msgs ...[2]string) { produce(ctx, t, prod, msgs...) },
		StopBase: func() { base.Stop(t) }, // waits for the poll loop, and so for takeovers in flight
		Stats:    base.c.Stats,
	}).Run(t)
}
