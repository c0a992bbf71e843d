package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// laneLabel is the Pod label the manifests put the lane in: the Kubernetes
// registry's default, as in the ASM walkthrough.
const laneLabel = "ASM_TRAFFIC_TAG"

type k8sContainer struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
}

type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int           `yaml:"replicas"`
		Selector map[string]any `yaml:"selector"`
		Type     string         `yaml:"type"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				ServiceAccountName string         `yaml:"serviceAccountName"`
				Containers         []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	Subjects []struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"subjects"`
}

// readManifests returns the objects of k8s/bookinfo.yaml by kind and name.
func readManifests(t *testing.T) map[string]map[string]k8sDoc {
	t.Helper()
	data, err := os.ReadFile("k8s/bookinfo.yaml")
	require.NoError(t, err)
	seen := map[string]map[string]k8sDoc{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d k8sDoc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		if d.Kind == "" {
			continue // the leading comment
		}
		if seen[d.Kind] == nil {
			seen[d.Kind] = map[string]k8sDoc{}
		}
		seen[d.Kind][d.Metadata.Name] = d
	}
	return seen
}

// TestKubernetesManifests checks the sample manifests against the demo:
// one Deployment per deployment of the demo, its pods labelled with their
// lane (none for the base lane) under the registry's lane label, the lane
// passed as GRAYLANE_TAG from that label, the Kubernetes registry with the
// read-only service account, a Service per app and one for the consumer
// group, no etcd, and flags this binary knows.
func TestKubernetesManifests(t *testing.T) {
	seen := readManifests(t)
	deps := seen["Deployment"]
	services := map[string]bool{}
	for _, want := range app.Deployments() {
		services[want.Service] = true
		d, ok := deps[want.Name]
		require.True(t, ok, "no Deployment %s", want.Name)
		labels := d.Spec.Template.Metadata.Labels
		assert.Equal(t, map[string]any{"matchLabels": map[string]any{"app": want.Service, "version": want.Version}}, d.Spec.Selector, want.Name)
		assert.Equal(t, want.Service, labels["app"], want.Name)
		assert.Equal(t, want.Version, labels["version"], want.Name)
		lane, labelled := labels[laneLabel]
		assert.Equal(t, want.Lane != "", labelled, "%s: only the pods of a lane carry %s", want.Name, laneLabel)
		assert.Equal(t, want.Lane, lane, want.Name)
		assert.Equal(t, labels, d.Metadata.Labels, want.Name)
		require.NotNil(t, d.Spec.Replicas)
		assert.Equal(t, want.Replicas, *d.Spec.Replicas, want.Name)
		assert.Equal(t, "graylane", d.Spec.Template.Spec.ServiceAccountName, want.Name)
		c := d.Spec.Template.Spec.Containers[0]
		assert.Contains(t, c.Args, "-deployment="+want.Name)
		assert.Contains(t, c.Args, "-registry=kubernetes", want.Name)
		if want.Service == "notifications" || want.Service == "productpage" {
			assert.Contains(t, c.Args, "-nats=nats://nats:4222", "%s: publishes or consumes the page view events", want.Name)
		}
		var fromLabel bool
		for _, e := range c.Env {
			if e.Name == "GRAYLANE_TAG" && e.ValueFrom.FieldRef.FieldPath == "metadata.labels['"+laneLabel+"']" {
				fromLabel = true
			}
		}
		assert.True(t, fromLabel, "%s: GRAYLANE_TAG from the pod's lane label", want.Name)
		checkFlags(t, want.Name, c.Args)
	}
	gw, ok := deps["gateway"]
	require.True(t, ok)
	assert.Contains(t, gw.Spec.Template.Spec.Containers[0].Args, "-registry=kubernetes")
	checkFlags(t, "gateway", gw.Spec.Template.Spec.Containers[0].Args)

	services[app.NotificationsGroup] = true
	delete(services, "notifications") // no RPC service: its consumers are the group's
	services["gateway"], services["nats"] = true, true
	for name := range services {
		s, ok := seen["Service"][name]
		if assert.True(t, ok, "no Service %s", name) && name != app.NotificationsGroup {
			assert.Equal(t, map[string]any{"app": name}, s.Spec.Selector, name)
		}
	}
	assert.Equal(t, map[string]any{"app": "notifications"}, seen["Service"][app.NotificationsGroup].Spec.Selector)
	assert.Len(t, seen["Service"], len(services))

	assert.Empty(t, seen["StatefulSet"], "no etcd: the registry is the Kubernetes API")
	assert.Contains(t, seen["ServiceAccount"], "graylane")
	assert.Contains(t, seen["Role"], "graylane-registry")
	rb := seen["RoleBinding"]["graylane-registry"]
	require.Len(t, rb.Subjects, 1)
	assert.Equal(t, "bookinfo", rb.Subjects[0].Namespace)
	for kind, objs := range seen {
		for name, o := range objs {
			if kind != "Namespace" {
				assert.Equal(t, "bookinfo", o.Metadata.Namespace, "%s %s", kind, name)
			}
		}
	}
}

// checkFlags checks that the demo knows every flag of args.
func checkFlags(t *testing.T, name string, args []string) {
	t.Helper()
	for _, a := range args {
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		var out, errOut bytes.Buffer
		run([]string{"-" + flag + "=x", "-h"}, &out, &errOut)
		assert.NotContains(t, errOut.String(), "flag provided but not defined", "%s: unknown flag %s", name, flag)
	}
}
