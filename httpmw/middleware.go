package httpmw

import (
	"net/http"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// Middleware returns middleware that puts the tag of each inbound request
// into its context. Use it with any router: mux.Handle("/", Middleware()(h)),
// chi's r.Use(httpmw.Middleware()).
func Middleware(opts ...Option) func(http.Handler) http.Handler {
	c := newConfig(opts)
	return func(next http.Handler) http.Handler {
		return &handler{next: next, prop: c.prop, self: c.self, receiptKey: c.receiptKey}
	}
}

// NewHandler wraps h so that the tag of each inbound request is in its
// context. It is Middleware(opts...)(h).
func NewHandler(h http.Handler, opts ...Option) http.Handler {
	return Middleware(opts...)(h)
}

type handler struct {
	next       http.Handler
	prop       *propagation.Propagator
	self       *receipt.Self
	receiptKey string // canonical
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, _ := h.prop.ReadHeader(ctx, r.Header)
	if !t.IsZero() {
		r = r.WithContext(tag.NewContext(ctx, t))
	}
	if h.self == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	w, r, rw := h.startReceipt(w, r, t)
	h.next.ServeHTTP(w, r)
	if rw != nil {
		rw.set() // a handler that wrote nothing: net/http sends the header after this
	}
}
