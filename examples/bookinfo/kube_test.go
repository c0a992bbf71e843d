package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/graylane/graylane/registry/kubernetes/kubetest"
)

// kube is the API server the tests share, started by the first test that
// needs it and stopped by TestMain.
var (
	kube     *kubetest.Server
	kubeErr  error
	kubeOnce sync.Once
)

// needKube returns the shared API server. Without the kube-apiserver
// binary the test skips, saying how to build it (it fails when CI=true).
func needKube(t *testing.T) *kubetest.Server {
	t.Helper()
	bin := kubetest.Require(t)
	kubeOnce.Do(func() {
		start := time.Now()
		if kube, kubeErr = kubetest.Start(bin, "", kubetest.Options{}); kubeErr == nil {
			t.Logf("kubetest: API server ready in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	require.NoError(t, kubeErr, "no API server")
	return kube
}

func closeKube() {
	if kube != nil {
		kube.Close()
	}
}

// manifestGVR is the resource of each kind the manifests hold.
var manifestGVR = map[string]schema.GroupVersionResource{
	"Namespace":      {Version: "v1", Resource: "namespaces"},
	"ServiceAccount": {Version: "v1", Resource: "serviceaccounts"},
	"Service":        {Version: "v1", Resource: "services"},
	"Role":           {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":    {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"Deployment":     {Group: "apps", Version: "v1", Resource: "deployments"},
}

// TestKubernetesManifestsAccepted creates every object of k8s/bookinfo.yaml
// in a real API server with strict server-side field validation (an
// unknown or duplicate field is an error, not a warning), in a namespace of
// the test's own instead of bookinfo; then checks that the service account
// of the manifests may read Pods and EndpointSlices, and nothing more.
func TestKubernetesManifestsAccepted(t *testing.T) {
	s := needKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(s.AdminConfig())
	require.NoError(t, err)
	strict := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}

	// Strict validation is on: a misspelt field is refused.
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "typo", "namespace": "default"},
		"spec":     map[string]any{"selectr": map[string]any{"app": "x"}, "ports": []any{map[string]any{"port": int64(80)}}},
	}}
	_, err = dyn.Resource(manifestGVR["Service"]).Namespace("default").Create(ctx, bad, strict)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "spec.selectr"`)

	data, err := os.ReadFile("k8s/bookinfo.yaml")
	require.NoError(t, err)
	ns := fmt.Sprintf("bookinfo-%d", time.Now().UnixNano()%1e9) // the test's own namespace
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	created := map[string]int{}
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		if len(u.Object) == 0 {
			continue // the leading comment
		}
		kind := u.GetKind()
		gvr, ok := manifestGVR[kind]
		require.True(t, ok, "a kind the test does not know: %s", kind)
		if kind == "Namespace" {
			require.Equal(t, "bookinfo", u.GetName())
		} else {
			require.Equal(t, "bookinfo", u.GetNamespace(), "%s %s", kind, u.GetName())
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if kind == "Namespace" {
			u.SetName(ns)
		} else {
			u.SetNamespace(ns)
			ri = dyn.Resource(gvr).Namespace(ns)
		}
		if kind == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, sub := range subjects {
				sub.(map[string]any)["namespace"] = ns
			}
			require.NoError(t, unstructured.SetNestedSlice(u.Object, subjects, "subjects"))
		}
		_, err := ri.Create(ctx, &u, strict)
		require.NoError(t, err, "%s %s", kind, u.GetName())
		created[kind]++
	}
	t.Logf("created with strict validation: %v", created)
	assert.Equal(t, map[string]int{"Namespace": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "Service": 7, "Deployment": 12}, created)

	// The registry's access: read Pods and EndpointSlices, write nothing.
	cfg, err := s.ServiceAccountConfig(ctx, ns, "graylane")
	require.NoError(t, err)
	sa, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	assert.NoError(t, err)
	_, err = sa.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	assert.NoError(t, err)
	_, err = sa.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{})
	assert.True(t, apierrors.IsForbidden(err), "the registry's account may not write: %v", err)
	_, err = sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "nor read other namespaces: %v", err)
}
