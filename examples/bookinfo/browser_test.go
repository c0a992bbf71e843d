package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// browserPath finds Chromium. In CI (CI=true) a missing browser fails the
// test; elsewhere it skips it.
func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found, and CI=true: .ci/run installs the Debian package chromium")
	}
	t.Skip("no Chromium found; install the chromium package to run the browser test")
	return ""
}

// artifactDir is where the test saves its screenshots: $ARTIFACTS_DIR, or
// artifacts/browser at the top of the repository.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "browser")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// newBrowser starts headless Chromium for the test, with a window of w×h,
// and returns its context, which times out after 90 s; Cleanup stops it.
func newBrowser(t *testing.T, exe string, w, h int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(w, h),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(browser)) // starts the browser, with no timeout on it
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestBrowser drives the demo in headless Chromium the way a person would:
// the page as an anonymous user and as jason, signing in and out, and
// scaling reviews-v2 with a click on the admin page.
func TestBrowser(t *testing.T) {
	exe := browserPath(t)
	sys := startSystem(t, app.Config{})
	shots := artifactDir(t)

	ctx := newBrowser(t, exe, 1200, 1100)

	page := sys.GatewayURL() + "/productpage"
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), buf, 0o644))
	}
	stars := func() int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.glyphicon-star').length`))
		require.NoError(t, err)
		return n
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return s
	}

	// Anonymous: prod, no stars, the route panel shows prod instances.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#route`)),
	))
	shot("1-anonymous.png")
	assert.Zero(t, stars())
	route := text(`#route`)
	assert.Contains(t, route, "productpage-v1-0")
	assert.Contains(t, route, "reviews-v1-0")
	assert.NotContains(t, route, "fallback")

	// Sign in as jason: the gateway tags him gray; nothing gray runs yet.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`form.sign-in input[name=username]`), "jason"),
		chromedp.Submit(chromedp.CSS(`form.sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`.username`)),
	))
	shot("2-jason-fallback.png")
	assert.Equal(t, "jason", text(`.username`))
	assert.Zero(t, stars())
	route = text(`#route`)
	assert.Contains(t, route, "tag gray")
	assert.Contains(t, route, "fallback: noinstances")

	// Scale reviews-v2 up with a click on the admin page.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(sys.AdminURL()+"/"),
		chromedp.WaitVisible(chromedp.ID(`up-reviews-v2`)),
		chromedp.Click(chromedp.ID(`up-reviews-v2`)),
		chromedp.WaitVisible(chromedp.ID(`msg`)),
	))
	shot("3-admin-scaled.png")
	assert.Equal(t, "1", strings.TrimSpace(text(`#dep-reviews-v2 .replicas`)))
	assert.Contains(t, text(`#dep-reviews-v2`), "reviews-v2-0")

	// Jason now gets black stars from reviews-v2; ratings fall back to v1.
	deadline := time.Now().Add(defaultTestTimeout)
	for {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#route`))))
		if stars() > 0 || time.Now().After(deadline) {
			break
		}
	}
	shot("4-jason-black-stars.png")
	assert.Equal(t, 9, stars(), "5 and 4 black stars")
	color, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`.stars`), "data-color"))
	require.NoError(t, err)
	assert.Equal(t, "black", color.Value)
	route = text(`#route`)
	assert.Contains(t, route, "reviews-v2-0")
	assert.Contains(t, route, "lane gray")

	// Sign out: back to prod.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a.sign-out`)),
		chromedp.WaitVisible(chromedp.CSS(`form.sign-in`)),
	))
	shot("5-signed-out.png")
	assert.Zero(t, stars())
	t.Logf("screenshots in %s", shots)
}
