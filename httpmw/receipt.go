package httpmw

import (
	"net/http"
	"net/textproto"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// WithRouteReceipt turns route receipts on (see package receipt). In the
// middleware, a request that asks for one gets this server's hop, and those
// of the services it calls through graylane's clients, in the response
// header x-graylane-route; with self.Always, every request keeps a Receipt
// the handler can read. In the Transport nothing is needed: it asks the
// next service whenever the request's context holds a Receipt.
func WithRouteReceipt(self receipt.Self) Option {
	return optionFunc(func(c *config) { c.self = &self })
}

var receiptKey = textproto.CanonicalMIMEHeaderKey(receipt.Header)

// startReceipt puts a Receipt into the request's context when this server
// records receipts and the request asks for one (or Always), and returns
// the writer that answers with it.
func (h *handler) startReceipt(w http.ResponseWriter, r *http.Request, t tag.Tag) (http.ResponseWriter, *http.Request, *receiptWriter) {
	asked := r.Header[receiptKey]
	if h.self == nil || (len(asked) == 0 && !h.self.Always) {
		return w, r, nil
	}
	from := ""
	if len(asked) > 0 {
		from = receipt.Caller(asked[0])
	}
	hop := h.self.Hop(t.String(), fallbackReason(r.Header[fallbackKey]), from)
	hop.Note = receipt.NoteFromContext(r.Context())
	rc := receipt.New(hop, len(asked) > 0)
	r = r.WithContext(receipt.NewContext(r.Context(), rc))
	if !rc.Expose() {
		return w, r, nil
	}
	rw := &receiptWriter{ResponseWriter: w, rc: rc}
	return rw, r, rw
}

// fallbackReason returns the fallback reason a caller reported, if it is
// one; anything else is ignored.
func fallbackReason(v []string) string {
	if len(v) != 1 {
		return ""
	}
	if reason, ok := fallback.ParseHeader(v[0]); ok {
		return reason.String()
	}
	return ""
}

// receiptWriter sets the receipt header just before the response header
// is written, with the hops collected by then.
type receiptWriter struct {
	http.ResponseWriter
	rc    *receipt.Receipt
	wrote bool
}

func (w *receiptWriter) set() {
	if !w.wrote {
		w.wrote = true
		w.ResponseWriter.Header().Set(receiptKey, w.rc.String())
	}
}

func (w *receiptWriter) WriteHeader(code int) {
	if code >= 200 {
		w.set()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *receiptWriter) Write(b []byte) (int, error) {
	w.set()
	return w.ResponseWriter.Write(b)
}

// Flush supports streaming handlers.
func (w *receiptWriter) Flush() {
	w.set()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *receiptWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// askReceipt marks an outbound request (already a copy) as asking for the
// next service's hops.
func askReceipt(h http.Header, rc *receipt.Receipt) {
	h[receiptKey] = []string{rc.Owner().Service}
}

// collectReceipt adds the hops a response reports.
func collectReceipt(resp *http.Response, rc *receipt.Receipt) {
	if resp == nil {
		return
	}
	if v := resp.Header.Get(receiptKey); v != "" {
		hops, _ := receipt.Parse(v) // keeps what parsed
		rc.Add(hops...)
	}
}
