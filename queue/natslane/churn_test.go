package natslane_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/queue/queuetest"
	"github.com/graylane/graylane/registry"
)

// TestLaneChurn publishes 10,000 messages, half of them tagged gray and
// some v3, while the gray lane's consumers come up and go down five times,
// by graceful stops and by crashes (the registration then expires later,
// as an etcd lease would). It checks that no message is lost, that
// duplicates are few and all inside a switch window, that no untagged
// message is processed by the gray lane, and that the base lane processes
// no gray message while a gray consumer had been live for more than a
// second (see queuetest.Churn).
func TestLaneChurn(t *testing.T) {
	url := startServer(t)
	reg := registry.NewMemory()
	defer reg.Close()
	j := queuetest.NewJournal()
	base := start(t, url, reg, "", j, nil)
	queuetest.AwaitLive(t, base.l, queuetest.BaseLane, true)
	js, err := jetstream.New(connect(t, url))
	require.NoError(t, err)
	(&queuetest.Churn{
		Name: "nats jetstream lane churn", Noun: "messages",
		Registry: reg, Base: base.l, Journal: j,
		Start:    func() queuetest.Member { return start(t, url, reg, queuetest.ChurnLane, j, nil) },
		Publish:  func(ctx context.Context, msgs ...[2]string) { publish(ctx, t, js, msgs...) },
		StopBase: func() { base.Stop(t) },
		Stats:    base.c.Stats,
	}).Run(t)
}
