package etcd

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// record is the JSON value stored under an instance's key. Unknown fields
// are ignored when reading, so that newer writers can add some.
type record struct {
	Addr     string            `json:"addr"`
	Name     string            `json:"name,omitempty"`
	Tag      string            `json:"tag,omitempty"`
	Weight   uint32            `json:"weight,omitempty"`
	Health   string            `json:"health"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// key returns the key of the instance at addr of service.
func (c *config) key(service, addr string) string {
	return c.prefix + service + "/" + addr
}

// servicePrefix returns the prefix of the keys of service's instances.
func (c *config) servicePrefix(service string) string {
	return c.prefix + service + "/"
}

// encode returns the value stored for inst, which has passed Validate.
func encode(inst registry.Instance) ([]byte, error) {
	return json.Marshal(record{
		Addr:     inst.Addr,
		Name:     inst.Name,
		Tag:      inst.Tag.String(),
		Weight:   inst.Weight,
		Health:   inst.Health.String(),
		Metadata: inst.Metadata,
	})
}

// decode reads the value stored under key, a key of service (it starts
// with servicePrefix). A missing health means serving. It fails on a value that is not a record, that does
// not name the address the key names, or that does not pass
// Instance.Validate: such keys are not instances.
func decode(service, servicePrefix, key string, value []byte) (registry.Instance, error) {
	var rec record
	if err := json.Unmarshal(value, &rec); err != nil {
		return registry.Instance{}, fmt.Errorf("key %q: value is not an instance record: %w", key, err)
	}
	addr := strings.TrimPrefix(key, servicePrefix)
	if rec.Addr != addr {
		return registry.Instance{}, fmt.Errorf("key %q: value names address %q, not the key's %q", key, rec.Addr, addr)
	}
	inst := registry.Instance{
		Service:  service,
		Addr:     rec.Addr,
		Name:     rec.Name,
		Weight:   rec.Weight,
		Metadata: rec.Metadata,
	}
	if rec.Tag != "" {
		t, err := tag.Parse(rec.Tag)
		if err != nil {
			return registry.Instance{}, fmt.Errorf("key %q: %w", key, err)
		}
		inst.Tag = t
	}
	switch rec.Health {
	case registry.Serving.String(), "":
		inst.Health = registry.Serving
	case registry.NotServing.String():
		inst.Health = registry.NotServing
	default:
		return registry.Instance{}, fmt.Errorf("key %q: unknown health %q", key, rec.Health)
	}
	if err := inst.Validate(); err != nil {
		return registry.Instance{}, fmt.Errorf("key %q: %w", key, err)
	}
	return inst, nil
}
