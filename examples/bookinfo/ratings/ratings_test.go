package ratings_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/internal/grpctest"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

func client(t *testing.T, v ratings.Version, opts ...ratings.Option) bookinfopb.RatingsClient {
	t.Helper()
	s, err := ratings.New(v, opts...)
	require.NoError(t, err)
	cc := grpctest.Serve(t, func(g *grpc.Server) { s.Register(g) })
	return bookinfopb.NewRatingsClient(cc)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func TestNewUnknownVersion(t *testing.T) {
	_, err := ratings.New("v9")
	require.Error(t, err)
}

func TestGetRatings(t *testing.T) {
	tests := []struct {
		name    string
		version ratings.Version
		id      string
		wantID  int64
		want    map[string]int32
		code    codes.Code
		msg     string
	}{
		{"v1 product 0", ratings.V1, "0", 0, map[string]int32{"Reviewer1": 5, "Reviewer2": 4}, codes.OK, ""},
		{"v1 other product", ratings.V1, "12", 12, map[string]int32{"Reviewer1": 5, "Reviewer2": 4}, codes.OK, ""},
		{"v2 product 0", ratings.V2, "0", 0, map[string]int32{"Reviewer1": 3, "Reviewer2": 2}, codes.OK, ""},
		{"v1 non-numeric", ratings.V1, "abc", 0, nil, codes.InvalidArgument, "please provide numeric product ID"},
		{"v2 non-numeric", ratings.V2, "1x", 0, nil, codes.InvalidArgument, "please provide numeric product ID"},
		{"v1 empty id", ratings.V1, "", 0, nil, codes.InvalidArgument, "please provide numeric product ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, tt.version)
			got, err := c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: tt.id})
			st := status.Convert(err)
			require.Equal(t, tt.code, st.Code(), "error %v", err)
			if tt.code != codes.OK {
				assert.Equal(t, tt.msg, st.Message())
				return
			}
			assert.Equal(t, tt.wantID, got.GetId())
			assert.Equal(t, tt.want, got.GetRatings())
		})
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		name    string
		version ratings.Version
		id      string
		ratings map[string]int32
		code    codes.Code
		msg     string
	}{
		{"v1 stores", ratings.V1, "0", map[string]int32{"Reviewer1": 1, "Reviewer2": 2}, codes.OK, ""},
		{"v1 zero stars", ratings.V1, "3", map[string]int32{"Reviewer1": 0}, codes.OK, ""},
		{"v1 non-numeric", ratings.V1, "abc", map[string]int32{"Reviewer1": 1}, codes.InvalidArgument, "please provide numeric product ID"},
		{"v1 no ratings", ratings.V1, "0", nil, codes.InvalidArgument, "please provide valid ratings JSON"},
		{"v1 empty reviewer", ratings.V1, "0", map[string]int32{"": 3}, codes.InvalidArgument, "please provide valid ratings JSON"},
		{"v1 six stars", ratings.V1, "0", map[string]int32{"Reviewer1": 6}, codes.InvalidArgument, "please provide valid ratings JSON"},
		{"v1 negative stars", ratings.V1, "0", map[string]int32{"Reviewer1": -1}, codes.InvalidArgument, "please provide valid ratings JSON"},
		{"v2 unimplemented", ratings.V2, "0", map[string]int32{"Reviewer1": 1}, codes.Unimplemented, "Post not implemented for database backed ratings"},
		{"v2 non-numeric first", ratings.V2, "abc", map[string]int32{"Reviewer1": 1}, codes.InvalidArgument, "please provide numeric product ID"},
		{"v2 invalid input first", ratings.V2, "0", nil, codes.InvalidArgument, "please provide valid ratings JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, tt.version)
			got, err := c.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: tt.id, Ratings: tt.ratings})
			st := status.Convert(err)
			require.Equal(t, tt.code, st.Code(), "error %v", err)
			if tt.code != codes.OK {
				assert.Equal(t, tt.msg, st.Message())
				return
			}
			// Echoed, then served by later gets of that product only.
			assert.Equal(t, tt.ratings, got.GetRatings())
			again, err := c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: tt.id})
			require.NoError(t, err)
			assert.Equal(t, got.GetId(), again.GetId())
			assert.Equal(t, tt.ratings, again.GetRatings())
			other, err := c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "999"})
			require.NoError(t, err)
			assert.Equal(t, map[string]int32{"Reviewer1": 5, "Reviewer2": 4}, other.GetRatings())
		})
	}
}

func TestRateReplacesAndIsPerStore(t *testing.T) {
	shared := ratings.NewStore()
	a := client(t, ratings.V1, ratings.WithStore(shared))
	b := client(t, ratings.V1, ratings.WithStore(shared))
	alone := client(t, ratings.V1)

	_, err := a.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": 1, "Reviewer2": 1}})
	require.NoError(t, err)
	_, err = a.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer3": 2}})
	require.NoError(t, err)

	got, err := b.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]int32{"Reviewer3": 2}, got.GetRatings(), "Rate replaces, and the store is shared")

	got, err = alone.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]int32{"Reviewer1": 5, "Reviewer2": 4}, got.GetRatings())
}

func TestConcurrentRateAndGet(t *testing.T) {
	c := client(t, ratings.V1)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := c.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": int32(i % 6)}})
			assert.NoError(t, err)
		})
		wg.Go(func() {
			_, err := c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "0"})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
}

func TestFaults(t *testing.T) {
	var sw faults.Switch
	c := client(t, ratings.V1, ratings.WithFaults(&sw))

	require.NoError(t, sw.Set(faults.Fault{Abort: 503, Times: 1}))
	_, err := c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "0"})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	_, err = c.GetRatings(ctx(t), &bookinfopb.GetRatingsRequest{ProductId: "0"})
	require.NoError(t, err)

	require.NoError(t, sw.Set(faults.Fault{Abort: 500}))
	_, err = c.Rate(ctx(t), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": 1}})
	assert.Equal(t, codes.Internal, status.Code(err))

	// A delay longer than the caller's deadline: the call times out.
	require.NoError(t, sw.Set(faults.Fault{Delay: time.Minute}))
	short, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancel()
	_, err = c.GetRatings(short, &bookinfopb.GetRatingsRequest{ProductId: "0"})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
}
