package kubernetes

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Indexes of the EndpointSlice cache.
const (
	byService = "service" // the slice's kubernetes.io/service-name label
	byPod     = "pod"     // the names of the Pods its endpoints point at
)

var podsResource = corev1.SchemeGroupVersion.WithResource("pods")

// nsCache is what a Registry knows of one namespace: the metadata of its
// Pods (the labels and the annotation the Registry reads, nothing else)
// and its Services' EndpointSlices (addresses, ports, conditions and
// targets, nothing else).
type nsCache struct {
	ns        string
	pods      cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	podsReg   cache.ResourceEventHandlerRegistration
	slicesReg cache.ResourceEventHandlerRegistration
	synced    bool // both caches hold a full list; guarded by Registry.mu
}

func (r *Registry) newNSCache(ns string) *nsCache {
	c := &nsCache{ns: ns}
	meta := r.meta.Resource(podsResource).Namespace(ns)
	c.pods = cache.NewSharedIndexInformerWithOptions(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return meta.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return meta.Watch(ctx, o)
		},
	}, &metav1.PartialObjectMetadata{}, cache.SharedIndexInformerOptions{})
	c.pods.SetTransform(r.transformPod(ns))

	slices := r.client.DiscoveryV1().EndpointSlices(ns)
	selector := func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName } // slices of Services only
	c.slices = cache.NewSharedIndexInformerWithOptions(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			selector(&o)
			return slices.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			selector(&o)
			return slices.Watch(ctx, o)
		},
	}, &discoveryv1.EndpointSlice{}, cache.SharedIndexInformerOptions{
		Indexers: cache.Indexers{byService: indexByService, byPod: indexByPod},
	})
	c.slices.SetTransform(transformSlice(ns))

	for _, inf := range []struct {
		informer cache.SharedIndexInformer
		resource string
	}{{c.pods, "pods"}, {c.slices, "endpointslices"}} {
		inf.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *cache.Reflector, err error) {
			r.watchError(ctx, ns, inf.resource, err)
		})
	}

	c.slicesReg, _ = c.slices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if k, ok := serviceOfSlice(ns, obj); ok {
				r.markDirty(k)
			}
		},
		UpdateFunc: func(old, obj any) {
			k1, ok1 := serviceOfSlice(ns, old)
			k2, ok2 := serviceOfSlice(ns, obj)
			switch {
			case ok1 && ok2 && k1 != k2:
				r.markDirty(k1, k2)
			case ok2:
				r.markDirty(k2)
			case ok1:
				r.markDirty(k1)
			}
		},
		DeleteFunc: func(obj any) {
			if k, ok := serviceOfSlice(ns, obj); ok {
				r.markDirty(k)
			}
		},
	})
	podChanged := func(obj any) {
		name, ok := podName(obj)
		if !ok {
			return
		}
		objs, _ := c.slices.GetIndexer().ByIndex(byPod, name)
		keys := make([]svcKey, 0, len(objs))
		for _, o := range objs {
			if k, ok := serviceOfSlice(ns, o); ok {
				keys = append(keys, k)
			}
		}
		r.markDirty(keys...)
	}
	c.podsReg, _ = c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: podChanged,
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*metav1.PartialObjectMetadata)
			n, ok2 := obj.(*metav1.PartialObjectMetadata)
			if ok1 && ok2 && maps.Equal(o.Labels, n.Labels) && maps.Equal(o.Annotations, n.Annotations) {
				return // a change of something the Registry does not read (status, other labels)
			}
			podChanged(obj)
		},
		DeleteFunc: podChanged,
	})
	return c
}

// transformPod keeps of a Pod's metadata only what the Registry reads: its
// name, the labels of the lane label and lane selectors, and the weight
// annotation. The namespace string is shared by every Pod of the cache.
func (r *Registry) transformPod(ns string) cache.TransformFunc {
	return func(obj any) (any, error) {
		p, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return obj, nil // a tombstone: made of an object transformed already
		}
		out := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: ns, ResourceVersion: p.ResourceVersion,
		}}
		for k, v := range p.Labels {
			if _, keep := r.labelKeys[k]; keep {
				if out.Labels == nil {
					out.Labels = make(map[string]string, 1)
				}
				out.Labels[k] = v
			}
		}
		if v, ok := p.Annotations[r.cfg.weightAnn]; ok {
			out.Annotations = map[string]string{r.cfg.weightAnn: v}
		}
		return out, nil
	}
}

// Shared condition values: the cached slices point at these instead of a
// small allocation per condition.
var (
	vTrue, vFalse = true, false
)

func shared(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return &vTrue
	default:
		return &vFalse
	}
}

// transformSlice keeps of an EndpointSlice only what the Registry reads:
// its service label, address type, ports, and each endpoint's addresses,
// conditions and target.
func transformSlice(ns string) cache.TransformFunc {
	return func(obj any) (any, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return obj, nil
		}
		out := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: s.Name, Namespace: ns, ResourceVersion: s.ResourceVersion,
				Labels: map[string]string{discoveryv1.LabelServiceName: s.Labels[discoveryv1.LabelServiceName]},
			},
			AddressType: s.AddressType,
			Ports:       make([]discoveryv1.EndpointPort, len(s.Ports)),
			Endpoints:   make([]discoveryv1.Endpoint, len(s.Endpoints)),
		}
		for i, p := range s.Ports {
			out.Ports[i] = discoveryv1.EndpointPort{Name: p.Name, Port: p.Port}
		}
		for i, e := range s.Endpoints {
			ep := discoveryv1.Endpoint{
				Addresses: e.Addresses,
				Conditions: discoveryv1.EndpointConditions{
					Ready: shared(e.Conditions.Ready), Serving: shared(e.Conditions.Serving), Terminating: shared(e.Conditions.Terminating),
				},
			}
			if t := e.TargetRef; t != nil {
				ep.TargetRef = &corev1.ObjectReference{Kind: t.Kind, Namespace: t.Namespace, Name: t.Name}
			}
			out.Endpoints[i] = ep
		}
		return out, nil
	}
}

func indexByService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		return []string{name}, nil
	}
	return nil, nil
}

func indexByPod(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	names := make([]string, 0, len(s.Endpoints))
	for _, e := range s.Endpoints {
		if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
			names = append(names, e.TargetRef.Name)
		}
	}
	return names, nil
}
