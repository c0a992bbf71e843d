package kubernetes

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/kubernetes/kubetest"
)

// srv is the API server the tests share, each in namespaces of its own,
// started by the first test that needs it (fuzzing needs none).
var (
	srv     *kubetest.Server
	srvErr  error
	srvOnce sync.Once
)

func TestMain(m *testing.M) {
	// client-go logs through klog; the API server's outages in the fault
	// tests would fill the output.
	klog.SetLogger(logr.Discard())
	if _, err := kubetest.Binary(); err != nil {
		msg, fail := kubetest.Unavailable(err)
		fmt.Fprintln(os.Stderr, msg)
		if fail {
			os.Exit(1)
		}
	}
	code := m.Run()
	if srv != nil {
		srv.Close()
	}
	if code == 0 {
		if err := goleak.Find(goleakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func goleakOptions() []goleak.Option {
	return []goleak.Option{
		// klog's process-wide flush daemon.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	}
}

// needServer returns the shared API server, starting it on first use. It
// skips the test without a binary (fails it in CI).
func needServer(t testing.TB) *kubetest.Server {
	t.Helper()
	bin := kubetest.Require(t)
	srvOnce.Do(func() {
		start := time.Now()
		srv, srvErr = kubetest.Start(bin, "", kubetest.Options{})
		if srvErr == nil {
			t.Logf("kubetest: API server ready in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if srv == nil {
		t.Fatal("no API server:", srvErr)
	}
	return srv
}

// cluster is one test's namespace, and the writes that the kubelet and
// the endpointslice controller would make in it.
type cluster struct {
	t   testing.TB
	s   *kubetest.Server
	ns  string
	api *kubernetes.Clientset
}

func newCluster(t testing.TB) *cluster {
	s := needServer(t)
	return newClusterOn(t, s)
}

func newClusterOn(t testing.TB, s *kubetest.Server) *cluster {
	t.Helper()
	ns, err := s.Namespace(context.Background(), nsPrefix(t.Name()))
	require.NoError(t, err)
	return &cluster{t: t, s: s, ns: ns, api: s.Admin()}
}

// nsPrefix makes a namespace prefix of a test name.
func nsPrefix(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b[:min(len(b), 40)]), "-")
}

// registry returns a Registry of the cluster's namespace with cfg (the
// administrator's by default), closed when the test ends.
func (c *cluster) registry(cfg *rest.Config, opts ...Option) *Registry {
	c.t.Helper()
	if cfg == nil {
		cfg = c.s.AdminConfig()
	}
	r, err := New(cfg, append([]Option{WithNamespace(c.ns)}, opts...)...)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { r.Close() })
	return r
}

// watch returns a Watcher of service, closed when the test ends.
func watchService(t testing.TB, reg registry.Registry, service string) registry.Watcher {
	t.Helper()
	w, err := reg.Watch(context.Background(), service)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

var bg = context.Background()

// pod creates a Pod, as a Deployment would. No scheduler or kubelet
// touches it: it stays Pending, which the Registry does not look at.
func (c *cluster) pod(name string, labels, annotations map[string]string) {
	c.t.Helper()
	require.NoError(c.t, c.createPod(bg, name, labels, annotations))
}

func (c *cluster) createPod(ctx context.Context, name string, labels, annotations map[string]string) error {
	return kubetest.CreatePod(ctx, c.api, c.ns, name, labels, annotations)
}

// patchPod merges patch (JSON) into a Pod's metadata.
func (c *cluster) patchPod(name, patch string) {
	c.t.Helper()
	_, err := c.api.CoreV1().Pods(c.ns).Patch(bg, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(c.t, err)
}

// label sets (or, with value nil, removes) a Pod label.
func (c *cluster) label(name, key string, value *string) {
	c.t.Helper()
	v := "null"
	if value != nil {
		v = strconv.Quote(*value)
	}
	c.patchPod(name, fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, key, v))
}

func (c *cluster) deletePod(name string) {
	c.t.Helper()
	zero := int64(0)
	require.NoError(c.t, c.api.CoreV1().Pods(c.ns).Delete(bg, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
}

// ep is one endpoint of a slice.
type ep struct {
	ip, pod                     string
	notReady, terminating, stop bool // stop: terminating and not serving
	noTarget                    bool
}

func ptr[T any](v T) *T { return &v }

// slice writes (creates or replaces) an EndpointSlice of service, as the
// endpointslice controller would: port (named portName, "" for none) and
// the endpoints eps.
func (c *cluster) slice(name, service, portName string, port int32, eps ...ep) {
	c.t.Helper()
	require.NoError(c.t, c.putSlice(bg, name, service, portName, port, eps...))
}

func (c *cluster) putSlice(ctx context.Context, name, service, portName string, port int32, eps ...ep) error {
	var out []kubetest.Endpoint
	for _, e := range eps {
		k := kubetest.Endpoint{IP: e.ip, Pod: e.pod, NotReady: e.notReady, Terminating: e.terminating, Stopped: e.stop}
		if e.noTarget {
			k.Pod = ""
		}
		out = append(out, k)
	}
	return kubetest.PutSlice(ctx, c.api, c.ns, name, service, portName, port, out...)
}

func (c *cluster) deleteSlice(name string) {
	c.t.Helper()
	require.NoError(c.t, c.api.DiscoveryV1().EndpointSlices(c.ns).Delete(bg, name, metav1.DeleteOptions{}))
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
