package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/receipt"
)

const defaultTestTimeout = 20 * time.Second

// testConfig fills in what the tests leave unset: the gateway on a free
// loopback port, a short drain, no logs.
func testConfig(cfg app.Config) app.Config {
	if cfg.GatewayAddr == "" {
		cfg.GatewayAddr = "127.0.0.1:0"
	}
	if cfg.Drain == 0 {
		cfg.Drain = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// startSystem runs the whole demo in this process on loopback ports, with
// the admin page.
func startSystem(t *testing.T, cfg app.Config) *app.System {
	t.Helper()
	cfg = testConfig(cfg)
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	sys, err := app.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		require.NoError(t, sys.Close(ctx))
	})
	return sys
}

// page is one product page fetched through the gateway.
type page struct {
	status int
	body   string
	hops   []receipt.Hop
}

var (
	starRE  = regexp.MustCompile(`data-color="(\w+)" title="(\d) of 5 stars"`)
	podRE   = regexp.MustCompile(`Reviews served by: <u class="podname">([^<]+)</u>`)
	banner  = "GRAY LANE · "
	fullStr = "glyphicon glyphicon-star"
)

// stars lists the ratings shown, as "color:N".
func (p page) stars() []string {
	var out []string
	for _, m := range starRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1]+":"+m[2])
	}
	return out
}

func (p page) reviewsPod() string {
	m := podRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

// anyFailed reports whether a hop of the receipt failed, as when a
// process of the fleet has not registered yet.
func (p page) anyFailed() bool {
	for _, h := range p.hops {
		if h.Error != "" {
			return true
		}
	}
	return false
}

// route renders the receipt as "service@instance(lane)[!fallback]" hops.
func (p page) route() []string {
	var out []string
	for _, h := range p.hops {
		s := h.Service + "@" + h.Instance + "(" + h.Lane + ")"
		if h.Fallback != "" {
			s += "!" + h.Fallback
		}
		if h.Error != "" {
			s = h.Service + " failed"
		}
		out = append(out, s)
	}
	return out
}

// fetch gets a page as get does, failing the test if it cannot.
func fetch(t *testing.T, client *http.Client, rawURL string, header http.Header) page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	p, _, err := get(ctx, client, rawURL, header)
	require.NoError(t, err)
	return p
}

// get fetches a page with its route receipt, within ctx, and says how long
// it took.
func get(ctx context.Context, client *http.Client, rawURL string, header http.Header) (page, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return page{}, 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set(receipt.Header, receipt.Ask)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return page{}, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, time.Since(start), err
	}
	hops, _ := receipt.Parse(resp.Header.Get(receipt.Header))
	return page{status: resp.StatusCode, body: string(b), hops: hops}, time.Since(start), nil
}

func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func scale(t *testing.T, sys *app.System, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	require.NoError(t, sys.Scale(ctx, name, n))
}

// until fetches the page until ok holds: a change in the registry reaches
// the clients' routing tables within milliseconds, not at once.
func until(t *testing.T, what string, get func() page, ok func(page) bool) page {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	var p page
	for time.Now().Before(deadline) {
		if p = get(); ok(p) {
			return p
		}
	}
	t.Fatalf("%s: last page: status %d, route %v, stars %v", what, p.status, p.route(), p.stars())
	return p
}

// TestWalkthrough replays the gray-release walkthrough of the original
// Bookinfo through the gateway, row by row, checking the page and the
// route receipt of every request.
func TestWalkthrough(t *testing.T) {
	sys := startSystem(t, app.Config{})
	client := newClient(t)
	base := sys.GatewayURL() + "/productpage"
	untagged := func() page { return fetch(t, client, base, nil) }
	gray := func() page { return fetch(t, client, base, http.Header{"X-Traffic-Tag": {"gray"}}) }
	grayBaggage := func() page { return fetch(t, client, base, http.Header{"Baggage": {"user=tester,traffic-tag=gray"}}) }

	checkUntagged := func(t *testing.T) {
		p := untagged()
		require.Equal(t, http.StatusOK, p.status)
		assert.Equal(t, []string{"gateway@gateway(prod)", "productpage@productpage-v1-0(prod)", "details@details-v1-0(prod)", "reviews@reviews-v1-0(prod)"}, p.route(),
			"untagged: prod everywhere, reviews-v1 never calls ratings")
		assert.Empty(t, p.stars())
		assert.NotContains(t, p.body, fullStr)
		assert.NotContains(t, p.body, banner)
		assert.Equal(t, "reviews-v1-0", p.reviewsPod())
	}

	t.Run("untagged", checkUntagged)

	t.Run("gray, nothing gray running: everything falls back", func(t *testing.T) {
		for _, get := range []func() page{gray, grayBaggage} {
			p := get()
			assert.Equal(t, []string{
				"gateway@gateway(prod)",
				"productpage@productpage-v1-0(prod)!noinstances",
				"details@details-v1-0(prod)!noinstances",
				"reviews@reviews-v1-0(prod)!noinstances",
			}, p.route())
			assert.Empty(t, p.stars())
			for _, h := range p.hops {
				assert.Equal(t, "gray", h.Tag, "the request keeps its tag on every hop")
			}
			assert.Equal(t, "kept -> gray", p.hops[0].Note, "the edge's decision: a trusted client's tag kept")
		}
	})

	scale(t, sys, "reviews-v2", 1)
	t.Run("gray, reviews-v2 up: black stars, ratings by fallback", func(t *testing.T) {
		for _, get := range []func() page{gray, grayBaggage} {
			p := until(t, "reviews-v2", get, func(p page) bool { return p.reviewsPod() == "reviews-v2-0" })
			assert.Equal(t, []string{
				"gateway@gateway(prod)",
				"productpage@productpage-v1-0(prod)!noinstances",
				"details@details-v1-0(prod)!noinstances",
				"reviews@reviews-v2-0(gray)",
				"ratings@ratings-v1-0(prod)!noinstances",
			}, p.route())
			assert.Equal(t, []string{"black:5", "black:4"}, p.stars())
			assert.Equal(t, 9, strings.Count(p.body, fullStr), "5 and 4 stars: 9 filled")
		}
		checkUntagged(t)
	})

	scale(t, sys, "ratings-v2", 1)
	t.Run("gray, ratings-v2 up: 3 and 2 stars", func(t *testing.T) {
		for _, get := range []func() page{gray, grayBaggage} {
			p := until(t, "ratings-v2", get, func(p page) bool { return len(p.hops) == 5 && p.hops[4].Instance == "ratings-v2-0" })
			assert.Equal(t, []string{
				"gateway@gateway(prod)",
				"productpage@productpage-v1-0(prod)!noinstances",
				"details@details-v1-0(prod)!noinstances",
				"reviews@reviews-v2-0(gray)",
				"ratings@ratings-v2-0(gray)",
			}, p.route())
			assert.Equal(t, []string{"black:3", "black:2"}, p.stars())
		}
		checkUntagged(t)
	})

	scale(t, sys, "productpage-v2", 1)
	t.Run("gray, productpage-v2 up: the gray banner", func(t *testing.T) {
		p := until(t, "productpage-v2", gray, func(p page) bool { return strings.Contains(p.body, banner) })
		assert.Contains(t, p.body, banner+"productpage-v2-0")
		assert.Equal(t, "productpage@productpage-v2-0(gray)", p.route()[1])
		checkUntagged(t)
	})

	scale(t, sys, "reviews-v3", 1)
	t.Run("v3: red stars, ratings from v1", func(t *testing.T) {
		v3 := func() page { return fetch(t, client, base, http.Header{"X-Traffic-Tag": {"v3"}}) }
		p := until(t, "reviews-v3", v3, func(p page) bool { return p.reviewsPod() == "reviews-v3-0" })
		assert.Equal(t, []string{
			"gateway@gateway(prod)",
			"productpage@productpage-v1-0(prod)!noinstances",
			"details@details-v1-0(prod)!noinstances",
			"reviews@reviews-v3-0(v3)",
			"ratings@ratings-v1-0(prod)!noinstances",
		}, p.route())
		assert.Equal(t, []string{"red:5", "red:4"}, p.stars())
		checkUntagged(t)
	})

	t.Run("signed in as jason: tagged gray by the gateway", func(t *testing.T) {
		jason := newClient(t)
		resp, err := jason.PostForm(sys.GatewayURL()+"/login", url.Values{"username": {"jason"}, "passwd": {"x"}})
		require.NoError(t, err)
		resp.Body.Close()
		p := fetch(t, jason, base, nil)
		assert.Contains(t, p.body, "jason")
		assert.Contains(t, p.body, banner)
		assert.Equal(t, "rule 0 (jason-is-gray) -> gray", p.hops[0].Note, "the edge's decision: assigned by the jason rule")
		assert.Equal(t, []string{"black:3", "black:2"}, p.stars())
		for _, h := range p.hops {
			assert.Equal(t, "gray", h.Tag)
		}
	})

	t.Run("gray strict: a missing service fails its hop", func(t *testing.T) {
		require.NoError(t, sys.SetLaneMode("gray", fallback.Strict))
		scale(t, sys, "reviews-v2", 0)
		p := until(t, "strict", gray, func(p page) bool { return strings.Contains(p.body, "Error fetching product reviews") })
		assert.Equal(t, http.StatusOK, p.status)
		assert.Contains(t, p.body, "Error fetching product details", "details has no gray instance: strict fails it")
		assert.Contains(t, p.route(), "details failed")
		assert.Contains(t, p.route(), "reviews failed")
		assert.Contains(t, p.body, `service &#34;reviews&#34;, tag &#34;gray&#34;`, "the route panel names service and tag")
		assert.Contains(t, p.body, "strict mode forbids fallback")

		scale(t, sys, "productpage-v2", 0)
		p = until(t, "gateway refuses", gray, func(p page) bool { return p.status == http.StatusServiceUnavailable })
		assert.Contains(t, p.body, `service "productpage"`)
		assert.Contains(t, p.body, "strict")

		require.NoError(t, sys.SetLaneMode("gray", fallback.Loose))
		p = until(t, "loose again", gray, func(p page) bool { return p.status == http.StatusOK && p.reviewsPod() == "reviews-v1-0" })
		assert.Equal(t, "reviews@reviews-v1-0(prod)!noinstances", p.route()[3])
		checkUntagged(t)
	})
}

// TestUntrustedClientCannotPickALane: a peer outside the trusted list
// gets its tag and route header stripped at the gateway.
func TestUntrustedClientCannotPickALane(t *testing.T) {
	sys := startSystem(t, app.Config{
		Replicas: map[string]int{"reviews-v2": 1},
		Gateway:  app.GatewayConfig{Trusted: []string{}},
	})
	client := newClient(t)
	for range 5 {
		p := fetch(t, client, sys.GatewayURL()+"/productpage", http.Header{"X-Traffic-Tag": {"gray"}})
		require.Equal(t, http.StatusOK, p.status)
		assert.Equal(t, "reviews-v1-0", p.reviewsPod(), "the client's tag was stripped")
		assert.Empty(t, p.hops, "no route receipt for untrusted clients")
	}
}

// TestNoRouting: with routing off, every request, tagged or not, is served
// by the fixed prod instances, even with gray instances up.
func TestNoRouting(t *testing.T) {
	sys := startSystem(t, app.Config{NoRouting: true, Replicas: map[string]int{"reviews-v2": 1}})
	client := newClient(t)
	for _, h := range []http.Header{nil, {"X-Traffic-Tag": {"gray"}}} {
		p := fetch(t, client, sys.GatewayURL()+"/productpage", h)
		require.Equal(t, http.StatusOK, p.status)
		assert.Equal(t, "reviews-v1-0", p.reviewsPod())
		assert.NotContains(t, p.body, "Error fetching")
		for svc, inst := range map[string]string{"details": "details-v1-0", "reviews": "reviews-v1-0"} {
			h, ok := p.hop(svc)
			assert.True(t, ok && h.Instance == inst, "the route shows %s: %v", inst, describe(p.hops))
		}
	}
}

// TestAdminAPI scales a deployment and switches a lane through the JSON
// API, and refuses the same request when another site's page makes a
// browser send it.
func TestAdminAPI(t *testing.T) {
	sys := startSystem(t, app.Config{})
	client := newClient(t)
	post := func(path string, header http.Header) (int, string) {
		req, err := http.NewRequest(http.MethodPost, sys.AdminURL()+path, nil)
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := post("/api/deployments/reviews-v2/scale?replicas=1", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assert.Equal(t, http.StatusForbidden, code, "a cross-site form post is refused")

	code, body := post("/api/deployments/reviews-v2/scale?replicas=2", nil)
	require.Equal(t, http.StatusOK, code, body)
	var deps []app.DeploymentStatus
	resp, err := client.Get(sys.AdminURL() + "/api/deployments")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&deps))
	resp.Body.Close()
	for _, d := range deps {
		if d.Name == "reviews-v2" {
			assert.Equal(t, 2, d.Replicas)
			require.Len(t, d.Instances, 2)
			assert.Equal(t, "gray", d.Instances[0].Lane)
			assert.Equal(t, "serving", d.Instances[0].Health)
		}
	}

	code, body = post("/api/lanes/gray/mode?mode=strict", nil)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"gray"}, sys.StrictLanes())
	code, body = post("/api/lanes/prod/mode?mode=strict", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "base lane")
	code, _ = post("/api/deployments/reviews-v9/scale?replicas=1", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = post("/api/deployments/reviews-v2/scale?replicas=99", nil)
	assert.Equal(t, http.StatusBadRequest, code)
}
