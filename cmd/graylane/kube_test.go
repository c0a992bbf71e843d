package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/graylane/graylane/registry/kubernetes/kubetest"
)

// kube is the API server of the Kubernetes tests, started by the first
// one and stopped by TestMain.
var (
	kube     *kubetest.Server
	kubeErr  error
	kubeOnce sync.Once
)

// kubeCluster is a namespace of the test API server holding a small
// Bookinfo, as the endpointslice controller would write it, and a
// kubeconfig for it.
type kubeCluster struct {
	ns, kubeconfig string
}

func newKubeCluster(t *testing.T) *kubeCluster {
	t.Helper()
	bin := kubetest.Require(t) // skips without the binary, fails in CI
	kubeOnce.Do(func() { kube, kubeErr = kubetest.Start(bin, "", kubetest.Options{}) })
	require.NoError(t, kubeErr, "no API server")
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	ns, err := kube.Namespace(ctx, "graylane-cmd")
	require.NoError(t, err)
	kc, err := kube.Kubeconfig(kube.AdminConfig(), ns+".kubeconfig")
	require.NoError(t, err)
	api := kube.Admin()
	pods := []struct {
		name, service, lane string
		notReady            bool
	}{
		{"details-v1-0", "details", "", false},
		{"reviews-v1-0", "reviews", "", false},
		{"reviews-v2-0", "reviews", "gray", false},
		{"reviews-v2-1", "reviews", "gray", true},
		{"reviews-v3-0", "reviews", "v3", true},
		{"ratings-v1-0", "ratings", "", false},
	}
	for i, p := range pods {
		labels := map[string]string{"app": p.service}
		if p.lane != "" {
			labels["ASM_TRAFFIC_TAG"] = p.lane
		}
		require.NoError(t, kubetest.CreatePod(ctx, api, ns, p.name, labels, nil))
		require.NoError(t, kubetest.PutSlice(ctx, api, ns, p.name, p.service, "grpc", 9080,
			kubetest.Endpoint{IP: kubetest.PodIP(i + 1), Pod: p.name, NotReady: p.notReady}))
	}
	return &kubeCluster{ns: ns, kubeconfig: kc}
}

// TestLanesKubernetes: graylane lanes reads a namespace of a real API
// server: every service with EndpointSlices, lanes from the Pods' lane
// label, health from the endpoints' conditions; --watch shows a lane
// label flipped on a live Pod.
func TestLanesKubernetes(t *testing.T) {
	c := newKubeCluster(t)
	args := []string{"lanes", "--registry", "kubernetes", "--kubeconfig", c.kubeconfig, "--namespace", c.ns, "-o", "json"}
	code, stdout, stderr := runCmd(t, "", args...)
	require.Equal(t, exitOK, code, stderr)
	var v lanesJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
	assert.Equal(t, []string{"prod", "gray", "v3"}, v.Lanes)
	var services []string
	for _, s := range v.Services {
		services = append(services, s.Service)
	}
	assert.Equal(t, []string{"details", "ratings", "reviews"}, services)
	assert.Equal(t, "1/1", cell(t, stdout, "reviews", "prod"))
	assert.Equal(t, "1/2", cell(t, stdout, "reviews", "gray"))
	assert.Equal(t, "0/1", cell(t, stdout, "reviews", "v3"))
	gray := v.Services[2].Lanes[1]
	require.Len(t, gray.Instances, 2)
	assert.Equal(t, instanceJSON{Name: "reviews-v2-0", Addr: kubetest.PodIP(3) + ":9080", Lane: "gray", Weight: 1, Health: "serving"}, gray.Instances[0])

	// The lane label of a live Pod flips: --watch shows it.
	w := startWatch(t, args[1:]...)
	w.await(t, defaultTestTimeout, "the first matrix", func(l string) bool { return cell(t, l, "details", "prod") == "1/1" })
	flipped := time.Now()
	_, err := kube.Admin().CoreV1().Pods(c.ns).Patch(context.Background(), "details-v1-0", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"ASM_TRAFFIC_TAG":"gray"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	w.await(t, changeTimeout, "details in gray", func(l string) bool { return cell(t, l, "details", "gray") == "1/1" })
	t.Logf("lane label flip shown by --watch after %v", time.Since(flipped).Round(time.Millisecond))

	// Without --namespace: the kubeconfig's (here none: "default", empty).
	code, stdout, stderr = runCmd(t, "", args[:len(args)-4]...)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "no services\n", stdout)
}

// TestLanesKubernetesBadConfig: a kubeconfig that cannot be read is an
// error that names it; a bad namespace is bad usage.
func TestLanesKubernetesBadConfig(t *testing.T) {
	code, _, stderr := runCmd(t, "", "lanes", "--registry", "kubernetes", "--kubeconfig", "/nonexistent/kubeconfig")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "/nonexistent/kubeconfig")
	c := newKubeCluster(t)
	code, _, stderr = runCmd(t, "", "lanes", "--registry", "kubernetes", "--kubeconfig", c.kubeconfig, "--namespace", "Not_A_Namespace")
	assert.Equal(t, exitUsage, code, stderr)
	assert.Contains(t, stderr, fmt.Sprintf("%q", "Not_A_Namespace"))
}
