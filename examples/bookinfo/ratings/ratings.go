package ratings

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
)

// Version is a version of the ratings service.
type Version string

// The versions of the ratings service.
const (
	V1 Version = "v1" // in memory: Reviewer1 5, Reviewer2 4; Rate stores
	V2 Version = "v2" // "database backed": Reviewer1 3, Reviewer2 2; Rate is unimplemented
)

// The status messages of the errors, as the original service words them.
const (
	MsgNonNumericID   = "please provide numeric product ID"
	MsgInvalidRatings = "please provide valid ratings JSON"
	MsgNoPost         = "Post not implemented for database backed ratings"
)

// Option configures a Server.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	faults *faults.Switch
	store  *Store
}

// WithFaults sets the fault switch applied to every call. The default is
// none: no faults.
func WithFaults(s *faults.Switch) Option {
	return optionFunc(func(c *config) { c.faults = s })
}

// WithStore sets where V1 keeps the ratings given to Rate. The default is
// a Store of the Server's own.
func WithStore(s *Store) Option {
	return optionFunc(func(c *config) { c.store = s })
}

// Server is the ratings service. Its methods are safe for concurrent use.
type Server struct {
	bookinfopb.UnimplementedRatingsServer

	version Version
	faults  *faults.Switch
	store   *Store
}

var _ bookinfopb.RatingsServer = (*Server)(nil)

// New returns a ratings service of version v. An unknown version is an
// error.
func New(v Version, opts ...Option) (*Server, error) {
	if v != V1 && v != V2 {
		return nil, fmt.Errorf("ratings: unknown version %q (want %q or %q)", v, V1, V2)
	}
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	if c.store == nil {
		c.store = NewStore()
	}
	return &Server{version: v, faults: c.faults, store: c.store}, nil
}

// Register registers s on r, e.g. a *grpc.Server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	bookinfopb.RegisterRatingsServer(r, s)
}

// Version returns the version s was built with.
func (s *Server) Version() Version { return s.version }

// GetRatings answers the ratings of a product.
func (s *Server) GetRatings(ctx context.Context, req *bookinfopb.GetRatingsRequest) (*bookinfopb.ProductRatings, error) {
	if err := s.faults.ApplyGRPC(ctx); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(req.GetProductId(), 10, 64)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, MsgNonNumericID)
	}
	if s.version == V2 {
		return &bookinfopb.ProductRatings{Id: id, Ratings: map[string]int32{"Reviewer1": 3, "Reviewer2": 2}}, nil
	}
	r, ok := s.store.get(id)
	if !ok {
		r = map[string]int32{"Reviewer1": 5, "Reviewer2": 4}
	}
	return &bookinfopb.ProductRatings{Id: id, Ratings: r}, nil
}

// Rate replaces the ratings of a product and echoes them (V1), or fails
// with codes.Unimplemented (V2).
func (s *Server) Rate(ctx context.Context, req *bookinfopb.RateRequest) (*bookinfopb.ProductRatings, error) {
	if err := s.faults.ApplyGRPC(ctx); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(req.GetProductId(), 10, 64)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, MsgNonNumericID)
	}
	if !valid(req.GetRatings()) {
		return nil, status.Error(codes.InvalidArgument, MsgInvalidRatings)
	}
	if s.version == V2 {
		return nil, status.Error(codes.Unimplemented, MsgNoPost)
	}
	r := maps.Clone(req.GetRatings())
	s.store.put(id, r)
	return &bookinfopb.ProductRatings{Id: id, Ratings: maps.Clone(r)}, nil
}

func valid(r map[string]int32) bool {
	if len(r) == 0 {
		return false
	}
	for reviewer, stars := range r {
		if reviewer == "" || stars < 0 || stars > 5 {
			return false
		}
	}
	return true
}

// Store keeps the ratings given to V1 servers, by product id. It is safe
// for concurrent use.
type Store struct {
	mu      sync.Mutex
	ratings map[int64]map[string]int32
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{ratings: make(map[int64]map[string]int32)}
}

func (s *Store) get(id int64) (map[string]int32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.ratings[id]
	return maps.Clone(r), ok
}

func (s *Store) put(id int64, r map[string]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ratings[id] = r
}
