package kubernetes

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Metric names.
const (
	// IgnoredMetric counts the pieces of input the Registry left out of a
	// service, or read in part (an invalid weight), with the attributes
	// AttrRegistry, AttrService and AttrReason (one of the Reason
	// constants). Each piece is counted once when it starts being ignored
	// for a reason, not at every change of the service.
	IgnoredMetric = "graylane.registry.ignored"
	// WatchErrorsMetric counts the lists and watches of Kubernetes that
	// failed (client-go retries them with backoff), with the attributes
	// AttrRegistry, AttrResource ("pods" or "endpointslices") and
	// AttrReason: "forbidden" for an RBAC or authentication refusal,
	// "expired" for a 410 Gone on a list, "error" for the rest (an API
	// server out of reach). A watch that expires (410 Gone) is not an
	// error: the informer lists again, and the instances stay meanwhile.
	WatchErrorsMetric = "graylane.registry.watch.errors"
)

// Attribute keys of the registry's metrics.
const (
	AttrRegistry = attribute.Key("graylane.registry")          // always "kubernetes"
	AttrService  = attribute.Key("graylane.service")           // the service, as its instances name it
	AttrReason   = attribute.Key("graylane.registry.reason")   // why
	AttrResource = attribute.Key("graylane.registry.resource") // "pods" or "endpointslices"
)

type telemetry struct {
	ignored     metric.Int64Counter
	watchErrors metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	meter := mp.Meter("github.com/graylane/graylane/registry/kubernetes")
	var t telemetry
	var err error
	if t.ignored, err = meter.Int64Counter(IgnoredMetric,
		metric.WithDescription("Kubernetes input the registry ignored, by reason"), metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if t.watchErrors, err = meter.Int64Counter(WatchErrorsMetric,
		metric.WithDescription("Failed lists and watches of the Kubernetes API"), metric.WithUnit("{error}")); err != nil {
		return nil, err
	}
	return &t, nil
}

// reportIgnored counts and logs one piece of input that s now ignores.
func (r *Registry) reportIgnored(s *service, what, reason string) {
	r.tel.ignored.Add(context.Background(), 1, metric.WithAttributes(
		AttrRegistry.String("kubernetes"), AttrService.String(s.display), AttrReason.String(reason)))
	level := slog.LevelDebug
	if reason == ReasonLaneConflict {
		level = slog.LevelWarn // a configuration error, not a passing state
	}
	r.cfg.logger.Log(context.Background(), level, "graylane kubernetes: ignored",
		"service", s.display, "namespace", s.key.ns, "what", what, "reason", reason)
}

// watchError counts and logs a failed list or watch. client-go retries it
// with backoff, relisting when the watch has expired.
func (r *Registry) watchError(ctx context.Context, ns, resource string, err error) {
	reason, level := "error", slog.LevelWarn
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		reason, level = "expired", slog.LevelDebug // routine: the Registry lists again
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		reason = "forbidden"
	}
	r.tel.watchErrors.Add(ctx, 1, metric.WithAttributes(
		AttrRegistry.String("kubernetes"), AttrResource.String(resource), AttrReason.String(reason)))
	r.cfg.logger.Log(ctx, level, "graylane kubernetes: watch failed; retrying",
		"namespace", ns, "resource", resource, "reason", reason, "error", err)
}
