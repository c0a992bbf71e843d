package reviews

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/internal/forward"
)

// Version is a version of the reviews service.
type Version string

// The versions of the reviews service.
const (
	V1 Version = "v1" // no ratings
	V2 Version = "v2" // black stars, ratings timeout 10 s
	V3 Version = "v3" // red stars, ratings timeout 2.5 s
)

// The status message of a non-numeric product id, and the rating error.
const (
	MsgNonNumericID      = "please provide numeric product id"
	MsgRatingUnavailable = "Ratings service is currently unavailable"
)

// The reviews every version serves.
var reviews = []struct{ reviewer, text string }{
	{"Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},
	{"Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."},
}

// Option configures a Server.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	ratings        bookinfopb.RatingsClient
	ratingsTimeout time.Duration
	instance       string
	cluster        string
	faults         *faults.Switch
}

// WithRatings sets the client of the ratings service. V2 and V3 need one;
// V1 never uses it.
func WithRatings(c bookinfopb.RatingsClient) Option {
	return optionFunc(func(cfg *config) { cfg.ratings = c })
}

// WithRatingsTimeout sets the timeout of the ratings call. The default is
// 10 s for V2 and 2.5 s for V3. It must be positive.
func WithRatingsTimeout(d time.Duration) Option {
	return optionFunc(func(cfg *config) { cfg.ratingsTimeout = d })
}

// WithInstance sets the name the answers give as podname, e.g.
// "reviews-v2-0". The default is "reviews-" followed by the version.
func WithInstance(name string) Option {
	return optionFunc(func(cfg *config) { cfg.instance = name })
}

// WithClusterName sets the name the answers give as clustername. The
// default is none, answered as "null".
func WithClusterName(name string) Option {
	return optionFunc(func(cfg *config) { cfg.cluster = name })
}

// WithFaults sets the fault switch applied to every call. The default is
// none: no faults.
func WithFaults(s *faults.Switch) Option {
	return optionFunc(func(cfg *config) { cfg.faults = s })
}

// Server is the reviews service. Its methods are safe for concurrent use.
type Server struct {
	bookinfopb.UnimplementedReviewsServer

	version Version
	color   string // "" for V1: no ratings
	cfg     config
}

var _ bookinfopb.ReviewsServer = (*Server)(nil)

// New returns a reviews service of version v. It is an error to give an
// unknown version, no ratings client to V2 or V3, or a timeout that is not
// positive.
func New(v Version, opts ...Option) (*Server, error) {
	s := &Server{version: v}
	switch v {
	case V1:
	case V2:
		s.color, s.cfg.ratingsTimeout = "black", 10*time.Second
	case V3:
		s.color, s.cfg.ratingsTimeout = "red", 2500*time.Millisecond
	default:
		return nil, fmt.Errorf("reviews: unknown version %q (want %q, %q or %q)", v, V1, V2, V3)
	}
	for _, o := range opts {
		o.apply(&s.cfg)
	}
	var errs []error
	if s.color != "" && s.cfg.ratings == nil {
		errs = append(errs, fmt.Errorf("reviews: version %s needs a ratings client (WithRatings)", v))
	}
	if s.cfg.ratingsTimeout <= 0 && v != V1 {
		errs = append(errs, fmt.Errorf("reviews: ratings timeout %v is not positive", s.cfg.ratingsTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.cfg.instance == "" {
		s.cfg.instance = "reviews-" + string(v)
	}
	if s.cfg.cluster == "" {
		s.cfg.cluster = "null"
	}
	return s, nil
}

// Register registers s on r, e.g. a *grpc.Server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	bookinfopb.RegisterReviewsServer(r, s)
}

// Version returns the version s was built with.
func (s *Server) Version() Version { return s.version }

// GetReviews answers the reviews of a product.
func (s *Server) GetReviews(ctx context.Context, req *bookinfopb.GetReviewsRequest) (*bookinfopb.ProductReviews, error) {
	if err := s.cfg.faults.ApplyGRPC(ctx); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(req.GetProductId(), 10, 64)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, MsgNonNumericID)
	}
	var stars map[string]int32
	ratingsOK := false
	if s.color != "" {
		stars, ratingsOK = s.ratings(ctx, id)
	}
	resp := &bookinfopb.ProductReviews{
		Id:          strconv.FormatInt(id, 10),
		Podname:     s.cfg.instance,
		Clustername: s.cfg.cluster,
	}
	for _, r := range reviews {
		rv := &bookinfopb.Review{Reviewer: r.reviewer, Text: r.text}
		if s.color != "" {
			if n, ok := stars[r.reviewer]; ok && ratingsOK {
				rv.Rating = &bookinfopb.Rating{Stars: n, Color: s.color}
			} else {
				rv.Rating = &bookinfopb.Rating{Error: MsgRatingUnavailable}
			}
		}
		resp.Reviews = append(resp.Reviews, rv)
	}
	return resp, nil
}

// ratings asks the ratings service once, within the ratings timeout.
func (s *Server) ratings(ctx context.Context, id int64) (map[string]int32, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ratingsTimeout)
	defer cancel()
	ctx = forward.ToOutgoingMetadata(ctx, forward.FromIncomingMetadata(ctx))
	resp, err := s.cfg.ratings.GetRatings(ctx, &bookinfopb.GetRatingsRequest{ProductId: strconv.FormatInt(id, 10)})
	if err != nil {
		return nil, false
	}
	return resp.GetRatings(), true
}
