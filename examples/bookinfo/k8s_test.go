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

// TestKubernetesManifests checks the sample manifests against the demo:
// one Deployment per deployment of the demo, labelled with its lane, the
// lane passed as GRAYLANE_TAG from that label, and flags this binary knows.
func TestKubernetesManifests(t *testing.T) {
	data, err := os.ReadFile("k8s/bookinfo.yaml")
	require.NoError(t, err)
	type container struct {
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
	type doc struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Containers []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	seen := map[string]doc{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		if d.Kind == "Deployment" {
			seen[d.Metadata.Name] = d
		}
	}
	for _, want := range app.Deployments() {
		if want.Service == "notifications" {
			continue // the manifests run no NATS server yet: no asynchronous hop on Kubernetes
		}
		d, ok := seen[want.Name]
		require.True(t, ok, "no Deployment %s", want.Name)
		assert.Equal(t, want.LaneName(), d.Metadata.Labels["graylane.io/lane"], want.Name)
		require.NotNil(t, d.Spec.Replicas)
		assert.Equal(t, want.Replicas, *d.Spec.Replicas, want.Name)
		c := d.Spec.Template.Spec.Containers[0]
		assert.Contains(t, c.Args, "-deployment="+want.Name)
		var fromLabel bool
		for _, e := range c.Env {
			if e.Name == "GRAYLANE_TAG" && e.ValueFrom.FieldRef.FieldPath == "metadata.labels['graylane.io/lane']" {
				fromLabel = true
			}
		}
		assert.True(t, fromLabel, "%s: GRAYLANE_TAG from the pod's lane label", want.Name)
		for _, a := range c.Args {
			flag, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
			var out, errOut bytes.Buffer
			run([]string{"-" + flag + "=x", "-h"}, &out, &errOut)
			assert.NotContains(t, errOut.String(), "flag provided but not defined", "%s: unknown flag %s", want.Name, flag)
		}
	}
	assert.Contains(t, seen, "gateway")
}
