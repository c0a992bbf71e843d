package kubernetes

import (
	"context"
	"fmt"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/graylane/graylane/registry"
)

// Services lists the services of the Registry's namespace that have
// EndpointSlices (the names of their kubernetes.io/service-name labels),
// sorted: the services Watch can follow there. It asks the API server
// each time (a metadata-only list; the account needs list on
// endpointslices, as for Watch), and lists the Services that have slices
// even when no endpoint is ready. Services in other namespaces are not
// listed; Watch them as "name.namespace".
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, registry.ErrClosed
	}
	list, err := r.meta.Resource(discoveryv1.SchemeGroupVersion.WithResource("endpointslices")).
		Namespace(r.cfg.namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName})
	if err != nil {
		return nil, fmt.Errorf("graylane kubernetes: list the EndpointSlices of namespace %s: %w", r.cfg.namespace, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, s := range list.Items {
		name := s.Labels[discoveryv1.LabelServiceName]
		if _, _, err := r.parse(name); err != nil || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
