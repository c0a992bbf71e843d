package fallback_test

import (
	"errors"
	"fmt"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// A request tagged dev-alice calls "reviews", which Alice has not deployed:
// the hop falls back along her chain to the dev lane. The request keeps its
// tag, so its next hop returns to dev-alice wherever Alice runs a service.
func ExampleNewPolicy() {
	p, err := fallback.NewPolicy(
		fallback.WithChain("dev-alice", "dev", "prod"),
	)
	if err != nil {
		panic(err)
	}

	// What the caller knows about the lanes of "reviews".
	reviews := map[string]fallback.State{
		"dev":  fallback.Ready,
		"prod": fallback.Ready,
	}
	state := func(lane string) fallback.State { return reviews[lane] }

	d, err := p.Service("reviews").Decide("reviews", tag.MustParse("dev-alice"), state)
	if err != nil {
		panic(err)
	}
	fmt.Printf("lane %s, reason %s, fallback %t\n", d.Lane, d.Reason, d.Reason.IsFallback())
	// Output: lane dev, reason noinstances, fallback true
}

// In strict mode a lane that cannot serve fails the call instead of
// falling back; the error says who, what and why.
func ExampleServicePolicy_Decide_strict() {
	p, err := fallback.NewPolicy(
		fallback.WithService("reviews", fallback.WithMode(fallback.Strict)),
	)
	if err != nil {
		panic(err)
	}
	state := func(lane string) fallback.State {
		if lane == "prod" {
			return fallback.Ready
		}
		return fallback.Absent
	}

	_, err = p.Service("reviews").Decide("reviews", tag.MustParse("gray"), state)
	fmt.Println(err)
	fmt.Println(errors.Is(err, fallback.ErrRejected))

	// Other services keep the default, loose mode.
	d, _ := p.Service("ratings").Decide("ratings", tag.MustParse("gray"), state)
	fmt.Println(d.Lane, d.Reason)
	// Output:
	// graylane: service "reviews", tag "gray": lane "gray" has no instances (noinstances) and strict mode forbids fallback
	// true
	// prod noinstances
}

func ExampleParseJSON() {
	p, err := fallback.ParseJSON([]byte(`{
		"chains": {"dev-alice": ["dev", "prod"]},
		"lanes": {"gray": {"mode": "strict"}},
		"services": {"reviews": {"reasons": ["noinstances"], "failoverTimeout": "250ms"}}
	}`))
	if err != nil {
		panic(err)
	}
	reviews := p.Service("reviews")
	fmt.Println(reviews.Chain("dev-alice"), reviews.Mode("gray"), reviews.FailoverTimeout())
	fmt.Println(reviews.Falls(fallback.Unavailable))

	b, _ := p.MarshalJSON()
	fmt.Println(string(b))

	_, err = fallback.ParseJSON([]byte(`{"chains": {"dev-alice": ["dev"]}}`))
	fmt.Println(err)
	// Output:
	// [dev prod] strict 250ms
	// false
	// {"mode":"loose","base":"prod","reasons":["noinstances","unavailable"],"failoverTimeout":"0s","chains":{"dev-alice":["dev","prod"]},"lanes":{"gray":{"mode":"strict"}},"services":{"reviews":{"reasons":["noinstances"],"failoverTimeout":"250ms"}}}
	// fallback: chain of lane "dev-alice" ["dev"] must end with the base lane "prod"
}
