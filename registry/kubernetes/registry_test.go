package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/registrytest"
)

const wait = registrytest.Timeout

var is = registrytest.Is

// instances renders a set as "addr/lane/health" strings.
func withHealth(insts []registry.Instance) []string {
	out := []string{}
	for _, in := range insts {
		out = append(out, fmt.Sprintf("%s/%s/%s", in.Addr, in.Lane("prod"), in.Health))
	}
	return out
}

func isHealth(want ...string) func([]registry.Instance) bool {
	return func(insts []registry.Instance) bool { return fmt.Sprint(withHealth(insts)) == fmt.Sprint(want) }
}

// TestSlicesMerged: a service of 1,000 Pods over 10 EndpointSlices is one
// set of 1,000 instances, each in its Pod's lane; a deleted slice takes
// its endpoints with it.
func TestSlicesMerged(t *testing.T) {
	c := newCluster(t)
	const pods, slices = 1000, 10
	require.NoError(t, parallel(pods, 16, func(i int) error {
		var labels map[string]string
		if i%10 == 0 {
			labels = map[string]string{DefaultLaneLabel: "gray"}
		}
		return c.createPod(bg, fmt.Sprintf("big-%d", i), labels, nil)
	}))
	require.NoError(t, parallel(slices, slices, func(s int) error {
		var eps []ep
		for i := s * pods / slices; i < (s+1)*pods/slices; i++ {
			eps = append(eps, ep{ip: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), pod: fmt.Sprintf("big-%d", i)})
		}
		return c.putSlice(bg, fmt.Sprintf("big-%d", s), "big", "", 8080, eps...)
	}))
	reg := c.registry(nil)
	w := watchService(t, reg, "big")
	got, took := registrytest.WaitFor(t, w, wait, "1,000 instances", func(s []registry.Instance) bool { return len(s) == pods })
	t.Logf("1,000 pods over 10 slices: first full set after %v", took)
	gray := 0
	for _, in := range got {
		assert.Equal(t, "big", in.Service)
		assert.True(t, strings.HasPrefix(in.Name, "big-"))
		assert.Equal(t, registry.Serving, in.Health)
		if in.Tag.String() == "gray" {
			gray++
		}
	}
	assert.Equal(t, pods/10, gray)

	c.deleteSlice("big-3")
	registrytest.WaitFor(t, w, wait, "a slice deleted", func(s []registry.Instance) bool { return len(s) == pods-pods/slices })
}

// TestLaneLabel: flipping a live Pod's lane label moves its instance; an
// invalid value (the empty one: Kubernetes accepts it, graylane does not)
// takes it out, counted and logged; removing the label puts it in the
// base lane.
func TestLaneLabel(t *testing.T) {
	c := newCluster(t)
	c.pod("a", nil, nil)
	c.pod("b", map[string]string{DefaultLaneLabel: "gray"}, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b"})
	reader := sdkmetric.NewManualReader()
	var logs syncBuffer
	reg := c.registry(nil, WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	w := watchService(t, reg, "svc")
	registrytest.WaitFor(t, w, wait, "first set", is("10.0.0.1:80/prod", "10.0.0.2:80/gray"))

	c.label("a", DefaultLaneLabel, ptr("gray"))
	registrytest.WaitFor(t, w, wait, "a to gray", is("10.0.0.1:80/gray", "10.0.0.2:80/gray"))
	c.label("b", DefaultLaneLabel, ptr("v3"))
	registrytest.WaitFor(t, w, wait, "b to v3", is("10.0.0.1:80/gray", "10.0.0.2:80/v3"))
	c.label("b", DefaultLaneLabel, ptr(""))
	registrytest.WaitFor(t, w, wait, "b left out", is("10.0.0.1:80/gray"))
	assert.Equal(t, map[string]int64{"svc/" + ReasonInvalidLane: 1},
		metrictest.Counts(t, reader, IgnoredMetric, AttrService, AttrReason))
	assert.Contains(t, logs.String(), "reason="+ReasonInvalidLane)
	assert.Contains(t, logs.String(), "level=DEBUG")
	c.label("b", DefaultLaneLabel, nil)
	registrytest.WaitFor(t, w, wait, "b to the base lane", is("10.0.0.1:80/gray", "10.0.0.2:80/prod"))

	// A change the Registry does not read wakes nobody.
	c.patchPod("a", `{"metadata":{"labels":{"unrelated":"x"}}}`)
	c.label("b", DefaultLaneLabel, ptr("gray"))
	registrytest.WaitFor(t, w, wait, "next change", is("10.0.0.1:80/gray", "10.0.0.2:80/gray"))
}

// TestReadiness: endpoint conditions make instances Serving or
// NotServing; a terminating endpoint gets no new calls, serving or not;
// deleting Pods and slices removes instances.
func TestReadiness(t *testing.T) {
	c := newCluster(t)
	c.pod("a", nil, nil)
	c.pod("b", nil, nil)
	reg := c.registry(nil)
	w := watchService(t, reg, "svc")
	registrytest.WaitFor(t, w, wait, "no slice yet", is())

	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b", notReady: true})
	registrytest.WaitFor(t, w, wait, "b not ready", isHealth("10.0.0.1:80/prod/serving", "10.0.0.2:80/prod/notserving"))
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b"})
	registrytest.WaitFor(t, w, wait, "b ready", isHealth("10.0.0.1:80/prod/serving", "10.0.0.2:80/prod/serving"))
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a", terminating: true}, ep{ip: "10.0.0.2", pod: "b"})
	registrytest.WaitFor(t, w, wait, "a terminating, still serving", isHealth("10.0.0.1:80/prod/notserving", "10.0.0.2:80/prod/serving"))
	// Terminating and no longer serving: no change for graylane.
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a", stop: true}, ep{ip: "10.0.0.2", pod: "b", notReady: true})
	registrytest.WaitFor(t, w, wait, "a terminating, not serving", isHealth("10.0.0.1:80/prod/notserving", "10.0.0.2:80/prod/notserving"))
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a", stop: true}, ep{ip: "10.0.0.2", pod: "b"})
	registrytest.WaitFor(t, w, wait, "b ready again", isHealth("10.0.0.1:80/prod/notserving", "10.0.0.2:80/prod/serving"))

	c.deletePod("a")
	registrytest.WaitFor(t, w, wait, "a's pod deleted", isHealth("10.0.0.2:80/prod/serving"))
	c.slice("s2", "svc", "", 81, ep{ip: "10.0.0.3", pod: "b"})
	registrytest.WaitFor(t, w, wait, "a second slice", isHealth("10.0.0.2:80/prod/serving", "10.0.0.3:81/prod/serving"))
	c.deleteSlice("s")
	registrytest.WaitFor(t, w, wait, "the first slice deleted", isHealth("10.0.0.3:81/prod/serving"))
	c.deletePod("b")
	registrytest.WaitFor(t, w, wait, "all gone", is())
}

// TestBadInput: what cannot be read is left out with a counted reason and
// a debug log; the rest of the service stays.
func TestBadInput(t *testing.T) {
	c := newCluster(t)
	c.pod("good", map[string]string{DefaultLaneLabel: "gray"}, map[string]string{DefaultWeightAnnotation: "7"})
	c.pod("empty-lane", map[string]string{DefaultLaneLabel: ""}, nil)
	c.pod("bad-weight", nil, map[string]string{DefaultWeightAnnotation: "heavy"})
	c.slice("ok", "svc", "grpc", 9000,
		ep{ip: "10.0.0.1", pod: "good"},
		ep{ip: "10.0.0.2", pod: "empty-lane"},
		ep{ip: "10.0.0.3", pod: "bad-weight"},
		ep{ip: "10.0.0.4", noTarget: true},
		ep{ip: "10.0.0.5", pod: "no-such-pod"},
	)
	c.slice("wrong-port", "svc", "http", 8080, ep{ip: "10.0.0.6", pod: "good"})
	reader := sdkmetric.NewManualReader()
	var logs syncBuffer
	reg := c.registry(nil, WithPortName("grpc"),
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	got, _ := registrytest.WaitFor(t, watchService(t, reg, "svc"), wait, "the readable instances", is("10.0.0.1:9000/gray", "10.0.0.3:9000/prod"))
	assert.Equal(t, uint32(7), got[0].Weight)
	assert.Equal(t, uint32(0), got[1].Weight, "an invalid weight is weight 1")
	want := map[string]int64{
		ReasonInvalidLane: 1, ReasonInvalidWeight: 1, ReasonNoTargetRef: 1, ReasonPodNotFound: 1, ReasonPortNotFound: 1,
	}
	assert.Equal(t, want, metrictest.Counts(t, reader, IgnoredMetric, AttrReason))
	for reason := range want {
		assert.Contains(t, logs.String(), "reason="+reason)
	}
	assert.NotContains(t, logs.String(), "level=WARN")

	// Counted once, not at every change of the service.
	c.pod("late", nil, nil)
	c.slice("late", "svc", "grpc", 9000, ep{ip: "10.0.0.9", pod: "late"})
	registrytest.WaitFor(t, watchService(t, reg, "svc"), wait, "a new instance", is("10.0.0.1:9000/gray", "10.0.0.3:9000/prod", "10.0.0.9:9000/prod"))
	assert.Equal(t, want, metrictest.Counts(t, reader, IgnoredMetric, AttrReason))

	// A missing Pod arriving late becomes an instance.
	c.pod("no-such-pod", nil, nil)
	registrytest.WaitFor(t, watchService(t, reg, "svc"), wait, "the late pod", is("10.0.0.1:9000/gray", "10.0.0.3:9000/prod", "10.0.0.5:9000/prod", "10.0.0.9:9000/prod"))

	// Several ports and no name to choose one.
	plain := c.registry(nil)
	c.pod("x", nil, nil)
	_, err := c.api.DiscoveryV1().EndpointSlices(c.ns).Create(bg, twoPorts(c.ns, "x"), metav1.CreateOptions{})
	require.NoError(t, err)
	registrytest.WaitFor(t, watchService(t, plain, "two"), wait, "a slice of two ports ignored", is())
}

// TestLaneSelectors: lanes as label selectors, like DestinationRule
// subsets; a Pod in two lanes is a reported configuration error.
func TestLaneSelectors(t *testing.T) {
	c := newCluster(t)
	c.pod("v1", map[string]string{"version": "v1"}, nil)
	c.pod("v2", map[string]string{"version": "v2"}, nil)
	c.pod("v3", map[string]string{"version": "v3"}, nil)
	c.pod("both", map[string]string{"version": "v2", "track": "canary"}, nil)
	c.slice("s", "reviews", "", 9080, ep{ip: "10.0.0.1", pod: "v1"}, ep{ip: "10.0.0.2", pod: "v2"}, ep{ip: "10.0.0.3", pod: "v3"}, ep{ip: "10.0.0.4", pod: "both"})
	c.slice("r", "ratings", "", 9080, ep{ip: "10.0.1.1", pod: "v1"}, ep{ip: "10.0.1.2", pod: "v2"}, ep{ip: "10.0.1.4", pod: "both"})
	var logs syncBuffer
	reg := c.registry(nil,
		WithLaneSelectors(map[string]string{"prod": "version=v1", "gray": "version=v2"}),
		WithServiceLaneSelectors("reviews", map[string]string{"prod": "version=v1", "gray": "version=v2", "canary": "track=canary"}),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	registrytest.WaitFor(t, watchService(t, reg, "reviews"), wait, "reviews", is("10.0.0.1:9080/prod", "10.0.0.2:9080/gray", "10.0.0.3:9080/prod"))
	registrytest.WaitFor(t, watchService(t, reg, "ratings"), wait, "ratings", is("10.0.1.1:9080/prod", "10.0.1.2:9080/gray", "10.0.1.4:9080/gray"))
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "reason="+ReasonLaneConflict)
	assert.Contains(t, logs.String(), "what=\"pod both\"")

	for _, bad := range []map[string]string{
		{"gray": ""}, {"gray": "version in (v1"}, {"not a lane": "version=v2"},
	} {
		_, err := New(c.s.AdminConfig(), WithLaneSelectors(bad))
		assert.Error(t, err, "%v", bad)
	}
}

// TestNamespaces: "name.namespace" reaches another namespace; names that
// are no Kubernetes names are refused.
func TestNamespaces(t *testing.T) {
	c, other := newCluster(t), newCluster(t)
	other.pod("a", map[string]string{DefaultLaneLabel: "gray"}, nil)
	other.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"})
	c.pod("b", nil, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.2", pod: "b"})
	reg := c.registry(nil)
	got, _ := registrytest.WaitFor(t, watchService(t, reg, "svc."+other.ns), wait, "the other namespace", is("10.0.0.1:80/gray"))
	assert.Equal(t, "svc."+other.ns, got[0].Service)
	got, _ = registrytest.WaitFor(t, watchService(t, reg, "svc."+c.ns), wait, "its own namespace, named", is("10.0.0.2:80/prod"))
	assert.Equal(t, "svc", got[0].Service)
	for _, bad := range []string{"Svc", "svc.Other", "svc.a.b", "9svc", "svc_x"} {
		_, err := reg.Watch(bg, bad)
		assert.ErrorIs(t, err, registry.ErrInvalidInstance, bad)
	}
}

// TestRBAC: the shipped manifest is all the Registry needs, and it grants
// no write.
func TestRBAC(t *testing.T) {
	c := newCluster(t)
	manifest, err := os.ReadFile("rbac.yaml")
	require.NoError(t, err)
	manifest = bytes.ReplaceAll(manifest, []byte("namespace: default # the application's namespace"), []byte("namespace: "+c.ns))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	kinds := 0
	for {
		var raw struct {
			Kind string `json:"kind"`
		}
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			break
		}
		js, _ := json.Marshal(obj)
		require.NoError(t, json.Unmarshal(js, &raw))
		switch raw.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			require.NoError(t, json.Unmarshal(js, &sa))
			_, err = c.api.CoreV1().ServiceAccounts(c.ns).Create(bg, &sa, metav1.CreateOptions{FieldValidation: "Strict"})
		case "Role":
			var role rbacv1.Role
			require.NoError(t, json.Unmarshal(js, &role))
			_, err = c.api.RbacV1().Roles(c.ns).Create(bg, &role, metav1.CreateOptions{FieldValidation: "Strict"})
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			require.NoError(t, json.Unmarshal(js, &rb))
			_, err = c.api.RbacV1().RoleBindings(c.ns).Create(bg, &rb, metav1.CreateOptions{FieldValidation: "Strict"})
		default:
			t.Fatalf("unexpected kind %q in rbac.yaml", raw.Kind)
		}
		require.NoError(t, err, raw.Kind)
		kinds++
	}
	require.Equal(t, 3, kinds)

	cfg, err := c.s.ServiceAccountConfig(bg, c.ns, "graylane")
	require.NoError(t, err)
	c.pod("a", map[string]string{DefaultLaneLabel: "gray"}, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"})
	// As a program given a kubeconfig would: LoadConfig reads it.
	path, err := c.s.Kubeconfig(cfg, c.ns+".kubeconfig")
	require.NoError(t, err)
	loaded, ns, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "default", ns, "the kubeconfig's context names no namespace")
	reg := c.registry(loaded)
	registrytest.WaitFor(t, watchService(t, reg, "svc"), wait, "read with the manifest's rights", is("10.0.0.1:80/gray"))

	// A namespace the account may not read: the Watcher gets no set, and
	// the refusal is counted and logged at warn level.
	reader := sdkmetric.NewManualReader()
	var logs syncBuffer
	denied := c.registry(loaded, WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	dw := watchService(t, denied, "svc.default")
	ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
	_, err = dw.Next(ctx)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Positive(t, metrictest.Counts(t, reader, WatchErrorsMetric, AttrReason)["forbidden"])
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "forbidden")

	_, err = reg.client.CoreV1().Pods(c.ns).Create(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no write: %v", err)
	_, err = reg.client.CoreV1().Pods("default").List(bg, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no other namespace: %v", err)
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// twoPorts is an EndpointSlice of service "two" with two ports.
func twoPorts(ns, pod string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "two", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "two"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("a"), Port: ptr(int32(1))}, {Name: ptr("b"), Port: ptr(int32(2))}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod}}},
	}
}
