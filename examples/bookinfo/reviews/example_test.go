package reviews_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

// serve serves the service that register adds on a loopback port and
// returns a connection to it and a function that stops both.
func serve(register func(grpc.ServiceRegistrar)) (*grpc.ClientConn, func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer() // the deployment adds its interceptors here
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	return cc, func() { _ = cc.Close(); srv.Stop() }
}

func ExampleNew() {
	rsvc, err := ratings.New(ratings.V1)
	if err != nil {
		panic(err)
	}
	rcc, stopRatings := serve(rsvc.Register)
	defer stopRatings()

	svc, err := reviews.New(reviews.V3,
		reviews.WithRatings(bookinfopb.NewRatingsClient(rcc)),
		reviews.WithInstance("reviews-v3-0"))
	if err != nil {
		panic(err)
	}
	cc, stop := serve(svc.Register)
	defer stop()

	got, err := bookinfopb.NewReviewsClient(cc).GetReviews(context.Background(), &bookinfopb.GetReviewsRequest{ProductId: "0"})
	if err != nil {
		panic(err)
	}
	fmt.Println(got.GetPodname(), got.GetClustername())
	for _, r := range got.GetReviews() {
		fmt.Println(r.GetReviewer(), r.GetRating().GetStars(), r.GetRating().GetColor())
	}
	// Output:
	// reviews-v3-0 null
	// Reviewer1 5 red
	// Reviewer2 4 red
}
