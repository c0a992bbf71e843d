package resolver_test

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
)

// DialOptions gives grpc.NewClient the graylane resolver and balancer: calls
// go to an instance of their tag's lane.
func ExampleDialOptions() {
	reg := registry.NewMemory()
	defer reg.Close()
	policy, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"))
	if err != nil {
		panic(err)
	}
	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, policy, resolver.WithHealthCheck("")),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(grpcmw.StreamClientInterceptor()),
	)...)
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	fmt.Println(cc.CanonicalTarget())
	// Output: graylane:///reviews
}
