package productpage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
)

// Upstreams are the services productpage calls.
type Upstreams struct {
	// DetailsURL is the base URL of the details service, e.g.
	// "http://details"; productpage asks DetailsURL + "/details/{id}".
	// Required: an absolute http or https URL.
	DetailsURL string
	// DetailsClient sends the requests to details. nil means
	// http.DefaultClient. Give a client whose transport routes logical
	// hosts and carries the traffic tag.
	DetailsClient *http.Client
	// Reviews is the client of the reviews service. Required.
	Reviews bookinfopb.ReviewsClient
	// Ratings is the client of the ratings service. Required.
	Ratings bookinfopb.RatingsClient
}

// Hop is one hop of the route a request took, as the Route panel of the
// page shows it.
type Hop struct {
	Service  string // the service called, e.g. "reviews"
	Instance string // the instance that served it, e.g. "reviews-v2-0"
	Lane     string // the lane of that instance, e.g. "gray" or "prod"
	Tag      string // the tag the request carried; "" when untagged
	Fallback string // why the hop left the request's lane, e.g. "noinstances"; "" when it did not
	From     string // the caller, e.g. "productpage"; "" for the entry hop
	Error    string // why the call failed without reaching an instance; "" when it did not
	Note     string // a remark of the hop's server, such as the gateway's lane decision
}

// Option configures productpage.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	instance        string
	gray            bool
	route           func(context.Context) []Hop
	detailsTimeout  time.Duration
	reviewsTimeout  time.Duration
	reviewsAttempts int
	ratingsTimeout  time.Duration
	pageView        func(context.Context, PageView)
	meter           metric.MeterProvider
	metricsHandler  http.Handler
}

// The defaults of the original service.
const (
	DefaultDetailsTimeout  = 3 * time.Second
	DefaultReviewsTimeout  = 3 * time.Second
	DefaultReviewsAttempts = 2
	DefaultRatingsTimeout  = 3 * time.Second
)

// WithInstance sets the name of this instance, shown on the page, e.g.
// "productpage-v2-0". The default is "productpage".
func WithInstance(name string) Option {
	return optionFunc(func(c *config) { c.instance = name })
}

// WithGray marks the instance as one of the gray lane: every page shows a
// "GRAY LANE" banner with the instance name. The default is false.
func WithGray(gray bool) Option {
	return optionFunc(func(c *config) { c.gray = gray })
}

// WithRoute sets the hook that tells the route the request took. When it
// is set, the product page calls it, with the context of the request,
// after the calls to details and reviews, and shows the hops it returns in
// a Route panel. The default is none: no panel.
func WithRoute(route func(ctx context.Context) []Hop) Option {
	return optionFunc(func(c *config) { c.route = route })
}

// PageView is one view of the product page, as WithPageView reports it.
type PageView struct {
	ProductID int    // the product shown: 0
	User      string // the logged-in user; "" when nobody is
	Instance  string // the instance that served the page (WithInstance)
}

// WithPageView sets the hook told of every product page view, with the
// context of the request (so that whatever travels in it, such as
// graylane's traffic tag, can go on with an event the hook publishes),
// after the page is written. The hook must not block: the page's
// response waits for it. The default is none.
func WithPageView(f func(ctx context.Context, v PageView)) Option {
	return optionFunc(func(c *config) { c.pageView = f })
}

// WithDetailsTimeout sets the timeout of the call to details. The default
// is 3 s. It must be positive.
func WithDetailsTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.detailsTimeout = d })
}

// WithReviewsTimeout sets the timeout of each attempt to call reviews. The
// default is 3 s. It must be positive.
func WithReviewsTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.reviewsTimeout = d })
}

// WithReviewsAttempts sets how many times reviews is called before
// productpage gives up. The default is 2. It must be at least 1.
func WithReviewsAttempts(n int) Option {
	return optionFunc(func(c *config) { c.reviewsAttempts = n })
}

// WithRatingsTimeout sets the timeout of the call to ratings. The default
// is 3 s. It must be positive.
func WithRatingsTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ratingsTimeout = d })
}

// WithMetrics makes productpage count the results of its calls
// (ResultMetric) on mp and serve h at /metrics, for a process that exports
// the metrics of all its parts in one place. The default is a
// MeterProvider of productpage's own, whose Prometheus exporter /metrics
// serves. With a nil h, /metrics answers 404.
func WithMetrics(mp metric.MeterProvider, h http.Handler) Option {
	return optionFunc(func(c *config) {
		c.meter, c.metricsHandler = mp, h
		if h == nil {
			c.metricsHandler = http.NotFoundHandler()
		}
	})
}

type server struct {
	cfg           config
	detailsURL    string
	client        *http.Client
	reviewsClient bookinfopb.ReviewsClient
	ratingsClient bookinfopb.RatingsClient
	metrics       *metrics
}

// New returns productpage, an http.Handler safe for concurrent use. It is
// an error to leave out a required upstream, to give a DetailsURL that is
// not an absolute http or https URL, or to give a timeout or attempt count
// out of range.
func New(up Upstreams, opts ...Option) (http.Handler, error) {
	c := config{
		instance:        "productpage",
		detailsTimeout:  DefaultDetailsTimeout,
		reviewsTimeout:  DefaultReviewsTimeout,
		reviewsAttempts: DefaultReviewsAttempts,
		ratingsTimeout:  DefaultRatingsTimeout,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	var errs []error
	if u, err := url.Parse(up.DetailsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("productpage: details URL %q is not an absolute http or https URL", up.DetailsURL))
	}
	if up.Reviews == nil {
		errs = append(errs, errors.New("productpage: no reviews client"))
	}
	if up.Ratings == nil {
		errs = append(errs, errors.New("productpage: no ratings client"))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"details", c.detailsTimeout}, {"reviews", c.reviewsTimeout}, {"ratings", c.ratingsTimeout}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("productpage: %s timeout %v is not positive", t.name, t.d))
		}
	}
	if c.reviewsAttempts < 1 {
		errs = append(errs, fmt.Errorf("productpage: %d reviews attempts, want at least 1", c.reviewsAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m, err := newMetrics(c.meter, c.metricsHandler)
	if err != nil {
		return nil, fmt.Errorf("productpage: metrics: %w", err)
	}
	s := &server{
		cfg:           c,
		detailsURL:    strings.TrimRight(up.DetailsURL, "/"),
		client:        up.DetailsClient,
		reviewsClient: up.Reviews,
		ratingsClient: up.Ratings,
		metrics:       m,
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s.routes(), nil
}

func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Get("/", s.index)
	r.Get("/index.html", s.index)
	r.Get("/health", health)
	r.Post("/login", login)
	r.Get("/logout", logout)
	r.Get("/productpage", s.productPage)
	r.Route("/api/v1/products", func(r chi.Router) {
		r.Get("/", productsAPI)
		r.Get("/{id}", s.detailsAPI)
		r.Get("/{id}/reviews", s.reviewsAPI)
		r.Get("/{id}/ratings", s.ratingsAPI)
	})
	r.Get("/metrics", s.metrics.ServeHTTP)
	return r
}

func health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Product page is healthy"))
}
