package queue_test

import (
	"context"
	"fmt"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
)

// A base-lane consumer and a gray one share a registry: each decides, per
// message, whether it is theirs.
func Example() {
	ctx := context.Background()
	reg := registry.NewMemory()
	defer reg.Close()

	base, _ := queue.New(ctx, reg, "notifications-events", queue.WithLane(""))
	defer base.Close()
	gray, _ := queue.New(ctx, reg, "notifications-events", queue.WithLane("gray"))
	defer gray.Close()
	for _, l := range []*queue.Lanes{base, gray} {
		if _, err := l.Register(ctx); err != nil {
			panic(err)
		}
	}
	// Wait for each to see the other in the registry.
	for _, w := range []struct {
		l    *queue.Lanes
		peer string
	}{{base, "gray"}, {gray, "prod"}} {
		for ch := w.l.Changed(); !w.l.Table().Live(w.peer); ch = w.l.Changed() {
			<-ch
		}
	}

	p, _ := propagation.New(propagation.WithOwnTag(""))
	for _, h := range []propagation.MessageHeader{
		{},
		{"x-traffic-tag": {"gray"}},
		{"x-traffic-tag": {"v3"}},
	} {
		t, _ := p.ReadMessage(ctx, h)
		fmt.Printf("tag %-5q base: %-7v gray: %v\n", t, base.Table().Decide(t).Action, gray.Table().Decide(t).Action)
	}
	// Output:
	// tag ""    base: process gray: skip
	// tag "gray" base: skip    gray: process
	// tag "v3"  base: process gray: skip
}
