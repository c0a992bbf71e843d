package etcd

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graylane/graylane/registry"
)

// Services returns the names of the services that have at least one key
// under the Registry's prefix, sorted: every service some process has
// registered an instance of, across the fleet. It reads keys only, not
// their values, so a service whose keys are all invalid records is listed
// although its watchers see no instance. Names that are not valid service
// names, and keys that are not <prefix><service>/<address>, are skipped.
//
// Unlike Watch, Services asks etcd each time: it fails, within ctx, when
// etcd cannot be reached. After Close it returns registry.ErrClosed.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, registry.ErrClosed
	}
	resp, err := r.client.Get(ctx, r.cfg.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("graylane etcd: list services under %q: %w", r.cfg.prefix, err)
	}
	var names []string
	for _, kv := range resp.Kvs {
		name, addr, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), r.cfg.prefix), "/")
		if !ok || addr == "" || registry.ValidateService(name) != nil {
			continue
		}
		if n := len(names); n == 0 || names[n-1] != name { // keys come sorted
			names = append(names, name)
		}
	}
	return names, nil
}
