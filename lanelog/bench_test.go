package lanelog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/graylane/graylane/lanelog"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// BenchmarkHandler compares a JSON handler alone (the baseline) with the
// same handler wrapped, for a record with two attributes of its own (and
// six: beyond slog's inline capacity),
// logged with a context that carries a tag and a route receipt, and with
// one that carries nothing.
func BenchmarkHandler(b *testing.B) {
	tagged := receipt.NewContext(tag.NewContext(context.Background(), tag.MustParse("gray")),
		receipt.New(receipt.Hop{Service: "ratings", Instance: "ratings-v1-0", Lane: "prod", Tag: "gray", Fallback: "noinstances"}, false))
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{
		{"ctx=lane", tagged},
		{"ctx=none", context.Background()},
	} {
		for _, impl := range []struct {
			name string
			h    slog.Handler
		}{
			{"bare", slog.NewJSONHandler(io.Discard, nil)},
			{"lanelog", lanelog.NewHandler(slog.NewJSONHandler(io.Discard, nil))},
		} {
			logger := slog.New(impl.h)
			b.Run(bc.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					logger.LogAttrs(bc.ctx, slog.LevelInfo, "served", slog.String("path", "/reviews/0"), slog.Int("status", 200))
				}
			})
			b.Run(bc.name+"/attrs=6/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					logger.LogAttrs(bc.ctx, slog.LevelInfo, "served", slog.String("path", "/reviews/0"), slog.Int("status", 200),
						slog.Int("a", 1), slog.Int("b", 2), slog.Int("c", 3), slog.Int("d", 4))
				}
			})
		}
	}
}
