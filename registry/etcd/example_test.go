package etcd_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// A process registers its instance, another one watches the service: the
// tag and the metadata come through.
func Example() {
	endpoint, stop := exampleEtcd() // programs use their cluster's endpoints
	defer stop()
	ctx := context.Background()

	reviews, err := etcd.Dial([]string{endpoint})
	if err != nil {
		log.Fatal(err)
	}
	defer reviews.Close() // deregisters: revokes the lease

	_, err = reviews.Register(ctx, registry.Instance{
		Service:  "reviews",
		Addr:     "10.0.0.7:9080",
		Name:     "reviews-v2-0",
		Tag:      tag.MustParse("gray"),
		Metadata: map[string]string{"version": "v2"},
	})
	if err != nil {
		log.Fatal(err)
	}

	productpage, err := etcd.Dial([]string{endpoint})
	if err != nil {
		log.Fatal(err)
	}
	defer productpage.Close()
	w, err := productpage.Watch(ctx, "reviews")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	insts, err := w.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range insts {
		fmt.Println(in.Name, in.Addr, in.Lane("prod"), in.Metadata["version"])
	}
	// Output: reviews-v2-0 10.0.0.7:9080 gray v2
}

// A gRPC client that routes each call to an instance of its tag's lane,
// with the instances registered in etcd.
func Example_grpc() {
	reg, err := etcd.Dial([]string{"etcd-0:2379", "etcd-1:2379", "etcd-2:2379"})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor()))...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	// Calls on cc with tag.NewContext(ctx, tag.MustParse("gray")) go to
	// the gray instances of reviews, or to prod if there is none.
}

// exampleEtcd starts a single-member etcd on loopback, in a temporary
// directory.
func exampleEtcd() (endpoint string, stop func()) {
	port := func() url.URL {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		defer lis.Close()
		return url.URL{Scheme: "http", Host: lis.Addr().String()}
	}
	dir, err := os.MkdirTemp("", "graylane-etcd-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := port(), port()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	<-e.Server.ReadyNotify()
	return client.Host, func() {
		e.Close()
		os.RemoveAll(dir)
	}
}
