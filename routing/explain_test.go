package routing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/routecases"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

func caseAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 1000+i) }

func addrsOf(insts []registry.Instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.Addr
	}
	return out
}

// TestExplainAgreesWithRouter: for every case of the table, a Router over
// a registry holding the case's instances routes as Explain says: the
// same lane and reason, the same error, and calls spread over exactly the
// instances Explain lists.
func TestExplainAgreesWithRouter(t *testing.T) {
	for _, c := range routecases.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			insts := c.Instances(caseAddr)
			reg := registry.NewMemory()
			defer reg.Close()
			registerAll(t, reg, insts...)
			r := routing.NewRouter(reg, c.Policy)
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()

			e := routing.Explain(c.Policy, routecases.Service, c.RequestTag(), insts)
			assert.Equal(t, c.Tag, e.Tag)
			served := map[string]bool{}
			for range 2 * (len(e.Instances) + 1) {
				route, err := r.Route(ctx, routecases.Service, c.RequestTag())
				if e.Err != nil {
					require.Error(t, err)
					assert.Equal(t, e.Err.Error(), err.Error())
					assert.Empty(t, e.Lane)
					assert.Empty(t, e.Instances)
					continue
				}
				require.NoError(t, err)
				assert.Equal(t, e.Lane, route.Lane)
				assert.Equal(t, e.Reason, route.Reason)
				served[route.Instance.Addr] = true
			}
			if e.Err == nil {
				want := map[string]bool{}
				for _, a := range addrsOf(e.Instances) {
					want[a] = true
				}
				assert.Equal(t, want, served, "the calls go to the instances Explain lists")
			}
			require.NotEmpty(t, e.Walk)
			want := c.Tag
			if want == "" {
				want = c.Policy.Base()
			}
			assert.Equal(t, want, e.Walk[0].Lane, "the walk starts at the requested lane")
		})
	}
}

func TestExplainWalk(t *testing.T) {
	chains, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"))
	require.NoError(t, err)
	strict, err := fallback.NewPolicy(fallback.WithLaneMode("gray", fallback.Strict))
	require.NoError(t, err)
	insts := []registry.Instance{
		{Service: "svc", Addr: "10.0.0.2:80", Name: "prod-1"},
		{Service: "svc", Addr: "10.0.0.1:80", Name: "prod-0"},
		{Service: "svc", Addr: "10.0.0.3:80", Name: "dev-0", Tag: tag.MustParse("dev"), Health: registry.NotServing},
		{Service: "other", Addr: "10.0.0.9:80", Name: "other-0", Tag: tag.MustParse("dev-alice")},
	}

	e := routing.Explain(chains, "svc", tag.MustParse("dev-alice"), insts)
	require.NoError(t, e.Err)
	assert.Equal(t, "prod", e.Lane)
	assert.Equal(t, fallback.NoInstances, e.Reason, "the reason of the requested lane")
	assert.Equal(t, []routing.Step{{"dev-alice", fallback.Absent}, {"dev", fallback.NotReady}, {"prod", fallback.Ready}}, e.Walk)
	assert.Equal(t, []string{"10.0.0.1:80", "10.0.0.2:80"}, addrsOf(e.Instances), "sorted by address; other services ignored")
	require.Len(t, e.Lanes, 2)
	assert.Equal(t, routing.LaneStatus{Lane: "prod", State: fallback.Ready, Instances: e.Instances, Ready: 2}, e.Lanes[0])
	assert.Equal(t, "dev", e.Lanes[1].Lane)
	assert.Equal(t, fallback.NotReady, e.Lanes[1].State)
	assert.Equal(t, 0, e.Lanes[1].Ready)

	e = routing.Explain(nil, "svc", tag.Tag{}, insts)
	require.NoError(t, e.Err)
	assert.Equal(t, "prod", e.Lane)
	assert.Equal(t, fallback.Untagged, e.Reason)
	assert.Equal(t, []routing.Step{{"prod", fallback.Ready}}, e.Walk)

	e = routing.Explain(strict, "svc", tag.MustParse("gray"), insts)
	require.Error(t, e.Err)
	assert.True(t, errors.Is(e.Err, fallback.ErrRejected))
	assert.Equal(t, fallback.NoInstances, e.Reason)
	assert.Empty(t, e.Lane)
	assert.Equal(t, []routing.Step{{"gray", fallback.Absent}}, e.Walk)

	e = routing.Explain(nil, "nothing", tag.MustParse("gray"), insts)
	assert.ErrorIs(t, e.Err, routing.ErrUnknownService)
	assert.ErrorIs(t, e.Err, fallback.ErrNoInstance)
	assert.Empty(t, e.Walk)
	assert.Empty(t, e.Lanes)
}

func TestLanes(t *testing.T) {
	insts := []registry.Instance{
		{Service: "svc", Addr: "10.0.0.3:80", Tag: tag.MustParse("gray"), Health: registry.NotServing},
		{Service: "svc", Addr: "10.0.0.2:80", Tag: tag.MustParse("gray")},
		{Service: "svc", Addr: "10.0.0.4:80", Tag: tag.MustParse("a")},
		{Service: "svc", Addr: "10.0.0.1:80"},
	}
	got := routing.Lanes("", insts)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"prod", "a", "gray"}, []string{got[0].Lane, got[1].Lane, got[2].Lane}, "base first, then by name")
	assert.Equal(t, []string{"10.0.0.2:80", "10.0.0.3:80"}, addrsOf(got[2].Instances))
	assert.Equal(t, 1, got[2].Ready)
	assert.Equal(t, fallback.Ready, got[2].State)
	assert.Empty(t, routing.Lanes("main", nil))
	assert.Equal(t, "main", routing.Lanes("main", insts[3:])[0].Lane)
}
