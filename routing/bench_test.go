package routing

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// BenchmarkRouterRoute measures the pick of the HTTP routing transport:
// Router.Route for a lane that serves (lane=gray) and for a tag that falls
// back (lane=v3), against a lane-blind round-robin over a fixed instance
// list (impl=static), the least a client-side balancer does. It must not
// allocate.
func BenchmarkRouterRoute(b *testing.B) {
	reg := registry.NewMemory()
	defer reg.Close()
	for i, lane := range []string{"", "gray", "gray"} {
		in := registry.Instance{Service: "reviews", Addr: fmt.Sprintf("127.0.0.1:%d", 9000+i)}
		if lane != "" {
			in.Tag = tag.MustParse(lane)
		}
		if _, err := reg.Register(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
	router := NewRouter(reg, nil)
	defer router.Close()
	ctx := context.Background()
	for _, lane := range []string{"gray", "v3"} {
		t := tag.MustParse(lane)
		if _, err := router.Route(ctx, "reviews", t); err != nil {
			b.Fatal(err)
		}
		b.Run("lane="+lane+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := router.Route(ctx, "reviews", t); err != nil {
					b.Fatal(err)
				}
			}
		})
		insts := reg.Instances("reviews")
		var next atomic.Uint32
		b.Run("lane="+lane+"/impl=static", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if in := insts[next.Add(1)%uint32(len(insts))]; in.Addr == "" {
					b.Fatal("no address")
				}
			}
		})
	}
}
