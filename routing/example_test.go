package routing_test

import (
	"context"
	"fmt"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// A Router picks an instance of the request's lane, or falls back.
func ExampleRouter() {
	ctx := context.Background()
	reg := registry.NewMemory()
	defer reg.Close()
	reg.Register(ctx, registry.Instance{Service: "reviews", Addr: "10.0.0.1:9080", Name: "reviews-v1-0"})
	reg.Register(ctx, registry.Instance{Service: "reviews", Addr: "10.0.0.2:9080", Name: "reviews-v2-0", Tag: tag.MustParse("gray")})

	router := routing.NewRouter(reg, nil)
	defer router.Close()
	for _, lane := range []string{"gray", "v3"} {
		r, err := router.Route(ctx, "reviews", tag.MustParse(lane))
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s -> %s (lane %s, %s)\n", lane, r.Instance.Name, r.Lane, r.Reason)
	}
	r, _ := router.Route(ctx, "reviews", tag.Tag{})
	fmt.Printf("untagged -> %s (%s)\n", r.Instance.Name, r.Reason)

	strict, _ := fallback.NewPolicy(fallback.WithMode(fallback.Strict))
	strictRouter := routing.NewRouter(reg, strict)
	defer strictRouter.Close()
	_, err := strictRouter.Route(ctx, "reviews", tag.MustParse("v3"))
	fmt.Println(err)
	// Output:
	// gray -> reviews-v2-0 (lane gray, matched)
	// v3 -> reviews-v1-0 (lane prod, noinstances)
	// untagged -> reviews-v1-0 (untagged)
	// graylane: service "reviews", tag "v3": lane "v3" has no instances (noinstances) and strict mode forbids fallback
}

// Explain tells what routing would do for a tag, and why, without routing
// a call: here the dev-alice lane has no instance, dev is draining, and
// the call ends in prod.
func ExampleExplain() {
	policy, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"))
	if err != nil {
		panic(err)
	}
	insts := []registry.Instance{
		{Service: "reviews", Addr: "10.0.0.1:9080", Name: "reviews-v1-0"},
		{Service: "reviews", Addr: "10.0.0.2:9080", Name: "reviews-dev-0", Tag: tag.MustParse("dev"), Health: registry.NotServing},
	}
	e := routing.Explain(policy, "reviews", tag.MustParse("dev-alice"), insts)
	for _, s := range e.Walk {
		fmt.Printf("asked %s: %s\n", s.Lane, s.State)
	}
	fmt.Printf("lane %s (%s), instances:", e.Lane, e.Reason)
	for _, in := range e.Instances {
		fmt.Print(" ", in.Name)
	}
	fmt.Println()
	// Output:
	// asked dev-alice: absent
	// asked dev: notready
	// asked prod: ready
	// lane prod (noinstances), instances: reviews-v1-0
}
