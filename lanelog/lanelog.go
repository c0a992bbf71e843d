// Package lanelog puts lanes in logs: a log/slog Handler that adds, to
// every record logged with a context that carries them, the request's tag
// and, where this server knows it, the lane decision that brought the
// request here.
//
//	logger := slog.New(lanelog.NewHandler(slog.NewJSONHandler(os.Stderr, nil)))
//	logger.InfoContext(r.Context(), "order placed", "order", id)
//	// {"time":…,"level":"INFO","msg":"order placed","order":42,"graylane.tag":"gray","graylane.lane":"prod","graylane.fallback":"noinstances"}
//
// The attributes, each only when known:
//
//   - AttrTag, "graylane.tag": the request's tag (tag.FromContext), as
//     graylane's middleware and interceptors put it in the context.
//   - AttrLane, "graylane.lane": the lane of the instance serving the
//     request, and AttrFallback, "graylane.fallback": why the caller fell
//     back to reach it (noinstances, unavailable). Both come from the
//     route receipt in the context (receipt.FromContext), which the
//     middleware keeps when route receipts are on (httpmw.WithRouteReceipt,
//     grpcmw.WithRouteReceipt, with Self.Always to keep one for every
//     request).
//   - AttrEdge, "graylane.edge": the edge's lane decision ("rule 0 (testers)
//     -> gray"), when the receipt carries it.
//
// WithAttrFunc adds attributes of one's own from the context, such as the
// gateway's ingress.Decision for every request.
//
// Records logged without a context (slog.Info rather than InfoContext), or
// with a context that carries none of these, pass through unchanged. Like
// every attribute of a record, these land in the groups the logger has
// opened (Logger.WithGroup). Adding them costs no allocation while the
// record holds at most five attributes in all, slog's inline capacity, and
// one allocation beyond; see BenchmarkHandler.
package lanelog

import (
	"context"
	"log/slog"

	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// Keys of the attributes the Handler adds.
const (
	AttrTag      = "graylane.tag"
	AttrLane     = "graylane.lane"
	AttrFallback = "graylane.fallback"
	AttrEdge     = "graylane.edge"
)

// Handler is a slog.Handler that adds lane attributes to the records it
// passes to the handler it wraps. It is safe for concurrent use, as the
// wrapped handler must be.
type Handler struct {
	next  slog.Handler
	extra []func(context.Context) (slog.Attr, bool)
}

var _ slog.Handler = (*Handler)(nil)

// Option configures a Handler.
type Option interface{ apply(*Handler) }

type optionFunc func(*Handler)

func (f optionFunc) apply(h *Handler) { f(h) }

// WithAttrFunc adds the attribute fn returns for a record's context, when
// it reports one. fn runs for every record handled with a non-nil context,
// after the graylane attributes; it must be safe for concurrent use.
func WithAttrFunc(fn func(ctx context.Context) (slog.Attr, bool)) Option {
	return optionFunc(func(h *Handler) {
		if fn != nil {
			h.extra = append(h.extra, fn)
		}
	})
}

// NewHandler returns a Handler that wraps next. A nil next is replaced by
// slog.Default().Handler() as it is at this call.
func NewHandler(next slog.Handler, opts ...Option) *Handler {
	if next == nil {
		next = slog.Default().Handler()
	}
	h := &Handler{next: next}
	for _, o := range opts {
		if o != nil {
			o.apply(h)
		}
	}
	return h
}

// Enabled reports whether the wrapped handler handles records of level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the lane attributes ctx carries to r and passes it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	// One AddAttrs for all of them: past slog's inline capacity, the
	// record grows once.
	var attrs [4]slog.Attr
	n := 0
	if t, ok := tag.FromContext(ctx); ok {
		attrs[n] = slog.String(AttrTag, t.String())
		n++
	}
	if rc := receipt.FromContext(ctx); rc != nil {
		hop := rc.Owner()
		if hop.Lane != "" {
			attrs[n] = slog.String(AttrLane, hop.Lane)
			n++
		}
		if hop.Fallback != "" {
			attrs[n] = slog.String(AttrFallback, hop.Fallback)
			n++
		}
		if hop.Note != "" {
			attrs[n] = slog.String(AttrEdge, hop.Note)
			n++
		}
	}
	if n > 0 {
		r.AddAttrs(attrs[:n]...)
	}
	for _, fn := range h.extra {
		if a, ok := fn(ctx); ok {
			r.AddAttrs(a)
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler that wraps next.WithAttrs(attrs).
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &Handler{next: h.next.WithAttrs(attrs), extra: h.extra}
}

// WithGroup returns a Handler that wraps next.WithGroup(name).
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{next: h.next.WithGroup(name), extra: h.extra}
}
