package kubetest_test

import (
	"context"
	"log"
	"os"

	"github.com/graylane/graylane/registry/kubernetes/kubetest"
)

// A test's cluster: the API server, a namespace, and the Pod and
// EndpointSlice that a Deployment and the endpointslice controller would
// write for a server the test runs on loopback.
func Example() {
	bin, err := kubetest.Binary()
	if err != nil {
		msg, fail := kubetest.Unavailable(err) // skip, or fail in CI
		log.Print(msg)
		if fail {
			os.Exit(1)
		}
		return
	}
	s, err := kubetest.Start(bin, "", kubetest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ns, err := s.Namespace(ctx, "bookinfo")
	if err != nil {
		log.Fatal(err)
	}
	if err := kubetest.CreatePod(ctx, s.Admin(), ns, "reviews-v2-0", map[string]string{"ASM_TRAFFIC_TAG": "gray"}, nil); err != nil {
		log.Fatal(err)
	}
	// The server listens on 127.0.0.1:9082; its clients dial kubetest.Dial.
	if err := kubetest.PutSlice(ctx, s.Admin(), ns, "reviews-v2-0", "reviews", "grpc", 9082,
		kubetest.Endpoint{IP: kubetest.PodIP(1), Pod: "reviews-v2-0"}); err != nil {
		log.Fatal(err)
	}
}
