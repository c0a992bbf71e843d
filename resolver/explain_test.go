package resolver_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/internal/routecases"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
)

// TestExplainAgreesWithBalancer: for every case of the table, once the
// channel has connected, the graylane_tag balancer sends a call where
// routing.Explain says: to the instances it lists, with its fallback
// reason, or fails with its error.
func TestExplainAgreesWithBalancer(t *testing.T) {
	for _, c := range routecases.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			f := newFleet(t)
			var insts []registry.Instance
			for i, spec := range c.Instances(func(int) string { return "" }) {
				in := f.start(routecases.Service, spec.Tag.String(), spec.Name, 0)
				if c.Insts[i].NotServing {
					cur := in.reg.Instance()
					cur.Health = registry.NotServing
					require.NoError(t, in.reg.Update(context.Background(), cur))
				}
				insts = append(insts, in.reg.Instance())
			}
			e := routing.Explain(c.Policy, routecases.Service, c.RequestTag(), insts)
			names := map[string]bool{}
			for _, in := range e.Instances {
				names[in.Name] = true
			}
			wantReason := ""
			if e.Reason.IsFallback() {
				wantReason = e.Reason.String()
			}
			agrees := func(r result) bool {
				if e.Err != nil {
					return r.err != nil && status.Convert(r.err).Message() == e.Err.Error()
				}
				return r.err == nil && names[r.served] && r.reason == wantReason
			}
			client := f.dial(routecases.Service, c.Policy)
			// Once every instance Explain lists has served a call (all
			// connected), every call agrees.
			served := map[string]bool{}
			eventually(t, "agreement with "+describe(e), func() result { return call(client, c.Tag) }, func(r result) bool {
				if !agrees(r) {
					clear(served)
					return false
				}
				served[r.served] = true
				return e.Err != nil || len(served) == len(names)
			})
			for range 2 * (len(names) + 1) {
				r := call(client, c.Tag)
				require.True(t, agrees(r), "%v, want %s", r, describe(e))
			}
		})
	}
}

func describe(e routing.Explanation) string {
	if e.Err != nil {
		return "error: " + e.Err.Error()
	}
	s := "lane " + e.Lane + " (" + e.Reason.String() + "):"
	for _, in := range e.Instances {
		s += " " + in.Name
	}
	return s
}
