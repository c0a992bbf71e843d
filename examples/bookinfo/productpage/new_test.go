package productpage_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
)

func TestNew(t *testing.T) {
	rv := bookinfopb.NewReviewsClient(nil)
	rt := bookinfopb.NewRatingsClient(nil)
	ok := productpage.Upstreams{DetailsURL: "http://details", Reviews: rv, Ratings: rt}
	tests := []struct {
		name string
		up   productpage.Upstreams
		opts []productpage.Option
		ok   bool
	}{
		{"defaults", ok, nil, true},
		{"https with a path", productpage.Upstreams{DetailsURL: "https://details:9080/base/", Reviews: rv, Ratings: rt}, nil, true},
		{"all options", ok, []productpage.Option{
			productpage.WithInstance("productpage-v2-0"), productpage.WithGray(true),
			productpage.WithDetailsTimeout(time.Second), productpage.WithReviewsTimeout(time.Second),
			productpage.WithReviewsAttempts(3), productpage.WithRatingsTimeout(time.Second),
			productpage.WithRoute(nil),
		}, true},
		{"no details URL", productpage.Upstreams{Reviews: rv, Ratings: rt}, nil, false},
		{"relative details URL", productpage.Upstreams{DetailsURL: "details", Reviews: rv, Ratings: rt}, nil, false},
		{"details URL of another scheme", productpage.Upstreams{DetailsURL: "ftp://details", Reviews: rv, Ratings: rt}, nil, false},
		{"no reviews", productpage.Upstreams{DetailsURL: "http://details", Ratings: rt}, nil, false},
		{"no ratings", productpage.Upstreams{DetailsURL: "http://details", Reviews: rv}, nil, false},
		{"zero details timeout", ok, []productpage.Option{productpage.WithDetailsTimeout(0)}, false},
		{"negative reviews timeout", ok, []productpage.Option{productpage.WithReviewsTimeout(-1)}, false},
		{"zero ratings timeout", ok, []productpage.Option{productpage.WithRatingsTimeout(0)}, false},
		{"no reviews attempt", ok, []productpage.Option{productpage.WithReviewsAttempts(0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := productpage.New(tt.up, tt.opts...)
			if tt.ok {
				require.NoError(t, err)
				assert.NotNil(t, h)
			} else {
				require.Error(t, err)
				assert.Nil(t, h)
			}
		})
	}
}
