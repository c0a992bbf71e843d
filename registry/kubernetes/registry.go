package kubernetes

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/graylane/graylane/registry"
)

// ErrReadOnly is returned by Register: the Registry reads what Kubernetes
// knows and never writes. It wraps registry.ErrReadOnly.
var ErrReadOnly = fmt.Errorf("graylane kubernetes: %w: its instances are the endpoints "+
	"of Kubernetes Services (EndpointSlices) and the labels of their Pods; run the instance as a Pod behind a "+
	"Service instead of registering it", registry.ErrReadOnly)

// Registry is a registry.Registry that reads services from a Kubernetes API
// server. See the package documentation. It is safe for concurrent use.
type Registry struct {
	cfg       config
	labelKeys map[string]struct{}
	httpc     *http.Client
	client    kubernetes.Interface
	meta      metadata.Interface
	tel       *telemetry

	mu         sync.Mutex
	closed     bool
	namespaces map[string]*nsCache
	services   map[svcKey]*service
	dirty      map[svcKey]struct{}
	kick       chan struct{} // capacity 1: dirty has entries
	stop       chan struct{} // closed by Close
	wg         sync.WaitGroup
}

// svcKey names a Kubernetes Service.
type svcKey struct{ ns, name string }

func (k svcKey) String() string { return k.ns + "/" + k.name }

// service is one followed service and its Watchers.
type service struct {
	key     svcKey
	display string         // Instance.Service: the name, with ".namespace" outside the default one
	lanes   []laneSelector // nil: the lane label
	nsc     *nsCache
	latest  registry.Latest

	mu      sync.Mutex        // serialises refresh, so that sets are published in the order they were read
	ignored map[string]string // what the last refresh ignored: key -> reason
}

// New returns a Registry that reads the API server that cfg points to (see
// LoadConfig). It starts following a namespace at the first Watch of one
// of its services and follows it until Close. It makes no request before
// that; a wrong configuration shows as watchers that get no set (and
// warn-level logs of the failing lists).
func New(cfg *rest.Config, opts ...Option) (*Registry, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:        c,
		labelKeys:  c.labelKeys(),
		namespaces: map[string]*nsCache{},
		services:   map[svcKey]*service{},
		dirty:      map[svcKey]struct{}{},
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
	// Per-service selectors were given with names that may lack their
	// namespace: resolve them now that the namespace is known.
	if len(c.perService) > 0 {
		per := map[string][]laneSelector{}
		for name, s := range c.perService {
			key, _, err := r.parse(name)
			if err != nil {
				return nil, fmt.Errorf("graylane kubernetes: lane selectors: %w", err)
			}
			per[key.String()] = s
		}
		r.cfg.perService = per
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "graylane-registry"
	}
	if r.httpc, err = rest.HTTPClientFor(cfg); err != nil {
		return nil, fmt.Errorf("graylane kubernetes: %w", err)
	}
	// EndpointSlices in protobuf, the compact encoding; Pods as metadata
	// only (their specs and statuses never cross the wire).
	typed := rest.CopyConfig(cfg)
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if r.client, err = kubernetes.NewForConfigAndClient(typed, r.httpc); err != nil {
		return nil, fmt.Errorf("graylane kubernetes: %w", err)
	}
	if r.meta, err = metadata.NewForConfigAndClient(cfg, r.httpc); err != nil {
		return nil, fmt.Errorf("graylane kubernetes: %w", err)
	}
	if r.tel, err = newTelemetry(c.mp); err != nil {
		return nil, fmt.Errorf("graylane kubernetes: %w", err)
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// LoadConfig loads the client configuration the way kubectl does: from
// the kubeconfig file at path if it is not empty, else from $KUBECONFIG or
// ~/.kube/config, else from the Pod's service account when running in a
// cluster. It returns the configuration and the namespace of the current
// context (the Pod's own namespace in a cluster; "default" when none is
// set), for WithNamespace.
func LoadConfig(path string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("graylane kubernetes: client configuration: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("graylane kubernetes: namespace: %w", err)
	}
	return cfg, ns, nil
}

// Register returns ErrReadOnly: instances come from Kubernetes.
func (r *Registry) Register(context.Context, registry.Instance) (registry.Registration, error) {
	return nil, ErrReadOnly
}

// parse reads a service name: "name" in the default namespace, or
// "name.namespace". The name must be a Service name (an RFC 1035 label)
// and the namespace a namespace name (an RFC 1123 label).
func (r *Registry) parse(service string) (svcKey, string, error) {
	if err := registry.ValidateService(service); err != nil {
		return svcKey{}, "", err
	}
	name, ns, _ := strings.Cut(service, ".")
	if ns == "" {
		ns = r.cfg.namespace
	}
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return svcKey{}, "", fmt.Errorf("%w: %q is not a Kubernetes service name: %s", registry.ErrInvalidInstance, name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return svcKey{}, "", fmt.Errorf("%w: %q is not a Kubernetes namespace: %s (services are named \"name\" or \"name.namespace\")",
			registry.ErrInvalidInstance, ns, strings.Join(errs, "; "))
	}
	display := name
	if ns != r.cfg.namespace {
		display = name + "." + ns
	}
	return svcKey{ns: ns, name: name}, display, nil
}

// Watch follows the Kubernetes Service named service: "name" in the
// Registry's namespace, or "name.namespace". Its first Next waits until
// the Registry has read the namespace (after that, it returns at once).
func (r *Registry) Watch(_ context.Context, name string) (registry.Watcher, error) {
	key, display, err := r.parse(name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, registry.ErrClosed
	}
	nsc := r.namespaceLocked(key.ns)
	s := r.services[key]
	fresh := s == nil
	if fresh {
		s = &service{key: key, display: display, nsc: nsc, lanes: r.cfg.selectors}
		if per, ok := r.cfg.perService[key.String()]; ok {
			s.lanes = per
		}
		r.services[key] = s
	}
	w := s.latest.Watch(func(left int) { r.release(s, left) })
	synced := nsc.synced
	r.mu.Unlock()
	if fresh && synced {
		// The first Next returns the set the caches hold now.
		r.refresh(s)
	}
	return w, nil
}

// release forgets a service when its last Watcher is closed.
func (r *Registry) release(s *service, left int) {
	if left > 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.services[s.key] == s && s.latest.Watchers() == 0 {
		delete(r.services, s.key)
	}
}

// Close stops every watch and waits for the Registry's goroutines to end.
// Watchers' Next then returns registry.ErrClosed. It is idempotent.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	services := r.services
	r.services = map[svcKey]*service{}
	close(r.stop)
	r.mu.Unlock()
	for _, s := range services {
		s.latest.Close()
	}
	r.wg.Wait()
	r.httpc.CloseIdleConnections()
	return nil
}

// markDirty queues services for a refresh.
func (r *Registry) markDirty(keys ...svcKey) {
	if len(keys) == 0 {
		return
	}
	r.mu.Lock()
	for _, k := range keys {
		r.dirty[k] = struct{}{}
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run refreshes the dirty services, in batches: events that arrive while
// it refreshes are handled in one more pass.
func (r *Registry) run() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		}
		r.mu.Lock()
		var work []*service
		for k := range r.dirty {
			if s := r.services[k]; s != nil && s.nsc.synced {
				work = append(work, s)
			}
		}
		clear(r.dirty)
		r.mu.Unlock()
		for _, s := range work {
			r.refresh(s)
		}
	}
}

// refresh computes a service's set from the caches and publishes it.
func (r *Registry) refresh(s *service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	insts, ignored := r.instances(s)
	for k, reason := range ignored {
		if s.ignored[k] != reason {
			r.reportIgnored(s, k, reason)
		}
	}
	s.ignored = ignored
	s.latest.Publish(insts)
}

// namespaceLocked returns the caches of namespace ns, starting them on
// first use.
func (r *Registry) namespaceLocked(ns string) *nsCache {
	if c := r.namespaces[ns]; c != nil {
		return c
	}
	c := r.newNSCache(ns)
	r.namespaces[ns] = c
	r.wg.Add(3)
	go func() { defer r.wg.Done(); c.pods.Run(r.stop) }()
	go func() { defer r.wg.Done(); c.slices.Run(r.stop) }()
	go func() {
		defer r.wg.Done()
		if !cache.WaitForCacheSync(r.stop, c.podsReg.HasSynced, c.slicesReg.HasSynced) {
			return
		}
		r.mu.Lock()
		c.synced = true
		var keys []svcKey
		for k := range r.services {
			if k.ns == ns {
				keys = append(keys, k)
			}
		}
		r.mu.Unlock()
		r.cfg.logger.Debug("graylane kubernetes: namespace read", "namespace", ns)
		r.markDirty(keys...)
	}()
	return c
}

// serviceOfSlice returns the service an EndpointSlice belongs to.
func serviceOfSlice(ns string, obj any) (svcKey, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return svcKey{}, false
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	return svcKey{ns: ns, name: name}, name != ""
}

// podName returns the name of a cached Pod.
func podName(obj any) (string, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return "", false
	}
	return p.Name, true
}
