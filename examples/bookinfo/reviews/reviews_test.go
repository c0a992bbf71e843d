package reviews_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/internal/grpctest"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

const (
	text1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
	text2 = "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."
)

// ratingsBackend is a real ratings server that records the calls it gets.
type ratingsBackend struct {
	client bookinfopb.RatingsClient
	faults *faults.Switch

	mu    sync.Mutex
	calls []metadata.MD
}

func newRatings(t *testing.T, v ratings.Version) *ratingsBackend {
	t.Helper()
	b := &ratingsBackend{faults: new(faults.Switch)}
	svc, err := ratings.New(v, ratings.WithFaults(b.faults))
	require.NoError(t, err)
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		b.mu.Lock()
		b.calls = append(b.calls, md)
		b.mu.Unlock()
		return h(ctx, req)
	}
	cc := grpctest.Serve(t, func(g *grpc.Server) { svc.Register(g) }, grpc.UnaryInterceptor(record))
	b.client = bookinfopb.NewRatingsClient(cc)
	return b
}

func (b *ratingsBackend) Calls() []metadata.MD {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]metadata.MD(nil), b.calls...)
}

func newReviews(t *testing.T, v reviews.Version, opts ...reviews.Option) bookinfopb.ReviewsClient {
	t.Helper()
	svc, err := reviews.New(v, opts...)
	require.NoError(t, err)
	cc := grpctest.Serve(t, func(g *grpc.Server) { svc.Register(g) })
	return bookinfopb.NewReviewsClient(cc)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func stars(n int32, color string) *bookinfopb.Rating {
	return &bookinfopb.Rating{Stars: n, Color: color}
}

var unavailable = &bookinfopb.Rating{Error: "Ratings service is currently unavailable"}

func TestNew(t *testing.T) {
	rc := bookinfopb.NewRatingsClient(nil)
	tests := []struct {
		name string
		v    reviews.Version
		opts []reviews.Option
		ok   bool
	}{
		{"v1 alone", reviews.V1, nil, true},
		{"v2 with ratings", reviews.V2, []reviews.Option{reviews.WithRatings(rc)}, true},
		{"v3 with ratings", reviews.V3, []reviews.Option{reviews.WithRatings(rc)}, true},
		{"v2 without ratings", reviews.V2, nil, false},
		{"v3 without ratings", reviews.V3, nil, false},
		{"unknown version", "v4", nil, false},
		{"zero timeout", reviews.V2, []reviews.Option{reviews.WithRatings(rc), reviews.WithRatingsTimeout(0)}, false},
		{"negative timeout", reviews.V3, []reviews.Option{reviews.WithRatings(rc), reviews.WithRatingsTimeout(-time.Second)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := reviews.New(tt.v, tt.opts...)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.v, s.Version())
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestGetReviews(t *testing.T) {
	tests := []struct {
		name        string
		reviews     reviews.Version
		ratings     ratings.Version
		want1       *bookinfopb.Rating
		want2       *bookinfopb.Rating
		ratingCalls int
	}{
		{"v1 shows no ratings", reviews.V1, ratings.V1, nil, nil, 0},
		{"v2 black stars from ratings v1", reviews.V2, ratings.V1, stars(5, "black"), stars(4, "black"), 1},
		{"v2 black stars from ratings v2", reviews.V2, ratings.V2, stars(3, "black"), stars(2, "black"), 1},
		{"v3 red stars from ratings v1", reviews.V3, ratings.V1, stars(5, "red"), stars(4, "red"), 1},
		{"v3 red stars from ratings v2", reviews.V3, ratings.V2, stars(3, "red"), stars(2, "red"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := newRatings(t, tt.ratings)
			c := newReviews(t, tt.reviews, reviews.WithRatings(rb.client), reviews.WithInstance("reviews-"+string(tt.reviews)+"-0"))
			got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
			require.NoError(t, err)
			assert.Equal(t, "0", got.GetId())
			assert.Equal(t, "reviews-"+string(tt.reviews)+"-0", got.GetPodname())
			assert.Equal(t, "null", got.GetClustername())
			require.Len(t, got.GetReviews(), 2)
			r1, r2 := got.GetReviews()[0], got.GetReviews()[1]
			assert.Equal(t, "Reviewer1", r1.GetReviewer())
			assert.Equal(t, text1, r1.GetText())
			assert.Equal(t, "Reviewer2", r2.GetReviewer())
			assert.Equal(t, text2, r2.GetText())
			assertRating(t, tt.want1, r1.GetRating())
			assertRating(t, tt.want2, r2.GetRating())
			assert.Len(t, rb.Calls(), tt.ratingCalls)
		})
	}
}

func assertRating(t *testing.T, want, got *bookinfopb.Rating) {
	t.Helper()
	if want == nil {
		assert.Nil(t, got)
		return
	}
	require.NotNil(t, got)
	assert.Equal(t, want.GetStars(), got.GetStars())
	assert.Equal(t, want.GetColor(), got.GetColor())
	assert.Equal(t, want.GetError(), got.GetError())
}

func TestProductIDs(t *testing.T) {
	tests := []struct {
		id     string
		wantID string
		code   codes.Code
	}{
		{"0", "0", codes.OK},
		{"42", "42", codes.OK},
		{"007", "7", codes.OK},
		{"abc", "", codes.InvalidArgument},
		{"", "", codes.InvalidArgument},
		{"1.5", "", codes.InvalidArgument},
	}
	c := newReviews(t, reviews.V1)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: tt.id})
			st := status.Convert(err)
			require.Equal(t, tt.code, st.Code())
			if tt.code != codes.OK {
				assert.Equal(t, "please provide numeric product id", st.Message())
				return
			}
			assert.Equal(t, tt.wantID, got.GetId())
		})
	}
}

func TestClusterName(t *testing.T) {
	c := newReviews(t, reviews.V1, reviews.WithClusterName("east"))
	got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	require.NoError(t, err)
	assert.Equal(t, "east", got.GetClustername())
	assert.Equal(t, "reviews-v1", got.GetPodname(), "default instance name")
}

func TestRatingsFailureIsNotRetried(t *testing.T) {
	for _, v := range []reviews.Version{reviews.V2, reviews.V3} {
		t.Run(string(v), func(t *testing.T) {
			rb := newRatings(t, ratings.V1)
			require.NoError(t, rb.faults.Set(faults.Fault{Abort: 503}))
			c := newReviews(t, v, reviews.WithRatings(rb.client))
			got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
			require.NoError(t, err, "reviews succeeds without ratings")
			for _, r := range got.GetReviews() {
				assertRating(t, unavailable, r.GetRating())
			}
			assert.Len(t, rb.Calls(), 1, "no retry")
		})
	}
}

func TestRatingsTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	rb := newRatings(t, ratings.V1)
	require.NoError(t, rb.faults.Set(faults.Fault{Delay: 20 * timeout}))
	c := newReviews(t, reviews.V3, reviews.WithRatings(rb.client), reviews.WithRatingsTimeout(timeout))
	start := time.Now()
	got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	elapsed := time.Since(start)
	require.NoError(t, err)
	for _, r := range got.GetReviews() {
		assertRating(t, unavailable, r.GetRating())
	}
	assert.GreaterOrEqual(t, elapsed, timeout)
	assert.Less(t, elapsed, 10*timeout, "the call gave up at its timeout")
}

func TestRatingsUnreachable(t *testing.T) {
	// An address where nothing listens any more.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()

	c := newReviews(t, reviews.V2, reviews.WithRatings(bookinfopb.NewRatingsClient(cc)))
	got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	require.NoError(t, err)
	for _, r := range got.GetReviews() {
		assertRating(t, unavailable, r.GetRating())
	}
}

func TestMissingReviewer(t *testing.T) {
	rb := newRatings(t, ratings.V1)
	_, err := rb.client.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": 2}})
	require.NoError(t, err)
	c := newReviews(t, reviews.V2, reviews.WithRatings(rb.client))
	got, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	require.NoError(t, err)
	assertRating(t, stars(2, "black"), got.GetReviews()[0].GetRating())
	assertRating(t, unavailable, got.GetReviews()[1].GetRating())
}

func TestHeadersForwardedToRatings(t *testing.T) {
	rb := newRatings(t, ratings.V1)
	c := newReviews(t, reviews.V2, reviews.WithRatings(rb.client))
	out := metadata.Pairs(
		"x-request-id", "req-1",
		"end-user", "jason",
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate", "vendor=x",
		"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7",
		"x-b3-spanid", "e457b5a2e4d86bd1",
		"x-b3-parentspanid", "05e3ac9a4f6e3b90",
		"x-b3-sampled", "1",
		"x-b3-flags", "0",
		"b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1",
		"cookie", "user=jason",
		"authorization", "Bearer t",
		"x-unrelated", "no",
	)
	_, err := c.GetReviews(metadata.NewOutgoingContext(ctx(t), out), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	require.NoError(t, err)
	calls := rb.Calls()
	require.Len(t, calls, 1)
	got := calls[0]
	for k, v := range out {
		if k == "x-unrelated" {
			assert.Empty(t, got.Get(k))
			continue
		}
		assert.Equal(t, v, got.Get(k), "header %s", k)
	}
}

func TestFaults(t *testing.T) {
	var sw faults.Switch
	c := newReviews(t, reviews.V1, reviews.WithFaults(&sw))
	require.NoError(t, sw.Set(faults.Fault{Abort: 503, Times: 1}))
	_, err := c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	_, err = c.GetReviews(ctx(t), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	require.NoError(t, err)
}
