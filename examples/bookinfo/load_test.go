package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/examples/bookinfo/loadgen"
)

// TestScaleUnderLoad scales reviews-v2 and ratings-v2 up and down five
// times while 100 requests/s of mixed traffic go through the gateway for
// 20 s: no request fails, and no untagged request ever reaches a gray
// instance.
func TestScaleUnderLoad(t *testing.T) {
	sys := startSystem(t, app.Config{Drain: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const duration = 20 * time.Second
	results := make(chan loadgen.Result, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{
			URL: sys.GatewayURL() + "/productpage", Rate: 100, Duration: duration,
			Tagged: 0.5, Route: true, PageErrors: true,
		})
		assert.NoError(t, err)
		results <- res
	}()

	steps := time.NewTicker(duration / 11) // pace: ten scaling steps within the run
	defer steps.Stop()
	for round := range 5 {
		for _, n := range []int{1, 0} {
			<-steps.C
			for _, d := range []string{"reviews-v2", "ratings-v2"} {
				require.NoError(t, sys.Scale(ctx, d, n), "round %d", round)
			}
		}
	}
	res := <-results
	var sb strings.Builder
	res.Print(&sb)
	t.Log("\n" + sb.String())

	assert.Zero(t, res.Errors, "failed requests: %v", res.ErrorSamples)
	assert.Zero(t, res.Leaks, "untagged requests served by a gray instance")
	assert.GreaterOrEqual(t, res.Requests, 1800, "about 100 requests/s for 20 s")
	gray := res.Served["gray"]
	assert.NotZero(t, gray["reviews-v2-0"]+gray["reviews-v2-1"]+gray["reviews-v2-2"]+gray["reviews-v2-3"]+gray["reviews-v2-4"],
		"gray requests reached reviews-v2 while it was up: %v", gray)
	for inst := range res.Served["untagged"] {
		assert.NotContains(t, inst, "-v2-", "untagged request served by %s", inst)
		assert.NotContains(t, inst, "-v3-", "untagged request served by %s", inst)
	}
}
