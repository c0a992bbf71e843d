package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/examples/bookinfo/loadgen"
)

// TestLaneMap drives the admin page's lane map in headless Chromium while
// the load generator runs, with the gray lane partly up (reviews-v2 only)
// and a little v3 traffic with reviews-v3 up: the cells show the rates
// that landed in each lane, and the fallbacks appear as arrows with their
// reason. The screenshot goes to the artifacts, and to $LANEMAP_SCREENSHOT
// when set (docs/lane-map.png is made that way).
func TestLaneMap(t *testing.T) {
	exe := browserPath(t)
	sys := startSystem(t, app.Config{Replicas: map[string]int{"reviews-v2": 1, "reviews-v3": 1}})
	shots := artifactDir(t)

	loadCtx, stopLoad := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, l := range []loadgen.Config{
		{URL: sys.GatewayURL() + "/productpage", Rate: 30, Duration: time.Minute, Tagged: 0.5, Tag: "gray"},
		{URL: sys.GatewayURL() + "/productpage", Rate: 6, Duration: time.Minute, Tagged: 1, Tag: "v3"},
	} {
		go func() {
			_, err := loadgen.Run(loadCtx, l)
			assert.NoError(t, err)
			done <- struct{}{}
		}()
	}
	defer func() {
		stopLoad()
		<-done
		<-done
	}()

	ctx := newBrowser(t, exe, 1300, 900)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(sys.AdminURL()+"/"),
		chromedp.WaitVisible(chromedp.ID(`lanemap`)),
	))
	// The map redraws every second; wait until the rates of the load show.
	var cell = func(id string) (float64, bool) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){const e=document.getElementById(`+strconv.Quote(id)+`);return e?e.getAttribute('data-rate'):''})()`))
		require.NoError(t, err)
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	require.Eventually(t, func() bool {
		gray, ok1 := cell("cell-reviews-gray")
		v3, ok2 := cell("cell-reviews-v3")
		prod, ok3 := cell("cell-productpage-prod")
		return ok1 && ok2 && ok3 && gray > 0 && v3 > 0 && prod > 0
	}, defaultTestTimeout, 100*time.Millisecond, "the rates of the load on the map")

	type arrow struct{ Service, From, To, Reason string }
	arrows, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('path.fallback')].map(p => ({Service: p.dataset.service, From: p.dataset.from, To: p.dataset.to, Reason: p.dataset.reason})))`))
	require.NoError(t, err)
	var got []arrow
	require.NoError(t, json.Unmarshal([]byte(arrows), &got))
	assert.Subset(t, got, []arrow{
		{"productpage", "gray", "prod", "noinstances"},
		{"details", "gray", "prod", "noinstances"},
		{"ratings", "gray", "prod", "noinstances"},
		{"productpage", "v3", "prod", "noinstances"},
		{"ratings", "v3", "prod", "noinstances"},
	}, "fallbacks of the lanes partly up")
	for _, a := range got {
		assert.NotEqual(t, "reviews", a.Service, "reviews serves both lanes itself")
	}
	empty, ok := cell("cell-ratings-gray")
	assert.True(t, ok)
	assert.Zero(t, empty, "nothing lands where no instance runs")

	buf, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`.lanemap-wrap`)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "lane-map.png"), buf, 0o644))
	if dst := os.Getenv("LANEMAP_SCREENSHOT"); dst != "" {
		require.NoError(t, os.WriteFile(dst, buf, 0o644))
	}
}
