package kubernetes_test

import (
	"log"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/registry/kubernetes"
	"github.com/graylane/graylane/resolver"
)

// A gRPC client of the reviews Service that routes calls by lane: the
// lane of each Pod of reviews is its ASM_TRAFFIC_TAG label.
func Example() {
	cfg, ns, err := kubernetes.LoadConfig("") // the Pod's service account in a cluster; ~/.kube/config outside
	if err != nil {
		log.Fatal(err)
	}
	reg, err := kubernetes.New(cfg, kubernetes.WithNamespace(ns), kubernetes.WithPortName("grpc"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
}

// Lanes defined the way Istio DestinationRule subsets define them.
func ExampleWithLaneSelectors() {
	cfg, _, err := kubernetes.LoadConfig("/etc/graylane/kubeconfig")
	if err != nil {
		log.Fatal(err)
	}
	reg, err := kubernetes.New(cfg, kubernetes.WithNamespace("bookinfo"),
		kubernetes.WithLaneSelectors(map[string]string{"prod": "version=v1", "gray": "version=v2"}))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
}
