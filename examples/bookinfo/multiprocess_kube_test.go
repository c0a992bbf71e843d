package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/examples/bookinfo/loadgen"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/kubernetes/kubetest"
)

// kubeFleet runs deployments of the demo as processes that discover each
// other through the API server, playing kubelet and endpointslice
// controller for them: each process gets a Pod, labelled as in the
// manifests, and an EndpointSlice of its Service with its made-up Pod IP
// and its loopback port, which the processes dial on 127.0.0.1
// (app.DialMapEnv).
type kubeFleet struct {
	*fleetProcs
	s    *kubetest.Server
	ns   string
	pods int
}

// deploy starts a deployment's process, waits until it listens, then
// creates its Pod and the EndpointSlice that makes it an instance.
func (k *kubeFleet) deploy(t *testing.T, name string) *proc {
	t.Helper()
	var d app.Deployment
	for _, x := range app.Deployments() {
		if x.Name == name {
			d = x
		}
	}
	require.Equal(t, name, d.Name)
	k.pods++
	ip, pod := kubetest.PodIP(k.pods), name+"-0"
	_, port, _ := net.SplitHostPort(etcdtest.FreeAddr(t))
	p := k.start(name, "-deployment", name, "-instance-port", port, "-advertise-host", ip, "-instance-name", pod)
	deadline := time.Now().Add(defaultTestTimeout) // nothing to await but the port: bounded polling
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %s", name, p.out)
		default:
		}
		require.True(t, time.Now().Before(deadline), "%s does not listen on %s", name, port)
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	labels := map[string]string{"app": d.Service, "version": d.Version}
	if d.Lane != "" {
		labels[laneLabel] = d.Lane
	}
	require.NoError(t, kubetest.CreatePod(ctx, k.s.Admin(), k.ns, pod, labels, nil))
	n, _ := strconv.Atoi(port)
	require.NoError(t, kubetest.PutSlice(ctx, k.s.Admin(), k.ns, pod, d.Service, "", int32(n), kubetest.Endpoint{IP: ip, Pod: pod}))
	return p
}

// TestMultiProcessKubernetes runs the demo as separate processes with
// -registry kubernetes and no etcd: they find each other through Pods and
// EndpointSlices in a real API server. It replays the gray rows of the
// walkthrough, then removes the reviews-v2 Pod's endpoint under a steady
// gray load: gray requests go to reviews-v1 within a second, and none
// fails.
func TestMultiProcessKubernetes(t *testing.T) {
	s := needKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := s.Namespace(ctx, "bookinfo-procs")
	require.NoError(t, err)
	kc, err := s.Kubeconfig(s.AdminConfig(), ns+".kubeconfig")
	require.NoError(t, err)

	bin := filepath.Join(t.TempDir(), "bookinfo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building the demo")

	k := &kubeFleet{s: s, ns: ns, fleetProcs: &fleetProcs{t: t, bin: bin,
		args: []string{"-log-level", "warn", "-registry", "kubernetes", "-kubeconfig", kc, "-namespace", ns},
		env:  []string{app.DialMapEnv + "=" + kubetest.PodNet.String() + "=127.0.0.1"},
	}}
	defer k.stopAll()
	gw := etcdtest.FreeAddr(t)
	k.start("gateway", "-deployment", "gateway", "-gateway-addr", gw)
	for _, d := range []string{"productpage-v1", "details-v1", "reviews-v1", "ratings-v1"} {
		k.deploy(t, d)
	}

	client := newClient(t)
	base := "http://" + gw + "/productpage"
	get := func(h http.Header) func() page {
		return func() page {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p, _, err := get(ctx, client, base, h)
			if err != nil {
				return page{} // the gateway not up yet: the callers wait for a page
			}
			return p
		}
	}
	untagged, gray, v3 := get(nil), get(http.Header{"X-Traffic-Tag": {"gray"}}), get(http.Header{"X-Traffic-Tag": {"v3"}})

	// Untagged: prod everywhere, no ratings call.
	p := until(t, "every process up", untagged, func(p page) bool {
		return p.status == 200 && len(p.hops) == 4 && p.reviewsPod() == "reviews-v1-0" && !p.anyFailed()
	})
	assert.Equal(t, []string{"gateway@gateway(prod)", "productpage@productpage-v1-0(prod)", "details@details-v1-0(prod)", "reviews@reviews-v1-0(prod)"}, p.route())
	assert.Empty(t, p.stars())

	// Gray with every gray deployment at 0: each hop falls back to prod.
	p = gray()
	assert.Equal(t, []string{"gateway@gateway(prod)", "productpage@productpage-v1-0(prod)!noinstances",
		"details@details-v1-0(prod)!noinstances", "reviews@reviews-v1-0(prod)!noinstances"}, p.route())

	// reviews-v2 at 1: black stars, ratings from v1 by fallback.
	reviewsV2 := k.deploy(t, "reviews-v2")
	p = until(t, "reviews-v2 up", gray, func(p page) bool { return p.reviewsPod() == "reviews-v2-0" })
	assert.Equal(t, []string{"black:5", "black:4"}, p.stars())
	assert.Equal(t, "ratings@ratings-v1-0(prod)!noinstances", p.route()[4])

	// ratings-v2 at 1: black stars with 3 and 2.
	k.deploy(t, "ratings-v2")
	p = until(t, "ratings-v2 up", gray, func(p page) bool { return len(p.hops) == 5 && p.hops[4].Instance == "ratings-v2-0" })
	assert.Equal(t, []string{"black:3", "black:2"}, p.stars())
	assert.Equal(t, "ratings@ratings-v2-0(gray)", p.route()[4])

	// reviews-v3 at 1, tag v3: red stars, ratings from v1 by fallback.
	k.deploy(t, "reviews-v3")
	p = until(t, "reviews-v3 up", v3, func(p page) bool { return p.reviewsPod() == "reviews-v3-0" })
	assert.Equal(t, []string{"red:5", "red:4"}, p.stars())
	assert.Equal(t, "ratings@ratings-v1-0(prod)!noinstances", p.route()[4])
	assert.Equal(t, "reviews-v1-0", until(t, "untagged unchanged", untagged, func(p page) bool { return p.status == 200 }).reviewsPod())

	// The endpointslice controller removes reviews-v2's endpoint (its Pod
	// is being deleted) under a steady gray load; the process keeps
	// serving what it has, as a terminating Pod does.
	progress, stopLoad := startGrayLoad(base)
	defer stopLoad()
	removed := time.Now()
	require.NoError(t, kubetest.PutSlice(ctx, s.Admin(), ns, "reviews-v2-0", "reviews", "", 0))
	until(t, "gray falls back to reviews-v1", gray, func(p page) bool { return p.reviewsPod() == "reviews-v1-0" })
	fellBack := time.Since(removed)
	// The Pod goes, and its process stops gracefully.
	require.NoError(t, reviewsV2.cmd.Process.Signal(syscall.SIGTERM))
	<-reviewsV2.done
	for range 50 { // a little more load after the process has gone
		<-progress
	}
	res := stopLoad()
	t.Logf("load while reviews-v2's endpoint was removed: %d requests, %d failed; gray fell back to reviews-v1 after %v",
		res.Requests, res.Errors, fellBack.Round(time.Millisecond))
	assert.Zero(t, res.Errors, "%v", res.ErrorSamples)
	assert.LessOrEqual(t, fellBack, time.Second, "gray on reviews-v1 within a second of the endpoint's removal")

	after, err := loadgen.Run(context.Background(), loadgen.Config{URL: base, Rate: 50, Duration: 2 * time.Second, Tagged: 1, Route: true, PageErrors: true})
	require.NoError(t, err)
	assert.Zero(t, after.Errors, "%v", after.ErrorSamples)
	assert.NotZero(t, after.Served["gray"]["reviews-v1-0"])
	assert.Zero(t, after.Served["gray"]["reviews-v2-0"], "the removed endpoint is gone from the lane")
}
