package kafkalane_test

import (
	"context"
	"log"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/kafkalane"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// A producer tags its records with the tag of the request it serves.
func ExampleProduceHook() {
	hook, err := kafkalane.ProduceHook(nil)
	if err != nil {
		log.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"), kgo.DefaultProduceTopic("page-views"), hook)
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray")) // as graylane's middleware leaves it
	cl.Produce(ctx, &kgo.Record{Value: []byte("viewed")}, nil)
}

// A consumer of the gray deployment processes the gray records while it
// runs, and the base lane takes over what it leaves when it goes.
func ExampleConsumer() {
	reg := registry.NewMemory() // etcd or Kubernetes across processes
	ctx := context.Background()
	lanes, err := queue.New(ctx, reg, "notifications-events", queue.WithLane("gray"))
	if err != nil {
		log.Fatal(err)
	}
	defer lanes.Close()
	c, err := kafkalane.NewConsumer(lanes, "page-views", func(ctx context.Context, r *kgo.Record) error {
		t, _ := tag.FromContext(ctx) // "gray": calls made here stay in the lane
		log.Printf("%s in lane %s", r.Value, t)
		return nil
	}, kafkalane.WithClientOptions(kgo.SeedBrokers("127.0.0.1:9092")))
	if err != nil {
		log.Fatal(err)
	}
	log.Println("consumer group:", c.Group()) // notifications-events.gray
	if err := c.Run(ctx); err != nil {        // until ctx is done
		log.Fatal(err)
	}
}

func ExampleGroupName() {
	log.Println(kafkalane.GroupName("notifications", "", "prod"))     // notifications
	log.Println(kafkalane.GroupName("notifications", "gray", "prod")) // notifications.gray
}
