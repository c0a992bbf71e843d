package ingress

import (
	"context"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// Source gives the rule set in force. A *Rules is a Source that never
// changes; a *Watcher follows a file. Rules is called once per request, and
// the request is decided entirely by the rule set it returns.
type Source interface {
	Rules() *Rules
}

// Middleware returns the gateway middleware: for each request it applies
// the trust boundary, then the rules of src, and passes the request on
// tagged. In detail:
//
//  1. The client is trusted if its address is in Trust.Peers (through
//     Trust.Proxies, see Trust) or the function of WithTrustFunc says so.
//  2. A trusted client's tag (read by the Propagator: tag header, baggage
//     member, dialects) is kept if its lane is allowed (Trust.Lanes). The
//     rules are then not evaluated.
//  3. Every place the Propagator reads a tag from is stripped from the
//     request (Propagator.Strip, and StripContext for OpenTelemetry baggage
//     already in the context); from an untrusted client, the route receipt
//     headers too (the default one and that of WithReceiptHeader).
//  4. Unless a tag was kept, the rules are evaluated on the stripped
//     request: the first that matches assigns its lane, otherwise the
//     default applies.
//  5. The tag is written into the request's headers (Propagator.InjectHeader:
//     the tag header, and the baggage member and dialects it writes), so
//     that a plain reverse proxy forwards it, and into its context
//     (tag.NewContext, which also masks a tag an outer middleware may have
//     put there). The Decision goes into the context too
//     (DecisionFromContext), is counted on graylane.ingress.decisions, set
//     as attributes on the active span when it is recording, and logged at
//     debug level.
//  6. Tokens of the Connection header that name a header the gateway
//     decides (the tag header, baggage, the dialects, the receipt and
//     fallback headers) are removed, so that a plain httputil.ReverseProxy
//     behind forwards the tag instead of dropping it as hop-by-hop.
//
// Middleware modifies the headers of the inbound request it is given, which
// the server owns; a request with a nil Header (built by hand) is given an
// empty one. It panics if src is nil (or a nil *Rules).
func Middleware(src Source, opts ...Option) func(http.Handler) http.Handler {
	if src == nil {
		panic("ingress: Middleware needs a Source (a *Rules or a *Watcher), got nil")
	}
	if rs, ok := src.(*Rules); ok && rs == nil {
		panic("ingress: Middleware needs a Source (a *Rules or a *Watcher), got a nil *Rules")
	}
	c := newConfig(opts)
	g := &gateway{src: src, prop: c.prop, trustFunc: c.trustFunc, logger: c.logger}
	g.receipts = []string{defaultReceiptKey}
	if c.receipt != "" {
		if k := textproto.CanonicalMIMEHeaderKey(c.receipt); k != defaultReceiptKey {
			g.receipts = append(g.receipts, k)
		}
	}
	g.guarded = guardedHeaders(c.prop, g.receipts)
	if ctr, err := c.meter.Meter(scopeName).Int64Counter(DecisionsMetric,
		metric.WithDescription("Lane decisions of the gateway, one per request."),
		metric.WithUnit("{request}")); err == nil {
		g.counter = ctr
	}
	return func(next http.Handler) http.Handler {
		return &handler{g: g, next: next}
	}
}

type gateway struct {
	src       Source
	prop      *propagation.Propagator
	trustFunc func(*http.Request) bool
	receipts  []string // canonical receipt headers: the default, and the configured one
	guarded   []string // lower-case names a Connection header may not name
	counter   metric.Int64Counter
	logger    *slog.Logger
}

type handler struct {
	g    *gateway
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(w, r.WithContext(h.g.decide(r)))
}

// decide applies the trust boundary and the rules to r, rewrites its
// headers, and returns the context to serve it with.
func (g *gateway) decide(r *http.Request) context.Context {
	if r.Header == nil {
		// A request built by hand: the tag must be written somewhere for
		// a proxy behind to forward it.
		r.Header = http.Header{}
	}
	rs := g.src.Rules()
	ctx := r.Context()
	d := Decision{Rule: -1}
	d.Trusted, d.Proxied = rs.trust.judge(r)
	if !d.Trusted && g.trustFunc != nil {
		d.Trusted = g.trustFunc(r)
	}

	var kept tag.Tag
	if d.Trusted {
		t, src := g.prop.ReadHeader(ctx, r.Header)
		if !t.IsZero() && src != propagation.SourceOwn {
			if rs.trust.allows(t) {
				kept = t
			} else {
				d.Stripped = StrippedNotAllowed
			}
		}
	}
	removed := g.prop.Strip(r.Header)
	if sctx := g.prop.StripContext(ctx); sctx != ctx {
		ctx, removed = sctx, true
	}
	if removed && kept.IsZero() && d.Stripped == StrippedNone {
		d.Stripped = StrippedUntrusted
		if d.Trusted {
			d.Stripped = StrippedInvalid
		}
	}
	if !d.Trusted {
		for _, k := range g.receipts {
			deleteFolded(r.Header, k)
		}
	}
	// Only graylane's routing clients say a hop was reached by fallback;
	// from outside, it would only make a route receipt lie.
	deleteFolded(r.Header, fallbackHeader)

	if kept.IsZero() {
		rs.evaluate(r, &d)
	} else {
		d.Outcome, d.Tag = OutcomeKept, kept
	}
	if !d.Tag.IsZero() {
		g.prop.InjectHeader(r.Header, d.Tag)
	}
	if len(r.Header["Connection"]) > 0 {
		guardConnection(r.Header, g.guarded)
	}
	g.record(ctx, rs, &d, r.RemoteAddr)
	if d.Trusted && g.asksReceipt(r.Header) {
		// A caller that may ask for the route receipt sees the decision in
		// the edge's hop.
		ctx = receipt.WithNote(ctx, d.String())
	}
	return &decisionContext{Context: tag.NewContext(ctx, d.Tag), d: d}
}

// asksReceipt reports whether h asks for a route receipt.
func (g *gateway) asksReceipt(h http.Header) bool {
	for _, k := range g.receipts {
		if len(h[k]) > 0 {
			return true
		}
	}
	return false
}

// record counts, traces and logs a decision.
func (g *gateway) record(ctx context.Context, rs *Rules, d *Decision, remote string) {
	if g.counter != nil {
		g.counter.Add(ctx, 1, rs.metricOptions(d)...)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(
			AttrOutcome.String(d.Outcome.String()),
			AttrRule.String(d.RuleName),
			attribute.String("graylane.tag", d.Tag.String()),
			AttrStripped.String(d.Stripped.String()),
			AttrTrusted.Bool(d.Trusted),
		)
	}
	if g.logger.Enabled(ctx, slog.LevelDebug) {
		g.logger.LogAttrs(ctx, slog.LevelDebug, "graylane: ingress decision",
			slog.String("outcome", d.Outcome.String()),
			slog.String("rule", d.RuleName),
			slog.String("tag", d.Tag.String()),
			slog.String("stripped", d.Stripped.String()),
			slog.Bool("trusted", d.Trusted),
			slog.String("remote", remote),
		)
	}
}

// fallbackHeader is the header with which graylane's routing transport
// tells a server that it was reached by fallback.
var fallbackHeader = textproto.CanonicalMIMEHeaderKey(fallback.Header)

var defaultReceiptKey = textproto.CanonicalMIMEHeaderKey(DefaultReceiptHeader)

// deleteFolded deletes the header canon, and every name that equals it in
// any case, with any byte other than a letter or digit read as '-'.
func deleteFolded(h http.Header, canon string) {
	delete(h, canon)
	for name := range h {
		if len(name) == len(canon) && sameHeaderName(name, canon) {
			delete(h, name)
		}
	}
}

// guardedHeaders returns, in lower case, the headers whose values the
// gateway decides: every header p reads or writes a tag in, the baggage
// header, the route receipt headers and the fallback header.
func guardedHeaders(p *propagation.Propagator, receipts []string) []string {
	names := []string{p.Header(), propagation.BaggageHeader, strings.ToLower(fallbackHeader)}
	for _, k := range receipts {
		names = append(names, strings.ToLower(k))
	}
	for _, ds := range [][]propagation.Dialect{p.Dialects(), p.WriteDialects()} {
		for _, d := range ds {
			if d.Header() != "" {
				names = append(names, d.Header())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// guardConnection removes from the Connection header of h the tokens that
// name a guarded header. A proxy deletes the headers its request's
// Connection header names (they are hop-by-hop), so a client could
// otherwise make a plain httputil.ReverseProxy behind the gateway drop the
// tag the gateway set. Other tokens (close, upgrade) are kept; a line left
// without tokens is dropped, and the header with it when none is left.
func guardConnection(h http.Header, guarded []string) {
	lines := h["Connection"]
	if !slices.ContainsFunc(lines, func(line string) bool { return namesGuarded(line, guarded) }) {
		return
	}
	out := make([]string, 0, len(lines))
	for _, line := range lines {
		if !namesGuarded(line, guarded) {
			out = append(out, line)
			continue
		}
		var b strings.Builder
		for tok := range strings.SplitSeq(line, ",") {
			t := strings.TrimSpace(tok)
			if t == "" || isGuarded(t, guarded) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t)
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
	}
	if len(out) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = out
}

// namesGuarded reports whether a Connection header line names a guarded
// header.
func namesGuarded(line string, guarded []string) bool {
	for tok := range strings.SplitSeq(line, ",") {
		if isGuarded(strings.TrimSpace(tok), guarded) {
			return true
		}
	}
	return false
}

func isGuarded(tok string, guarded []string) bool {
	for _, g := range guarded {
		if sameHeaderName(tok, g) {
			return true
		}
	}
	return false
}

// sameHeaderName reports whether name is the header want in any case, with
// every byte other than a letter or a digit read as '-', as
// servers that fold '-' and '_' (and more) together would read it.
func sameHeaderName(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c, w := name[i], want[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= w && w <= 'Z' {
			w += 'a' - 'A'
		}
		if c == w || w == '-' && !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}
