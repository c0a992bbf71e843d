package productpage_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

// timeoutT is the test-scaled upstream timeout.
const timeoutT = 250 * time.Millisecond

const (
	filledStar = `glyphicon glyphicon-star`
	emptyStar  = `class="star-empty"`
)

func TestHealthAndLanding(t *testing.T) {
	e := newEnv(t, setup{})
	r := e.get(t, "/health")
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "Product page is healthy", r.body)

	for _, path := range []string{"/", "/index.html"} {
		r := e.get(t, path)
		assert.Equal(t, http.StatusOK, r.status, path)
		assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
		assert.Contains(t, r.body, "<title>Simple Bookstore App</title>")
		assert.Contains(t, r.body, `href="/productpage?u=normal"`)
		assert.Contains(t, r.body, `href="/productpage?u=test"`)
	}
	assert.Equal(t, http.StatusNotFound, e.get(t, "/nope").status)
	assert.Empty(t, e.details.all(), "the landing page calls nobody")
}

func TestProductPage(t *testing.T) {
	tests := []struct {
		name    string
		reviews reviews.Version
		ratings ratings.Version
		filled  int
		empty   int
		color   string
		counts  []string // the rating stars, in order, as the aria label says
	}{
		{"reviews v1: no stars", reviews.V1, ratings.V1, 0, 0, "", nil},
		{"reviews v2: black stars", reviews.V2, ratings.V1, 9, 1, "black", []string{"5 of 5 stars", "4 of 5 stars"}},
		{"reviews v2 with ratings v2", reviews.V2, ratings.V2, 5, 5, "black", []string{"3 of 5 stars", "2 of 5 stars"}},
		{"reviews v3: red stars", reviews.V3, ratings.V1, 9, 1, "red", []string{"5 of 5 stars", "4 of 5 stars"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{reviews: tt.reviews, ratings: tt.ratings})
			r := e.get(t, "/productpage")
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
			b := r.body

			assert.Contains(t, b, "<title>Simple Bookstore App</title>")
			assert.Contains(t, b, "The Comedy of Errors")
			assert.Contains(t, b, "William Shakespeare")
			assert.Contains(t, b, `<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">`, "the description is HTML")

			assert.Contains(t, b, "Book Details")
			for _, s := range []string{"<dt>Type:</dt><dd>paperback</dd>", "<dt>Pages:</dt><dd>200</dd>", "<dt>Publisher:</dt><dd>PublisherA</dd>",
				"<dt>Language:</dt><dd>English</dd>", "<dt>ISBN-10:</dt><dd>1234567890</dd>", "<dt>ISBN-13:</dt><dd>123-1234567890</dd>"} {
				assert.Contains(t, b, s)
			}

			assert.Contains(t, b, "Book Reviews")
			assert.Contains(t, b, "Reviewer1")
			assert.Contains(t, b, "Reviewer2")
			assert.Contains(t, b, "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!")
			assert.Contains(t, b, "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.")
			assert.Contains(t, b, "Reviews served by:")
			assert.Contains(t, b, "reviews-"+string(tt.reviews)+"-0")

			assert.Equal(t, tt.filled, strings.Count(b, filledStar))
			assert.Equal(t, tt.empty, strings.Count(b, emptyStar))
			colors := regexp.MustCompile(`class="stars" style="color: (\w+)"`).FindAllStringSubmatch(b, -1)
			if tt.color == "" {
				assert.Empty(t, colors)
			} else {
				require.Len(t, colors, 2)
				for _, c := range colors {
					assert.Equal(t, tt.color, c[1])
				}
			}
			labels := regexp.MustCompile(`aria-label="(\d of 5 stars)"`).FindAllStringSubmatch(b, -1)
			var got []string
			for _, l := range labels {
				got = append(got, l[1])
			}
			assert.Equal(t, tt.counts, got)

			assert.NotContains(t, b, "Error fetching")
			assert.NotContains(t, b, "Ratings service is currently unavailable")
			assert.NotContains(t, b, "GRAY LANE")
			assert.NotContains(t, b, `id="route"`)
			assert.Contains(t, b, `action="login"`, "a sign-in form")
			assert.Contains(t, b, `name="username"`)
			assert.Contains(t, b, `name="passwd"`)
			assert.NotContains(t, b, "<script", "the page needs no JavaScript")
		})
	}
}

func TestProductPageRatingError(t *testing.T) {
	e := newEnv(t, setup{reviews: reviews.V2})
	require.NoError(t, e.ratingsFaults.Set(faults.Fault{Abort: 503}))
	r := e.get(t, "/productpage")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, 2, strings.Count(r.body, "Ratings service is currently unavailable"))
	assert.Zero(t, strings.Count(r.body, filledStar))
	assert.NotContains(t, r.body, "Error fetching product reviews")
}

func TestProductPageZeroStars(t *testing.T) {
	e := newEnv(t, setup{reviews: reviews.V3})
	_, err := e.ratingsClient.Rate(t.Context(), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": 0, "Reviewer2": 4}})
	require.NoError(t, err)
	r := e.get(t, "/productpage")
	assert.Equal(t, 4, strings.Count(r.body, filledStar), "0 stars render nothing")
	assert.Equal(t, 1, strings.Count(r.body, emptyStar))
}

func TestProductPageDetailsFailure(t *testing.T) {
	tests := []struct {
		name  string
		fault faults.Fault
	}{
		{"details down", faults.Fault{Abort: 503}},
		{"details slow", faults.Fault{Delay: 4 * timeoutT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{opts: []productpage.Option{productpage.WithDetailsTimeout(timeoutT)}})
			require.NoError(t, e.detailsFaults.Set(tt.fault))
			start := time.Now()
			r := e.get(t, "/productpage")
			elapsed := time.Since(start)
			require.Equal(t, http.StatusOK, r.status, "the page always answers 200")
			assert.Contains(t, r.body, "Error fetching product details")
			assert.Contains(t, r.body, "Sorry, product details are currently unavailable for this book.")
			assert.NotContains(t, r.body, "<dt>ISBN-10:</dt>")
			assert.Contains(t, r.body, "Reviewer1", "reviews are still shown")
			assert.Less(t, elapsed, 4*timeoutT, "details is not waited for beyond its timeout")
			assert.Len(t, e.details.all(), 1, "details is not retried")
		})
	}
}

func TestProductPageReviewsFailure(t *testing.T) {
	tests := []struct {
		name  string
		fault faults.Fault
	}{
		{"reviews down", faults.Fault{Abort: 503}},
		{"reviews slow", faults.Fault{Delay: 4 * timeoutT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{opts: []productpage.Option{productpage.WithReviewsTimeout(timeoutT)}})
			require.NoError(t, e.reviewsFaults.Set(tt.fault))
			r := e.get(t, "/productpage")
			require.Equal(t, http.StatusOK, r.status)
			assert.Contains(t, r.body, "Error fetching product reviews")
			assert.Contains(t, r.body, "Sorry, product reviews are currently unavailable for this book.")
			assert.NotContains(t, r.body, "Reviews served by:")
			assert.Contains(t, r.body, "<dt>ISBN-10:</dt><dd>1234567890</dd>", "details are still shown")
		})
	}
}

// A reviews delay of 2.5 times the per-attempt timeout: each attempt times
// out, the second one too, and the page gives up after about two timeouts
// with exactly two attempts (as the original gives up after about 6 s on a
// 7 s delay).
func TestProductPageTwoReviewsAttempts(t *testing.T) {
	e := newEnv(t, setup{opts: []productpage.Option{productpage.WithReviewsTimeout(timeoutT)}})
	require.NoError(t, e.reviewsFaults.Set(faults.Fault{Delay: timeoutT * 5 / 2}))

	start := time.Now()
	r := e.get(t, "/productpage")
	elapsed := time.Since(start)

	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, "Error fetching product reviews")
	e.reviews.wait(t, 2)
	assert.Len(t, e.reviews.all(), 2, "exactly two attempts")
	assert.GreaterOrEqual(t, elapsed, 2*timeoutT)
	assert.Less(t, elapsed, 5*timeoutT, "each attempt ends at its timeout, not when reviews answers")
	assert.Contains(t, e.get(t, "/metrics").body, `request_result_total{destination_app="reviews",response_code="500"} 1`+"\n", "two attempts count as one call")
}

func TestProductPageRetriesOnceThenSucceeds(t *testing.T) {
	e := newEnv(t, setup{})
	require.NoError(t, e.reviewsFaults.Set(faults.Fault{Abort: 503, Times: 1}))
	r := e.get(t, "/productpage")
	assert.NotContains(t, r.body, "Error fetching product reviews")
	assert.Contains(t, r.body, "Reviews served by:")
	assert.Len(t, e.reviews.all(), 2)
}

func TestReviewsAttemptsOption(t *testing.T) {
	e := newEnv(t, setup{opts: []productpage.Option{productpage.WithReviewsAttempts(1)}})
	require.NoError(t, e.reviewsFaults.Set(faults.Fault{Abort: 503}))
	e.get(t, "/productpage")
	assert.Len(t, e.reviews.all(), 1)
}

func TestHeadersForwarded(t *testing.T) {
	inbound := http.Header{
		"X-Request-Id":      {"req-42"},
		"Traceparent":       {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":        {"vendor=x"},
		"X-B3-Traceid":      {"80f198ee56343ba864fe8b2a57d3eff7"},
		"X-B3-Spanid":       {"e457b5a2e4d86bd1"},
		"X-B3-Parentspanid": {"05e3ac9a4f6e3b90"},
		"X-B3-Sampled":      {"1"},
		"X-B3-Flags":        {"0"},
		"B3":                {"80f198ee56343ba8-e457b5a2e4d86bd1-1"},
		"Authorization":     {"Bearer t"},
		"User-Agent":        {"bookinfo-test/1"},
		"End-User":          {"mallory"},
		"X-Unrelated":       {"no"},
	}
	forwarded := []string{"X-Request-Id", "Traceparent", "Tracestate", "X-B3-Traceid", "X-B3-Spanid",
		"X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags", "B3", "Authorization"}

	tests := []struct {
		name    string
		cookie  string
		endUser []string
	}{
		{"anonymous: an inbound end-user is dropped", "", nil},
		{"logged in: end-user is the user", "jason", []string{"jason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{reviews: reviews.V2})
			h := inbound.Clone()
			if tt.cookie != "" {
				h.Set("Cookie", "user="+tt.cookie)
			}
			e.do(t, nil, http.MethodGet, "/productpage", h, nil)
			e.do(t, nil, http.MethodGet, "/api/v1/products/0/ratings", h, nil)

			d := e.details.last(t)
			rv := e.reviews.last(t)
			rts := e.ratings.all()
			require.Len(t, rts, 2, "through reviews, then from the API")
			for name, got := range map[string]http.Header{"details": d, "reviews": rv, "ratings via reviews": rts[0], "ratings": rts[1]} {
				for _, k := range forwarded {
					assert.Equal(t, inbound.Values(k), vals(got, k), "%s: %s", name, k)
				}
				assert.Equal(t, tt.endUser, vals(got, "End-User"), "%s: end-user", name)
				assert.Empty(t, vals(got, "X-Unrelated"), name)
				if tt.cookie != "" {
					assert.Equal(t, []string{"user=" + tt.cookie}, vals(got, "Cookie"), "%s: cookie", name)
				}
			}
			assert.Equal(t, []string{"bookinfo-test/1"}, d.Values("User-Agent"), "user-agent goes on over HTTP")
		})
	}
}

type ctxKey struct{}

// TestOutboundCallsUseTheRequestContext checks that what an inbound
// middleware puts into the request's context (graylane's tag) reaches the
// outbound calls.
func TestOutboundCallsUseTheRequestContext(t *testing.T) {
	var seenDetails, seenReviews, seenRatings []any
	e := newEnv(t, setup{
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "gray")))
			})
		},
		detailsTransport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				seenDetails = append(seenDetails, r.Context().Value(ctxKey{}))
				return next.RoundTrip(r)
			})
		},
		wrapReviews: func(c bookinfopb.ReviewsClient) bookinfopb.ReviewsClient {
			return reviewsSpy{c, func(ctx context.Context) { seenReviews = append(seenReviews, ctx.Value(ctxKey{})) }}
		},
		opts: []productpage.Option{productpage.WithRoute(func(ctx context.Context) []productpage.Hop {
			seenRatings = append(seenRatings, ctx.Value(ctxKey{}))
			return nil
		})},
	})
	e.get(t, "/productpage")
	e.get(t, "/api/v1/products/0")
	assert.Equal(t, []any{"gray", "gray"}, seenDetails)
	assert.Equal(t, []any{"gray"}, seenReviews)
	assert.Equal(t, []any{"gray"}, seenRatings, "the route hook gets the request's context")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type reviewsSpy struct {
	bookinfopb.ReviewsClient
	seen func(context.Context)
}

func (s reviewsSpy) GetReviews(ctx context.Context, in *bookinfopb.GetReviewsRequest, opts ...grpc.CallOption) (*bookinfopb.ProductReviews, error) {
	s.seen(ctx)
	return s.ReviewsClient.GetReviews(ctx, in, opts...)
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t, setup{})
	c := e.client(t)

	r := e.do(t, c, http.MethodPost, "/login", http.Header{"Referer": {e.pp.URL + "/productpage?u=test"}},
		url.Values{"username": {"jason"}, "passwd": {"anything"}})
	assert.Equal(t, http.StatusFound, r.status)
	assert.Equal(t, "/productpage?u=test", r.header.Get("Location"))
	cookies := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, "user", cookies[0].Name)
	assert.Equal(t, "jason", cookies[0].Value, "the plain user name, for the gateway to match")

	r = e.do(t, c, http.MethodGet, "/productpage", nil, nil)
	assert.Contains(t, r.body, `<strong class="username">jason</strong>`)
	assert.Contains(t, r.body, `href="logout"`)
	assert.NotContains(t, r.body, `action="login"`)
	assert.Equal(t, []string{"jason"}, e.details.last(t).Values("End-User"))

	r = e.do(t, c, http.MethodGet, "/logout", http.Header{"Referer": {e.pp.URL + "/productpage"}}, nil)
	assert.Equal(t, http.StatusFound, r.status)
	assert.Equal(t, "/productpage", r.header.Get("Location"))

	r = e.do(t, c, http.MethodGet, "/productpage", nil, nil)
	assert.NotContains(t, r.body, "jason")
	assert.Contains(t, r.body, `action="login"`)
	assert.Empty(t, e.details.last(t).Values("End-User"))
}

func TestLoginRedirects(t *testing.T) {
	tests := []struct {
		name    string
		referer string
		want    string
	}{
		{"no referer", "", "/productpage"},
		{"same site", "http://127.0.0.1:9080/productpage?u=normal", "/productpage?u=normal"},
		{"another site keeps only the path", "https://elsewhere.example/productpage", "/productpage"},
		{"protocol-relative path", "http://127.0.0.1:9080//elsewhere.example/x", "/productpage"},
		{"garbage", "::not a url", "/productpage"},
		{"landing page", "http://127.0.0.1:9080/", "/"},
	}
	e := newEnv(t, setup{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.referer != "" {
				h.Set("Referer", tt.referer)
			}
			r := e.do(t, e.client(t), http.MethodPost, "/login", h, url.Values{"username": {"jason"}})
			assert.Equal(t, http.StatusFound, r.status)
			assert.Equal(t, tt.want, r.header.Get("Location"))
			r = e.do(t, e.client(t), http.MethodGet, "/logout", h, nil)
			assert.Equal(t, http.StatusFound, r.status)
			assert.Equal(t, tt.want, r.header.Get("Location"))
		})
	}
}

func TestLoginUserNames(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // "" : logged out
	}{
		{"plain", "jason", "jason"},
		{"trimmed of what a cookie cannot hold", ` ja"so;n,\ `, "jason"},
		{"empty", "", ""},
		{"only spaces", "   ", ""},
		{"too long", strings.Repeat("a", 100), strings.Repeat("a", 64)},
		{"HTML is escaped on the page", "<b>x</b>", "<b>x</b>"},
	}
	e := newEnv(t, setup{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t)
			e.do(t, c, http.MethodPost, "/login", nil, url.Values{"username": {tt.input}})
			r := e.do(t, c, http.MethodGet, "/productpage", nil, nil)
			if tt.want == "" {
				assert.Contains(t, r.body, `action="login"`)
				return
			}
			assert.NotContains(t, r.body, "<b>x</b>")
			assert.Equal(t, []string{tt.want}, e.details.last(t).Values("End-User"))
		})
	}
}

func TestGrayBanner(t *testing.T) {
	tests := []struct {
		gray bool
		want bool
	}{{false, false}, {true, true}}
	for _, tt := range tests {
		e := newEnv(t, setup{opts: []productpage.Option{productpage.WithGray(tt.gray), productpage.WithInstance("productpage-v2-0")}})
		for _, path := range []string{"/productpage", "/"} {
			b := e.get(t, path).body
			assert.Equal(t, tt.want, strings.Contains(b, "GRAY LANE · productpage-v2-0"), "gray %v %s", tt.gray, path)
			assert.Contains(t, b, "productpage-v2-0", "the instance is named on every page")
		}
	}
}

func TestRoutePanel(t *testing.T) {
	hops := []productpage.Hop{
		{Service: "productpage", Instance: "productpage-v1-0", Lane: "prod", Tag: "gray", Fallback: "noinstances"},
		{Service: "details", Instance: "details-v1-0", Lane: "", Tag: "gray", Fallback: "noinstances", From: "productpage-v1-0"},
		{Service: "reviews", Instance: "reviews-v2-0", Lane: "gray", Tag: "gray", From: "productpage-v1-0"},
	}
	e := newEnv(t, setup{opts: []productpage.Option{productpage.WithRoute(func(context.Context) []productpage.Hop { return hops })}})
	b := e.get(t, "/productpage").body
	require.Contains(t, b, `id="route"`)
	panel := b[strings.Index(b, `id="route"`):]
	items := regexp.MustCompile(`(?s)<li>(.*?)</li>`).FindAllStringSubmatch(panel, -1)
	require.Len(t, items, 3)
	text := func(s string) string {
		return strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, "")), " ")
	}
	assert.Equal(t, "productpage → productpage-v1-0 lane prod fallback: noinstances tag gray", text(items[0][1]))
	assert.Equal(t, "details → details-v1-0 lane prod fallback: noinstances tag gray, called by productpage-v1-0", text(items[1][1]))
	assert.Equal(t, "reviews → reviews-v2-0 lane gray tag gray, called by productpage-v1-0", text(items[2][1]))

	e = newEnv(t, setup{opts: []productpage.Option{productpage.WithRoute(func(context.Context) []productpage.Hop { return nil })}})
	b = e.get(t, "/productpage").body
	assert.Contains(t, b, `id="route"`)
	assert.Contains(t, b, "No hops recorded for this request.")
}
