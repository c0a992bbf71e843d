package productpage_test

import (
	"fmt"
	"io"
	"net"
	"net/http/httptest"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/details"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

// Bookinfo in one process, without lanes: each service on a loopback
// port, productpage in front. A deployment with lanes adds graylane's
// middleware, interceptors and routing clients around the same pieces.
func ExampleNew() {
	detailsSrv := httptest.NewServer(details.New())
	defer detailsSrv.Close()

	// ratings and reviews on one gRPC server, for brevity.
	rt, err := ratings.New(ratings.V1)
	if err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	rv, err := reviews.New(reviews.V2, reviews.WithRatings(bookinfopb.NewRatingsClient(cc)), reviews.WithInstance("reviews-v2-0"))
	if err != nil {
		panic(err)
	}
	g := grpc.NewServer()
	rt.Register(g)
	rv.Register(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	h, err := productpage.New(productpage.Upstreams{
		DetailsURL: detailsSrv.URL,
		Reviews:    bookinfopb.NewReviewsClient(cc),
		Ratings:    bookinfopb.NewRatingsClient(cc),
	}, productpage.WithInstance("productpage-v1-0"))
	if err != nil {
		panic(err)
	}
	pp := httptest.NewServer(h)
	defer pp.Close()

	resp, err := pp.Client().Get(pp.URL + "/api/v1/products/0/reviews")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"id": "0", "podname": "reviews-v2-0", "clustername": "null", "reviews": [{"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "black"}}, {"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "black"}}]}
}
