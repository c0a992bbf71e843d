package propagation

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RejectedMetric is the name of the counter of rejected inbound tag values.
const RejectedMetric = "graylane.tag.rejected"

// Attribute keys of the rejection counter.
const (
	AttrSource = attribute.Key("graylane.source")
	AttrReason = attribute.Key("graylane.reason")
)

// Why an inbound value was rejected.
type rejectReason uint8

const (
	rejectInvalid   rejectReason = iota // not a valid tag
	rejectAmbiguous                     // several different values
	rejectOversize                      // baggage over the W3C byte limit
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{"invalid", "ambiguous", "oversize"}

type stats struct {
	counter metric.Int64Counter
	opts    [3][numRejectReasons][]metric.AddOption // by source (header, baggage, own) and reason
	logger  *slog.Logger
}

const scopeName = "github.com/graylane/graylane/propagation"

func newStats(mp metric.MeterProvider, logger *slog.Logger) *stats {
	s := &stats{logger: logger}
	c, err := mp.Meter(scopeName).Int64Counter(RejectedMetric,
		metric.WithDescription("Inbound traffic tag values ignored because they were invalid, ambiguous or oversized."),
		metric.WithUnit("{value}"))
	if err == nil {
		s.counter = c
	}
	for src := range s.opts {
		for r := range s.opts[src] {
			set := attribute.NewSet(AttrSource.String(Source(src+1).String()), AttrReason.String(rejectNames[r]))
			s.opts[src][r] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	return s
}

// reject counts and logs one rejected value. value is truncated in the log.
func (s *stats) reject(ctx context.Context, src Source, r rejectReason, value string) {
	if s.counter != nil && src >= SourceHeader && src <= SourceOwn {
		s.counter.Add(ctx, 1, s.opts[src-1][r]...)
	}
	if s.logger.Enabled(ctx, slog.LevelDebug) {
		if len(value) > 80 {
			value = value[:80] + "…"
		}
		s.logger.DebugContext(ctx, "graylane: inbound tag ignored",
			slog.String("source", src.String()), slog.String("reason", rejectNames[r]), slog.String("value", value))
	}
}
