package ratings_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
)

func ExampleNew() {
	svc, err := ratings.New(ratings.V2)
	if err != nil {
		panic(err)
	}
	// Add the deployment's interceptors here, e.g. graylane's grpcmw.
	srv := grpc.NewServer()
	svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	c := bookinfopb.NewRatingsClient(cc)

	got, err := c.GetRatings(context.Background(), &bookinfopb.GetRatingsRequest{ProductId: "0"})
	if err != nil {
		panic(err)
	}
	fmt.Println(got.GetId(), got.GetRatings()["Reviewer1"], got.GetRatings()["Reviewer2"])

	_, err = c.Rate(context.Background(), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer1": 5}})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	// Output:
	// 0 3 2
	// Unimplemented Post not implemented for database backed ratings
}
