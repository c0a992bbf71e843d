package httpmw

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// WithRouteReceipt turns route receipts on (see package receipt). In the
// middleware, a request that asks for one gets this server's hop, and those
// of the services it calls through graylane's clients, in the response
// header x-graylane-route (self.Header names another); with self.Always,
// every request keeps a Receipt the handler can read. The Transport needs
// nothing: when the request's context holds a Receipt, it asks the next
// service, on the Receipt's header, on the calls it routes (WithRouting)
// and on those to the hosts of WithReceiptHosts, and on no others.
//
// Middleware, NewHandler and NewTransport panic if self.Header is not a
// valid header name (receipt.CheckHeader).
func WithRouteReceipt(self receipt.Self) Option {
	return optionFunc(func(c *config) { c.self = &self })
}

// WithReceiptHosts names the hosts, as written in request URLs ("billing"
// or "billing:8080"), that the Transport asks for route receipts on calls
// it does not route. By default it asks only on the calls it routes, to
// instances the registry names: a receipt answered by any other host would
// be believed, and the request would tell the host that receipts are on.
func WithReceiptHosts(hosts ...string) Option {
	return optionFunc(func(c *config) {
		if c.receiptHosts == nil {
			c.receiptHosts = map[string]bool{}
		}
		for _, h := range hosts {
			c.receiptHosts[strings.ToLower(h)] = true
		}
	})
}

var receiptKey = textproto.CanonicalMIMEHeaderKey(receipt.Header)

// receiptHeader returns the canonical form of the header of rc.
func receiptHeader(rc *receipt.Receipt) string {
	if h := rc.Header(); h != receipt.Header {
		return textproto.CanonicalMIMEHeaderKey(h)
	}
	return receiptKey
}

// startReceipt puts a Receipt into the request's context when this server
// records receipts and the request asks for one (or Always), and returns
// the writer that answers with it.
func (h *handler) startReceipt(w http.ResponseWriter, r *http.Request, t tag.Tag) (http.ResponseWriter, *http.Request, *receiptWriter) {
	asked := r.Header[h.receiptKey]
	if h.self == nil || (len(asked) == 0 && !h.self.Always) {
		return w, r, nil
	}
	from := ""
	if len(asked) > 0 {
		from = receipt.Caller(asked[0])
	}
	hop := h.self.Hop(t.String(), fallbackReason(r.Header[fallbackKey]), from)
	hop.Note = receipt.NoteFromContext(r.Context())
	rc := h.self.Receipt(hop, len(asked) > 0)
	r = r.WithContext(receipt.NewContext(r.Context(), rc))
	if !rc.Expose() {
		return w, r, nil
	}
	rw := &receiptWriter{ResponseWriter: w, rc: rc, key: h.receiptKey}
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
	key   string // canonical receipt header
	wrote bool
}

func (w *receiptWriter) set() {
	if !w.wrote {
		w.wrote = true
		w.ResponseWriter.Header().Set(w.key, w.rc.String())
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
	h[receiptHeader(rc)] = []string{rc.Owner().Service}
}

// collectReceipt adds the hops a response reports.
func collectReceipt(resp *http.Response, rc *receipt.Receipt) {
	if resp == nil {
		return
	}
	if v := resp.Header.Get(receiptHeader(rc)); v != "" {
		hops, _ := receipt.Parse(v) // keeps what parsed
		rc.Add(hops...)
	}
}
