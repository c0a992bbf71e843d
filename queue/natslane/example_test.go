package natslane_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/natslane"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// A page view publishes an event in the lane of the request.
func ExampleNewMsg() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray")) // as graylane's middleware leaves it
	if _, err := js.PublishMsg(ctx, natslane.NewMsg(ctx, nil, "events.page", []byte("viewed"))); err != nil {
		log.Fatal(err)
	}
}

// The notifications service's gray deployment consumes the gray events.
func ExampleConsumer() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	reg := registry.NewMemory() // etcd or Kubernetes across processes
	lanes, err := queue.New(ctx, reg, "notifications-events", queue.WithLane("gray"))
	if err != nil {
		log.Fatal(err)
	}
	defer lanes.Close()
	c, err := natslane.NewConsumer(js, "EVENTS", lanes, func(ctx context.Context, msg jetstream.Msg) error {
		t, _ := tag.FromContext(ctx)
		log.Printf("%s in lane %s", msg.Data(), t)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Println("durable:", c.Durable()) // notifications-events_gray
	if err := c.Run(ctx); err != nil {   // until ctx is done
		log.Fatal(err)
	}
}

func ExampleName() {
	log.Println(natslane.Name("notifications", "", "prod"))     // notifications
	log.Println(natslane.Name("notifications", "v1.2", "prod")) // notifications_v1_2E2
}
