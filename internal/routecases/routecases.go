// Package routecases is a table of routing situations, for the tests that
// check that routing.Explain agrees with the Router (package routing) and
// with the gRPC balancer (package resolver): each case is a set of
// instances of one service, a policy and a requested tag.
package routecases

import (
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Service is the name of the service of every case.
const Service = "svc"

// Inst is one instance of a case.
type Inst struct {
	Name       string
	Lane       string // "" for the base lane
	NotServing bool   // the registry says it is not serving
}

// Case is one routing situation.
type Case struct {
	Name   string
	Policy *fallback.Policy // nil: fallback.Default()
	Tag    string           // "" untagged
	Insts  []Inst
}

// Instances returns the case's instances of Service, at the addresses addr
// gives (one per instance, in order).
func (c Case) Instances(addr func(i int) string) []registry.Instance {
	out := make([]registry.Instance, len(c.Insts))
	for i, in := range c.Insts {
		out[i] = registry.Instance{Service: Service, Addr: addr(i), Name: in.Name}
		if in.Lane != "" {
			out[i].Tag = tag.MustParse(in.Lane)
		}
		if in.NotServing {
			out[i].Health = registry.NotServing
		}
	}
	return out
}

// RequestTag returns the case's tag (the zero Tag for an untagged case).
func (c Case) RequestTag() tag.Tag {
	if c.Tag == "" {
		return tag.Tag{}
	}
	return tag.MustParse(c.Tag)
}

func must(p *fallback.Policy, err error) *fallback.Policy {
	if err != nil {
		panic(err)
	}
	return p
}

// Cases returns the table. Every case has at least one instance: a service
// without any is answered differently by the Router (an error at once)
// and by gRPC (calls wait for an instance).
func Cases() []Case {
	prod := Inst{Name: "prod-0"}
	prod1 := Inst{Name: "prod-1"}
	gray := Inst{Name: "gray-0", Lane: "gray"}
	grayDown := Inst{Name: "gray-0", Lane: "gray", NotServing: true}
	dev := Inst{Name: "dev-0", Lane: "dev"}
	devDown := Inst{Name: "dev-0", Lane: "dev", NotServing: true}
	chains := must(fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod")))
	strictGray := must(fallback.NewPolicy(fallback.WithLaneMode("gray", fallback.Strict)))
	strictAll := must(fallback.NewPolicy(fallback.WithMode(fallback.Strict)))
	onlyNoInstances := must(fallback.NewPolicy(fallback.WithReasons(fallback.NoInstances)))
	chainNoInstances := must(fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"), fallback.WithReasons(fallback.NoInstances)))
	return []Case{
		{Name: "untagged", Insts: []Inst{prod, gray}},
		{Name: "untagged, two in prod", Insts: []Inst{prod, prod1, gray}},
		{Name: "matched", Tag: "gray", Insts: []Inst{prod, gray}},
		{Name: "prod by name", Tag: "prod", Insts: []Inst{prod, gray}},
		{Name: "noinstances", Tag: "gray", Insts: []Inst{prod, dev}},
		{Name: "unavailable", Tag: "gray", Insts: []Inst{prod, grayDown}},
		{Name: "unknown tag", Tag: "no-such-lane", Insts: []Inst{prod, gray}},
		{Name: "chain, first step serves", Policy: chains, Tag: "dev-alice", Insts: []Inst{prod, dev}},
		{Name: "chain, first step unavailable", Policy: chains, Tag: "dev-alice", Insts: []Inst{prod, devDown}},
		{Name: "chain, first step absent", Policy: chains, Tag: "dev-alice", Insts: []Inst{prod, gray}},
		{Name: "chain, own lane serves", Policy: chains, Tag: "dev-alice", Insts: []Inst{prod, {Name: "alice-0", Lane: "dev-alice"}, dev}},
		{Name: "chain, step not allowed", Policy: chainNoInstances, Tag: "dev-alice", Insts: []Inst{prod, devDown}},
		{Name: "strict lane, noinstances", Policy: strictGray, Tag: "gray", Insts: []Inst{prod}},
		{Name: "strict lane, unavailable", Policy: strictGray, Tag: "gray", Insts: []Inst{prod, grayDown}},
		{Name: "strict lane, matched", Policy: strictGray, Tag: "gray", Insts: []Inst{prod, gray}},
		{Name: "strict lane, other lane loose", Policy: strictGray, Tag: "v3", Insts: []Inst{prod, gray}},
		{Name: "strict, unknown tag", Policy: strictAll, Tag: "made-up", Insts: []Inst{prod}},
		{Name: "strict, untagged", Policy: strictAll, Insts: []Inst{prod, gray}},
		{Name: "reason not allowed", Policy: onlyNoInstances, Tag: "gray", Insts: []Inst{prod, grayDown}},
		{Name: "base unavailable, untagged", Insts: []Inst{{Name: "prod-0", NotServing: true}, gray}},
		{Name: "base unavailable, fallback", Tag: "v3", Insts: []Inst{{Name: "prod-0", NotServing: true}, gray}},
		{Name: "base absent", Tag: "dev", Insts: []Inst{gray}},
		{Name: "all not serving", Tag: "gray", Insts: []Inst{{Name: "prod-0", NotServing: true}, grayDown}},
	}
}
