package kubernetes

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// offline returns a Registry whose caches are filled by the test, not by
// an API server, and a service of it.
func offline(tb testing.TB, opts ...Option) (*Registry, *service) {
	tb.Helper()
	r, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { r.Close() })
	nsc := r.newNSCache("ns")
	return r, &service{key: svcKey{ns: "ns", name: "svc"}, display: "svc", nsc: nsc, lanes: r.cfg.selectors}
}

// FuzzInstances feeds the Registry Pods and EndpointSlices of any content
// (the API server validates them, but the Registry does not count on it):
// it never panics, every instance it makes is valid, and whatever it
// leaves out has a known reason.
func FuzzInstances(f *testing.F) {
	f.Add("gray", "7", "grpc", "grpc", int32(9000), "10.0.0.1", "Pod", "p", "p", uint8(0), "IPv4")
	f.Add("", "x", "", "a", int32(0), "", "Node", "", "q", uint8(7), "FQDN")
	f.Add("v3", "10001", "grpc", "grpc", int32(70000), "fe80::1", "Pod", "p", "p", uint8(2), "IPv6")
	f.Add("a.b-c", "1", "", "", int32(80), "not an ip", "Pod", "p", "p", uint8(5), "IPv4")
	known := []string{ReasonNoTargetRef, ReasonPodNotFound, ReasonInvalidLane, ReasonLaneConflict, ReasonInvalidWeight,
		ReasonPortNotFound, ReasonAmbiguousPort, ReasonAddressType, ReasonNoAddress, ReasonInvalidEndpoint}
	type regService struct {
		r *Registry
		s *service
	}
	var regs []regService
	for _, opts := range [][]Option{
		{WithMetadataLabels("version")},
		{WithPortName("grpc")},
		{WithLaneSelectors(map[string]string{"gray": "version=v2", "canary": "track=canary"})},
	} {
		r, s := offline(f, opts...)
		regs = append(regs, regService{r, s})
	}
	{
		f.Fuzz(func(t *testing.T, lane, weight, wantPort, portName string, port int32, addr, kind, target, podName string, cond uint8, addrType string) {
			pod := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
				Name:        podName,
				Namespace:   "ns",
				Labels:      map[string]string{DefaultLaneLabel: lane, "version": lane, "track": weight},
				Annotations: map[string]string{DefaultWeightAnnotation: weight},
			}}
			b := func(bit uint8) *bool {
				switch cond >> bit & 3 {
				case 0:
					return nil
				case 1:
					return ptr(false)
				}
				return ptr(true)
			}
			sl := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "s", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "svc"}},
				AddressType: discoveryv1.AddressType(addrType),
				Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}, {Name: &wantPort}},
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: b(0), Serving: b(2), Terminating: b(4)},
						TargetRef: &corev1.ObjectReference{Kind: kind, Name: target}},
					{Addresses: []string{addr}},
					{},
				},
			}
			if cond&64 != 0 {
				sl.Ports = sl.Ports[:1]
			}
			for _, rs := range regs {
				p, err := rs.r.transformPod("ns")(pod)
				require.NoError(t, err)
				o, err := transformSlice("ns")(sl)
				require.NoError(t, err)
				require.NoError(t, rs.s.nsc.pods.GetIndexer().Replace([]any{p}, "1"))
				require.NoError(t, rs.s.nsc.slices.GetIndexer().Replace([]any{o}, "1"))
				insts, ignored := rs.r.instances(rs.s)
				for _, in := range insts {
					require.NoError(t, in.Validate())
				}
				for what, reason := range ignored {
					require.Contains(t, known, reason, what)
				}
				require.LessOrEqual(t, len(insts), 1)
			}
		})
	}
}

// FuzzServiceName: Watch's names parse without panic, and an accepted
// name's canonical form names the same Service.
func FuzzServiceName(f *testing.F) {
	for _, s := range []string{"reviews", "reviews.bookinfo", "reviews.ns", "a.b.c", "Reviews", "-x", "x.", ".x", "9a", "a_b"} {
		f.Add(s)
	}
	r, _ := offline(f, WithNamespace("ns"))
	f.Fuzz(func(t *testing.T, name string) {
		key, display, err := r.parse(name)
		if err != nil {
			return
		}
		key2, display2, err := r.parse(display)
		require.NoError(t, err)
		require.Equal(t, key, key2)
		require.Equal(t, display, display2)
	})
}
