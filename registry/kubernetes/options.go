package kubernetes

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/graylane/graylane/tag"
)

// Defaults of the options.
const (
	// DefaultLaneLabel is the Pod label that holds the lane of a Pod, unless
	// WithLaneLabel says otherwise: the label that the Alibaba Cloud ASM
	// traffic-lane walkthrough puts on its Deployments' pods
	// (ASM_TRAFFIC_TAG: gray), so that pods already labelled for ASM lanes
	// work as they are. Teams starting afresh may prefer a key of their own,
	// such as "graylane.io/lane".
	DefaultLaneLabel = "ASM_TRAFFIC_TAG"
	// DefaultWeightAnnotation is the Pod annotation that holds an
	// instance's weight, unless WithWeightAnnotation says otherwise.
	DefaultWeightAnnotation = "graylane.io/weight"
	// DefaultNamespace is the namespace of services named without one,
	// unless WithNamespace says otherwise.
	DefaultNamespace = "default"
)

// Option configures a Registry.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// laneSelector is one lane defined by a label selector.
type laneSelector struct {
	lane tag.Tag
	sel  labels.Selector
}

type config struct {
	namespace  string
	port       string
	portSet    bool
	laneLabel  string
	weightAnn  string
	selectors  []laneSelector            // for every service without its own
	perService map[string][]laneSelector // by service name (namespace/name)
	metaLabels []string                  // Pod labels copied to Instance.Metadata
	logger     *slog.Logger
	mp         metric.MeterProvider
}

func newConfig(opts []Option) (config, error) {
	c := config{namespace: DefaultNamespace, laneLabel: DefaultLaneLabel, weightAnn: DefaultWeightAnnotation}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return config{}, fmt.Errorf("graylane kubernetes: %w", err)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c, nil
}

// WithNamespace sets the namespace of the services named without one
// (default DefaultNamespace). LoadConfig returns the namespace of the
// kubeconfig's current context, or the pod's own in a cluster.
func WithNamespace(ns string) Option {
	return optionFunc(func(c *config) error {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %v", ns, errs)
		}
		c.namespace = ns
		return nil
	})
}

// WithPortName selects, in every EndpointSlice, the port of that name: the
// name of the Service's port (e.g. "grpc"). By default a slice's port is
// its only one, and a slice with several ports is ignored. A slice without
// the named port is ignored (counted, reason ReasonPortNotFound).
func WithPortName(name string) Option {
	return optionFunc(func(c *config) error {
		if errs := validation.IsValidPortName(name); len(errs) > 0 {
			return fmt.Errorf("port name %q: %v", name, errs)
		}
		c.port, c.portSet = name, true
		return nil
	})
}

// WithLaneLabel sets the key of the Pod label that holds the lane (default
// DefaultLaneLabel). A Pod without the label is in the base lane; its
// value must be a valid tag, or the Pod is ignored (counted, reason
// ReasonInvalidLane). Services with lane selectors (WithLaneSelectors) do
// not read it.
func WithLaneLabel(key string) Option {
	return optionFunc(func(c *config) error {
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return fmt.Errorf("lane label %q: %v", key, errs)
		}
		c.laneLabel = key
		return nil
	})
}

// WithWeightAnnotation sets the key of the Pod annotation that holds an
// instance's weight, an integer from 1 to registry.MaxWeight (default
// DefaultWeightAnnotation). A Pod without it has weight 1; an invalid value
// is ignored (counted, reason ReasonInvalidWeight) and the Pod keeps
// weight 1.
func WithWeightAnnotation(key string) Option {
	return optionFunc(func(c *config) error {
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return fmt.Errorf("weight annotation %q: %v", key, errs)
		}
		c.weightAnn = key
		return nil
	})
}

// WithLaneSelectors defines lanes as label selectors, the way Istio
// DestinationRule subsets do: lanes maps a lane to a selector in the
// syntax of kubectl's -l (e.g. {"gray": "version=v2", "prod":
// "version=v1"}), and a Pod is in the lane whose selector it matches. It
// applies to every service that WithServiceLaneSelectors does not name, in
// place of the lane label. A Pod that matches no selector is in the base
// lane; a Pod that matches two is a configuration error: it is ignored
// (counted, reason ReasonLaneConflict) and logged at warn level, never put
// in either lane.
func WithLaneSelectors(lanes map[string]string) Option {
	return optionFunc(func(c *config) error {
		s, err := parseSelectors(lanes)
		c.selectors = s
		return err
	})
}

// WithServiceLaneSelectors is WithLaneSelectors for one service, named as
// in Watch ("reviews", or "reviews.bookinfo" in another namespace); it
// wins over WithLaneSelectors and the lane label for that service. It
// may be given for several services.
func WithServiceLaneSelectors(service string, lanes map[string]string) Option {
	return optionFunc(func(c *config) error {
		s, err := parseSelectors(lanes)
		if err != nil {
			return fmt.Errorf("service %q: %w", service, err)
		}
		if c.perService == nil {
			c.perService = map[string][]laneSelector{}
		}
		// Resolved against the namespace once every option is applied.
		c.perService[service] = s
		return nil
	})
}

func parseSelectors(lanes map[string]string) ([]laneSelector, error) {
	if len(lanes) == 0 {
		return nil, fmt.Errorf("no lane selectors")
	}
	var out []laneSelector
	for _, lane := range slices.Sorted(maps.Keys(lanes)) {
		t, err := tag.Parse(lane)
		if err != nil {
			return nil, fmt.Errorf("lane %q: %w", lane, err)
		}
		sel, err := labels.Parse(lanes[lane])
		if err != nil {
			return nil, fmt.Errorf("lane %q: selector %q: %w", lane, lanes[lane], err)
		}
		if sel.Empty() {
			return nil, fmt.Errorf("lane %q: the empty selector matches every pod", lane)
		}
		out = append(out, laneSelector{lane: t, sel: sel})
	}
	return out, nil
}

// WithMetadataLabels copies the Pod labels of these keys, where a Pod has
// them, into its instance's Metadata (e.g. "version", which route receipts
// and admin pages then show). By default Metadata is nil.
func WithMetadataLabels(keys ...string) Option {
	return optionFunc(func(c *config) error {
		for _, k := range keys {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return fmt.Errorf("metadata label %q: %v", k, errs)
			}
		}
		c.metaLabels = append(c.metaLabels, keys...)
		return nil
	})
}

// WithLogger sets the logger (nil or by default: slog.Default()). Ignored
// input is logged at debug level, lane conflicts and watch failures at warn
// level.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		c.logger = l
		return nil
	})
}

// WithMeterProvider sets the meter provider of the registry's metrics (nil
// or by default: the global one, as it is when New runs). See the package
// documentation for the instruments.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) error {
		c.mp = mp
		return nil
	})
}

// labelKeys returns the Pod label keys the registry reads: the lane label
// and every key a lane selector names. Pods are cached with these labels
// only.
func (c *config) labelKeys() map[string]struct{} {
	keys := map[string]struct{}{c.laneLabel: {}}
	for _, k := range c.metaLabels {
		keys[k] = struct{}{}
	}
	add := func(ss []laneSelector) {
		for _, s := range ss {
			reqs, _ := s.sel.Requirements()
			for _, r := range reqs {
				keys[r.Key()] = struct{}{}
			}
		}
	}
	add(c.selectors)
	for _, ss := range c.perService {
		add(ss)
	}
	return keys
}
