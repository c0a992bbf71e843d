package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/registrytest"
)

// TestContract runs the registry contract suite on a Registry whose
// writes are Kubernetes objects: Register creates a Pod (its lane label,
// weight annotation and metadata labels from the instance) and an
// EndpointSlice of one endpoint pointing at it (ready unless the instance
// is NotServing), as a Deployment and the endpointslice controller would;
// Update patches them; Deregister deletes them. The checks' reads go
// through the Registry under test.
func TestContract(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		c := newCluster(t)
		reg := c.registry(nil, WithMetadataLabels("version"))
		return &podWriter{Registry: reg, c: c, regs: map[string]*podRegistration{}}
	})
}

// podWriter is a registry.Registry whose writes go to the API server and
// whose watches are the Registry's.
type podWriter struct {
	*Registry
	c *cluster

	mu     sync.Mutex
	closed bool
	regs   map[string]*podRegistration // by service/address
}

type podRegistration struct {
	w          *podWriter
	mu         sync.Mutex
	inst       registry.Instance
	pod, slice string
	gone       bool
}

// objectName makes a Kubernetes name of a service and address.
func objectName(service, addr string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(service + "-" + addr)
}

func (w *podWriter) Register(ctx context.Context, in registry.Instance) (registry.Registration, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	key := in.Service + "/" + in.Addr
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, registry.ErrClosed
	}
	if w.regs[key] != nil {
		w.mu.Unlock()
		return nil, registry.ErrDuplicate
	}
	r := &podRegistration{w: w, inst: in, pod: in.Name, slice: objectName(in.Service, in.Addr)}
	if r.pod == "" {
		r.pod = objectName(in.Service, in.Addr)
	}
	w.regs[key] = r
	w.mu.Unlock()
	if err := w.c.createPod(ctx, r.pod, podLabels(in), podAnnotations(in)); err != nil {
		return nil, err
	}
	if err := r.writeSlice(ctx, in); err != nil {
		return nil, err
	}
	return r, w.await(in, true)
}

func podLabels(in registry.Instance) map[string]string {
	l := map[string]string{}
	if !in.Tag.IsZero() {
		l[DefaultLaneLabel] = in.Tag.String()
	}
	if v, ok := in.Metadata["version"]; ok {
		l["version"] = v
	}
	return l
}

func podAnnotations(in registry.Instance) map[string]string {
	if in.Weight == 0 {
		return nil
	}
	return map[string]string{DefaultWeightAnnotation: strconv.Itoa(int(in.Weight))}
}

func (r *podRegistration) writeSlice(ctx context.Context, in registry.Instance) error {
	host, port, _ := net.SplitHostPort(in.Addr)
	p, _ := strconv.Atoi(port)
	return r.w.c.putSlice(ctx, r.slice, in.Service, "", int32(p), ep{ip: host, pod: r.pod, notReady: in.Health == registry.NotServing})
}

// await waits until the Registry's caches show in (or, present false, its
// absence): the contract has the first Watcher of a service return every
// instance whose Register has returned. The caches are polled: nothing
// announces that an informer has applied a write.
func (w *podWriter) await(in registry.Instance, present bool) error {
	key, display, err := w.Registry.parse(in.Service)
	if err != nil {
		return err
	}
	want := in
	want.Service = display
	if want.Name == "" {
		want.Name = objectName(in.Service, in.Addr)
	}
	w.Registry.mu.Lock()
	nsc := w.Registry.namespaceLocked(key.ns)
	w.Registry.mu.Unlock()
	s := &service{key: key, display: display, nsc: nsc}
	deadline := time.Now().Add(registrytest.Timeout)
	for tick := time.NewTicker(5 * time.Millisecond); ; <-tick.C {
		w.Registry.mu.Lock()
		synced := nsc.synced
		w.Registry.mu.Unlock()
		if synced {
			insts, _ := w.Registry.instances(s)
			found := false
			for _, got := range insts {
				if got.Addr == in.Addr {
					found = got.Equal(want)
				}
			}
			if found == present {
				tick.Stop()
				return nil
			}
		}
		if time.Now().After(deadline) {
			tick.Stop()
			return fmt.Errorf("the registry's caches did not show %+v (present %v) within %v", in, present, registrytest.Timeout)
		}
	}
}

func (r *podRegistration) Instance() registry.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inst
}

func (r *podRegistration) Update(ctx context.Context, in registry.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return registry.ErrNotRegistered
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if in.Service != r.inst.Service || in.Addr != r.inst.Addr {
		return fmt.Errorf("%w: the service and address of a registration are fixed", registry.ErrInvalidInstance)
	}
	// Two objects change: the slice (health) first, then, once the
	// Registry has seen it, the Pod (lane, weight, metadata), so that the
	// Registry never shows the new lane with the old health.
	if in.Health != r.inst.Health {
		if err := r.writeSlice(ctx, in); err != nil {
			return err
		}
		mid := r.inst
		mid.Health = in.Health
		if err := r.w.await(mid, true); err != nil {
			return err
		}
	}
	lane, weight := "null", "null"
	if !in.Tag.IsZero() {
		lane = strconv.Quote(in.Tag.String())
	}
	if in.Weight != 0 {
		weight = strconv.Quote(strconv.Itoa(int(in.Weight)))
	}
	version := "null"
	if v, ok := in.Metadata["version"]; ok {
		version = strconv.Quote(v)
	}
	_, err := r.w.c.api.CoreV1().Pods(r.w.c.ns).Patch(ctx, r.pod, "application/merge-patch+json", fmt.Appendf(nil,
		`{"metadata":{"labels":{%q:%s,"version":%s},"annotations":{%q:%s}}}`, DefaultLaneLabel, lane, version, DefaultWeightAnnotation, weight),
		metav1.PatchOptions{})
	if err != nil {
		return err
	}
	in.Name = r.inst.Name
	r.inst = in
	return nil
}

func (r *podRegistration) Deregister(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return nil
	}
	r.gone = true
	zero := int64(0)
	err := errors.Join(
		r.w.c.api.DiscoveryV1().EndpointSlices(r.w.c.ns).Delete(ctx, r.slice, metav1.DeleteOptions{GracePeriodSeconds: &zero}),
		r.w.c.api.CoreV1().Pods(r.w.c.ns).Delete(ctx, r.pod, metav1.DeleteOptions{GracePeriodSeconds: &zero}),
	)
	if err != nil {
		return err
	}
	if err := r.w.await(r.inst, false); err != nil {
		return err
	}
	r.w.mu.Lock()
	delete(r.w.regs, r.inst.Service+"/"+r.inst.Addr)
	r.w.mu.Unlock()
	return nil
}

func (w *podWriter) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.Registry.Close()
}

// TestRegisterReadOnly: the Registry itself refuses writes, and says why.
func TestRegisterReadOnly(t *testing.T) {
	r, err := New(&rest.Config{Host: "https://127.0.0.1:1"})
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Register(bg, registrytest.Inst("svc", "10.0.0.1:80", ""))
	assert.ErrorIs(t, err, ErrReadOnly)
	assert.Contains(t, err.Error(), "read-only")
}
