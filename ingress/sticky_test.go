package ingress_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

func stickyRules(t *testing.T, percent string, missing string) *ingress.Rules {
	t.Helper()
	return mustParse(t, fmt.Sprintf(`
rules:
  - name: canary
    lane: gray
    percent: %s
    sticky: {header: x-user-id, missing: %s}
`, percent, missing))
}

func laneOf(rs *ingress.Rules, h http.Header) string {
	return rs.Evaluate(request("GET", "/", h)).Tag.String()
}

func userKey(i int) http.Header { return http.Header{"X-User-Id": {fmt.Sprintf("user-%d", i)}} }

func TestStickyShare(t *testing.T) {
	for _, tt := range []struct {
		percent string
		want    float64
	}{{"10", 0.10}, {"20", 0.20}, {"0.5", 0.005}, {"50", 0.50}} {
		t.Run(tt.percent, func(t *testing.T) {
			rs := stickyRules(t, tt.percent, "none")
			const n = 10000
			gray := 0
			for i := range n {
				if laneOf(rs, userKey(i)) == "gray" {
					gray++
				}
			}
			assert.InDelta(t, tt.want, float64(gray)/n, 0.01, "%d of %d keys in gray", gray, n)
		})
	}
}

func TestStickySameKeySameLane(t *testing.T) {
	rs := stickyRules(t, "10", "none")
	for i := range 50 {
		first := laneOf(rs, userKey(i))
		for range 100 {
			require.Equal(t, first, laneOf(rs, userKey(i)), "key %d", i)
		}
	}
}

// TestStickyRaiseKeepsKeys raises the share from 10% to 20% (and on to
// 100%): no key that was in gray leaves it.
func TestStickyRaiseKeepsKeys(t *testing.T) {
	steps := []string{"10", "20", "35.5", "100"}
	const n = 10000
	in := map[int]bool{}
	for _, p := range steps {
		rs := stickyRules(t, p, "none")
		now := map[int]bool{}
		for i := range n {
			if laneOf(rs, userKey(i)) == "gray" {
				now[i] = true
			}
		}
		for i := range in {
			require.True(t, now[i], "key %d left gray when the share went to %s%%", i, p)
		}
		assert.Greater(t, len(now), len(in))
		in = now
	}
	assert.Len(t, in, n)
}

func TestStickyMissingKey(t *testing.T) {
	none := stickyRules(t, "100", "none")
	assert.Equal(t, "", laneOf(none, nil), "missing: none never matches without a key")
	assert.Equal(t, "", laneOf(none, http.Header{"X-User-Id": {""}}), "an empty key is no key")
	assert.Equal(t, "gray", laneOf(none, userKey(1)))

	random := stickyRules(t, "30", "random")
	gray := 0
	const n = 10000
	for range n {
		if laneOf(random, nil) == "gray" {
			gray++
		}
	}
	assert.InDelta(t, 0.30, float64(gray)/n, 0.03, "missing: random draws each request")
}

func TestPercentWithoutSticky(t *testing.T) {
	for _, tt := range []struct {
		percent string
		want    float64
	}{{"0", 0}, {"25", 0.25}, {"100", 1}} {
		rs := mustParse(t, "rules: [{name: r, lane: gray, percent: "+tt.percent+"}]")
		gray := 0
		const n = 10000
		for range n {
			if laneOf(rs, nil) == "gray" {
				gray++
			}
		}
		assert.InDelta(t, tt.want, float64(gray)/n, 0.03, "percent %s", tt.percent)
	}
}

func TestStickyCookie(t *testing.T) {
	rs := mustParse(t, "rules: [{name: r, lane: gray, percent: 50, sticky: {cookie: uid}}]")
	in, out := 0, 0
	for i := range 200 {
		h := http.Header{"Cookie": {fmt.Sprintf("theme=dark; uid=%d", i)}}
		want := ingress.StickyBucket("gray", fmt.Sprint(i)) < 5000
		got := laneOf(rs, h) == "gray"
		require.Equal(t, want, got, "uid %d", i)
		if got {
			in++
		} else {
			out++
		}
	}
	assert.Positive(t, in)
	assert.Positive(t, out)
}

// TestStickyBucketIsStable pins the bucket function: changing it would move
// users between lanes on every gateway upgrade.
func TestStickyBucketIsStable(t *testing.T) {
	got := []int{
		ingress.StickyBucket("gray", "user-1"),
		ingress.StickyBucket("gray", "user-2"),
		ingress.StickyBucket("blue", "user-1"),
		ingress.StickyBucket("gray", ""),
	}
	assert.Equal(t, []int{1701, 9999, 1198, 3039}, got, "computed independently from the documented definition")
	for _, b := range got {
		assert.GreaterOrEqual(t, b, 0)
		assert.Less(t, b, 10000)
	}
}

// TestStickyLanesIndependent checks that the lane salts the hash: two 10%
// rules of different lanes pick (mostly) different users.
func TestStickyLanesIndependent(t *testing.T) {
	both := 0
	for i := range 10000 {
		k := fmt.Sprintf("user-%d", i)
		if ingress.StickyBucket("gray", k) < 1000 && ingress.StickyBucket("blue", k) < 1000 {
			both++
		}
	}
	assert.InDelta(t, 100, both, 50, "about 1%% of users are in both 10%% shares")
}
