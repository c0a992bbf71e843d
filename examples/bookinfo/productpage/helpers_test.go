package productpage_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/details"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/internal/grpctest"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

// recorder keeps what a backend received: the headers of each HTTP
// request or the metadata of each gRPC call, and a signal per arrival.
type recorder struct {
	mu       sync.Mutex
	headers  []http.Header
	arrivals chan struct{}
}

func newRecorder() *recorder { return &recorder{arrivals: make(chan struct{}, 100)} }

func (r *recorder) add(h http.Header) {
	r.mu.Lock()
	r.headers = append(r.headers, h)
	r.mu.Unlock()
	r.arrivals <- struct{}{}
}

func (r *recorder) all() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

func (r *recorder) last(t *testing.T) http.Header {
	t.Helper()
	all := r.all()
	require.NotEmpty(t, all, "the backend got no request")
	return all[len(all)-1]
}

// wait blocks until n requests have arrived since the last wait.
func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for range n {
		select {
		case <-r.arrivals:
		case <-timer.C:
			t.Fatalf("waited for %d requests", n)
		}
	}
}

func (r *recorder) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		r.add(http.Header(md.Copy()))
		return h(ctx, req)
	}
}

// env is productpage with real details, reviews and ratings behind it, all
// on loopback.
type env struct {
	pp *httptest.Server

	details, reviews, ratings                   *recorder
	detailsFaults, reviewsFaults, ratingsFaults *faults.Switch
	ratingsClient                               bookinfopb.RatingsClient
}

type setup struct {
	reviews reviews.Version // default V1
	ratings ratings.Version // default V1
	opts    []productpage.Option
	// wrap, when set, wraps productpage.
	wrap func(http.Handler) http.Handler
	// wrapReviews and detailsTransport, when set, wrap the reviews client
	// and the transport to details that productpage uses.
	wrapReviews      func(bookinfopb.ReviewsClient) bookinfopb.ReviewsClient
	detailsTransport func(http.RoundTripper) http.RoundTripper
	// detailsURL, when set, replaces the URL of the real details server.
	detailsURL string
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	if s.reviews == "" {
		s.reviews = reviews.V1
	}
	if s.ratings == "" {
		s.ratings = ratings.V1
	}
	e := &env{
		details: newRecorder(), reviews: newRecorder(), ratings: newRecorder(),
		detailsFaults: new(faults.Switch), reviewsFaults: new(faults.Switch), ratingsFaults: new(faults.Switch),
	}

	dh := details.New(details.WithFaults(e.detailsFaults))
	ds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.details.add(r.Header.Clone())
		dh.ServeHTTP(w, r)
	}))
	t.Cleanup(ds.Close)

	rtsvc, err := ratings.New(s.ratings, ratings.WithFaults(e.ratingsFaults))
	require.NoError(t, err)
	rtcc := grpctest.Serve(t, func(g *grpc.Server) { rtsvc.Register(g) }, grpc.UnaryInterceptor(e.ratings.interceptor()))
	e.ratingsClient = bookinfopb.NewRatingsClient(rtcc)

	rvsvc, err := reviews.New(s.reviews,
		reviews.WithRatings(e.ratingsClient),
		reviews.WithInstance("reviews-"+string(s.reviews)+"-0"),
		reviews.WithFaults(e.reviewsFaults))
	require.NoError(t, err)
	rvcc := grpctest.Serve(t, func(g *grpc.Server) { rvsvc.Register(g) }, grpc.UnaryInterceptor(e.reviews.interceptor()))
	var rc bookinfopb.ReviewsClient = bookinfopb.NewReviewsClient(rvcc)
	if s.wrapReviews != nil {
		rc = s.wrapReviews(rc)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	var rt http.RoundTripper = transport
	if s.detailsTransport != nil {
		rt = s.detailsTransport(rt)
	}
	detailsURL := ds.URL
	if s.detailsURL != "" {
		detailsURL = s.detailsURL
	}
	h, err := productpage.New(productpage.Upstreams{
		DetailsURL:    detailsURL,
		DetailsClient: &http.Client{Transport: rt},
		Reviews:       rc,
		Ratings:       e.ratingsClient,
	}, s.opts...)
	require.NoError(t, err)
	if s.wrap != nil {
		h = s.wrap(h)
	}
	e.pp = httptest.NewServer(h)
	t.Cleanup(e.pp.Close)
	return e
}

// response is what a request to productpage got.
type response struct {
	status int
	header http.Header
	body   string
}

// client returns a client of productpage that does not follow redirects
// and keeps cookies.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := e.pp.Client()
	return &http.Client{
		Transport:     c.Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (e *env) do(t *testing.T, c *http.Client, method, path string, header http.Header, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.pp.URL+path, body)
	require.NoError(t, err)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c == nil {
		c = e.pp.Client()
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(t *testing.T, path string) response {
	t.Helper()
	return e.do(t, nil, http.MethodGet, path, nil, nil)
}

func decode(t *testing.T, body string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), "body %q", body)
	return v
}

// vals returns the values of key in h, whether h holds HTTP headers
// (canonical keys) or gRPC metadata (lower-case keys).
func vals(h http.Header, key string) []string {
	if v := h.Values(key); len(v) > 0 {
		return v
	}
	return h[strings.ToLower(key)]
}
