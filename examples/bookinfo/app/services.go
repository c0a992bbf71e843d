package app

import (
	"context"
	"net/http"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/details"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"google.golang.org/grpc"
)

// The Bookinfo services of one instance, built on the wiring of wiring.go.

func (s *System) httpService(d *deployment, name string, self receipt.Self, prop *propagation.Propagator) (http.Handler, error) {
	var h http.Handler
	switch d.Service {
	case "productpage":
		self.Always = true // the page shows the route of every request
		opts := []productpage.Option{
			productpage.WithInstance(name),
			productpage.WithGray(d.Lane == "gray"),
			productpage.WithRoute(routeOf),
			productpage.WithMetrics(s.tel.MeterProvider(), s.tel.MetricsHandler()),
		}
		if s.events != nil {
			opts = append(opts, productpage.WithPageView(s.events.pageView))
		}
		if s.cfg.DetailsTimeout > 0 {
			opts = append(opts, productpage.WithDetailsTimeout(s.cfg.DetailsTimeout))
		}
		if s.cfg.ReviewsTimeout > 0 {
			opts = append(opts, productpage.WithReviewsTimeout(s.cfg.ReviewsTimeout))
		}
		if s.cfg.RatingsTimeout > 0 {
			opts = append(opts, productpage.WithRatingsTimeout(s.cfg.RatingsTimeout))
		}
		pp, err := productpage.New(s.upstreams(), opts...)
		if err != nil {
			return nil, err
		}
		h = pp
	case "details":
		h = details.New(details.WithFaults(d.faults))
	}
	return s.serveHTTP(h, prop, self), nil
}

// routeOf reads the route receipt of a productpage request for its Route
// panel.
func routeOf(ctx context.Context) []productpage.Hop {
	rc := receipt.FromContext(ctx)
	if rc == nil {
		return nil
	}
	var out []productpage.Hop
	for _, h := range rc.Hops() {
		out = append(out, productpage.Hop(h))
	}
	return out
}

func (s *System) grpcService(d *deployment, name string, self receipt.Self, prop *propagation.Propagator) (*grpc.Server, error) {
	srv := s.newGRPCServer(prop, self)
	switch d.Service {
	case "reviews":
		r, err := reviews.New(reviews.Version(d.Version),
			reviews.WithRatings(bookinfopb.NewRatingsClient(s.ratingsConn)),
			reviews.WithInstance(name), reviews.WithFaults(d.faults))
		if err != nil {
			return nil, err
		}
		r.Register(srv)
	case "ratings":
		r, err := ratings.New(ratings.Version(d.Version), ratings.WithStore(s.ratingsStore), ratings.WithFaults(d.faults))
		if err != nil {
			return nil, err
		}
		r.Register(srv)
	}
	return srv, nil
}
