// Package receipt is graylane's route receipt: a record, for debugging, of
// which instance of which service, in which lane, served each hop of a
// request, and whether the hop got there by fallback.
//
// It is opt-in and meant for trusted callers only. A caller asks for it by
// sending the request header (or gRPC metadata) "x-graylane-route" with its
// own service name as the value ("1" at the entry). A server with receipts
// enabled (httpmw.WithRouteReceipt, grpcmw.WithRouteReceipt) then records
// its own hop in a Receipt kept in the request's context; graylane's
// clients ask the next services for theirs and add what comes back; and the
// server answers with every hop in the response header "x-graylane-route"
// (a trailer in gRPC). The edge must strip the request header from
// untrusted clients (package ingress does), since the answer reveals
// instance names.
//
// Self.Header renames the header for a fleet: the server answers on it,
// and the Receipt it keeps carries the name to graylane's clients, which
// ask the next services on it. The edge must then be told the name too
// (ingress.WithReceiptHeader). graylane's HTTP client asks only the
// instances it routes to (and hosts allowed with httpmw.WithReceiptHosts),
// so that no third party is told receipts are on, or adds hops.
//
// # Format
//
// A header value is a comma-separated list of hops; a hop is a
// semicolon-separated list of key=value pairs: svc, inst, lane, tag,
// fallback, from, error, note. Values are percent-encoded where they hold bytes other
// than letters, digits, '.', '_', '-', ':' and '@'.
//
//	svc=reviews;inst=reviews-v2-0;lane=gray;tag=gray;from=productpage, svc=ratings;inst=ratings-v1-0;lane=prod;tag=gray;fallback=noinstances;from=reviews
//
// # Bad input
//
// Encode writes at most MaxLen bytes, each value cut to MaxValue bytes,
// leaving out whole hops that would not fit. Parse takes untrusted text. It never panics; it keeps at most MaxHops
// hops and reads at most MaxLen bytes, skips unknown keys, and returns an
// error for a malformed hop (the hops before it are kept).
package receipt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/graylane/graylane/tag"
)

// Header is the request header that asks for a receipt and the response
// header (gRPC trailer) that carries it. gRPC metadata uses the same name.
const Header = "x-graylane-route"

// Limits on what Parse reads and a Receipt keeps.
const (
	MaxHops = 64
	MaxLen  = 8192
)

// Hop is one service's part of a request's route.
type Hop struct {
	Service  string // the service that served the hop
	Instance string // which instance of it
	Lane     string // the instance's lane
	Tag      string // the request's tag ("" untagged)
	Fallback string // why the caller fell back to reach it ("" when it did not)
	From     string // the calling service ("" at the entry)
	// Error says why the call failed without reaching an instance (for
	// instance a strict-mode rejection); such a hop has no Instance or
	// Lane. Clients record it themselves.
	Error string
	// Note is a server's remark on the request, such as the edge's lane
	// decision ("rule 0 (testers) -> gray").
	Note string
}

// Self says who a server is, for the hop it records, and when it records
// one.
type Self struct {
	Service  string
	Instance string
	Lane     string
	// Always makes the server keep a Receipt for every request, so that
	// the handler can show the route (receipt.FromContext); it is still
	// sent back only to callers that asked for it.
	Always bool
	// Header names the request header (and gRPC metadata key) that asks
	// for a receipt and the response header (gRPC trailer) that carries
	// it; "" is Header, "x-graylane-route". Every service of a fleet, and
	// the edge (ingress.WithReceiptHeader), must use the same name: the
	// server answers on it, and graylane's clients ask the next services
	// with the name of the Receipt in the request's context. It must be a
	// valid gRPC metadata key (see CheckHeader).
	Header string
}

// HeaderName returns the receipt header of s, in lower case: s.Header, or
// Header when it is empty.
func (s Self) HeaderName() string {
	if s.Header == "" {
		return Header
	}
	return strings.ToLower(s.Header)
}

// Receipt returns a Receipt whose first hop is first, on the header of s
// (see New).
func (s Self) Receipt(first Hop, expose bool) *Receipt {
	r := New(first, expose)
	r.header = s.HeaderName()
	return r
}

// CheckHeader reports whether name can be a receipt header: a valid HTTP
// header name and gRPC metadata key (letters, digits, '-', '_' and '.'),
// not starting with "grpc-" and not ending with "-bin".
func CheckHeader(name string) error {
	if name == "" {
		return errors.New("receipt: empty header name")
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "grpc-") || strings.HasSuffix(lower, "-bin") {
		return fmt.Errorf("receipt: header %q: names starting with \"grpc-\" or ending with \"-bin\" are reserved by gRPC", name)
	}
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("receipt: header %q: byte %q at offset %d; allowed are letters, digits, '-', '_' and '.'", name, c, i)
		}
	}
	return nil
}

// Hop returns the hop the server records for a request with tag t,
// reached by fallback for reason fallback ("" for none), called from from.
func (s Self) Hop(t, fallback, from string) Hop {
	return Hop{Service: s.Service, Instance: s.Instance, Lane: s.Lane, Tag: t, Fallback: fallback, From: from}
}

type noteKey struct{}

// WithNote returns a copy of ctx that carries a note for the hop that the
// server handling the request records (see Hop.Note): the edge puts its
// lane decision there.
func WithNote(ctx context.Context, note string) context.Context {
	return context.WithValue(ctx, noteKey{}, note)
}

// NoteFromContext returns the note of ctx, or "".
func NoteFromContext(ctx context.Context) string {
	n, _ := ctx.Value(noteKey{}).(string)
	return n
}

// Receipt collects the hops of one request in the server that handles it.
// It is safe for concurrent use: a handler may call several services at
// once.
type Receipt struct {
	mu     sync.Mutex
	hops   []Hop
	expose bool
	header string // lower case
}

// New returns a Receipt whose first hop is first, on the header Header.
// expose says whether the caller asked for it (and so may be answered with
// it). Self.Receipt returns one on the server's header.
func New(first Hop, expose bool) *Receipt {
	return &Receipt{hops: []Hop{first}, expose: expose, header: Header}
}

// Header returns, in lower case, the header on which the server answers
// with r and on which graylane's clients ask the next services for their
// hops.
func (r *Receipt) Header() string { return r.header }

// Owner returns the first hop: the server's own.
func (r *Receipt) Owner() Hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hops[0]
}

// Expose reports whether the caller asked for the receipt.
func (r *Receipt) Expose() bool { return r.expose }

// Add appends hops reported by a downstream call, up to MaxHops in all.
func (r *Receipt) Add(hops ...Hop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	room := MaxHops - len(r.hops)
	if room <= 0 {
		return
	}
	if len(hops) > room {
		hops = hops[:room]
	}
	r.hops = append(r.hops, hops...)
}

// Hops returns a copy of the hops so far, the owner's first.
func (r *Receipt) Hops() []Hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Hop(nil), r.hops...)
}

// String returns the header value of the hops so far.
func (r *Receipt) String() string { return Encode(r.Hops()) }

type ctxKey struct{}

// NewContext returns a copy of ctx that carries r.
func NewContext(ctx context.Context, r *Receipt) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the Receipt of ctx, or nil.
func FromContext(ctx context.Context) *Receipt {
	r, _ := ctx.Value(ctxKey{}).(*Receipt)
	return r
}

// Ask is the request header value with which a client at the entry asks
// for a receipt; services ask with their own name.
const Ask = "1"

// Failed returns the hop a client records for a call to service that
// failed before reaching an instance, from a request with tag t.
func (r *Receipt) Failed(service, t string, err error) Hop {
	return Hop{Service: service, Tag: t, From: r.Owner().Service, Error: err.Error()}
}

// Caller returns the calling service named by a request header value: ""
// at the entry (Ask) or when the value is not a valid service name.
func Caller(v string) string {
	if v == Ask || !tag.Valid(v) {
		return ""
	}
	return v
}

// MaxValue bounds each field of a hop as Encode writes it; longer values
// (an error message, say) are cut, on a UTF-8 boundary.
const MaxValue = 256

// Encode renders hops as a header value of at most MaxLen bytes, so that
// Parse reads back everything it wrote: hops that would not fit are left
// out, whole.
func Encode(hops []Hop) string {
	var b, hop strings.Builder
	for _, h := range hops {
		hop.Reset()
		sep := ""
		field := func(k, v string) {
			if v == "" {
				return
			}
			hop.WriteString(sep)
			hop.WriteString(k)
			hop.WriteByte('=')
			escape(&hop, clipValue(v))
			sep = ";"
		}
		field("svc", h.Service)
		field("inst", h.Instance)
		field("lane", h.Lane)
		field("tag", h.Tag)
		field("fallback", h.Fallback)
		field("from", h.From)
		field("error", h.Error)
		field("note", h.Note)
		if hop.Len() == 0 {
			continue
		}
		if b.Len() > 0 {
			if b.Len()+2+hop.Len() > MaxLen {
				break
			}
			b.WriteString(", ")
		} else if hop.Len() > MaxLen {
			break
		}
		b.WriteString(hop.String())
	}
	return b.String()
}

// clipValue cuts v to MaxValue bytes without splitting a UTF-8 sequence.
func clipValue(v string) string {
	if len(v) <= MaxValue {
		return v
	}
	cut := MaxValue
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// ErrMalformed is wrapped by Parse errors.
var ErrMalformed = errors.New("malformed route receipt")

// Parse reads a header value written by Encode (see the package
// documentation for its limits).
func Parse(s string) ([]Hop, error) {
	if len(s) > MaxLen {
		s = s[:MaxLen]
	}
	var hops []Hop
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if len(hops) == MaxHops {
			break
		}
		var h Hop
		for kv := range strings.SplitSeq(part, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return hops, fmt.Errorf("%w: %q is not key=value", ErrMalformed, clip(kv))
			}
			u, ok := unescape(v)
			if !ok {
				return hops, fmt.Errorf("%w: bad escape in %q", ErrMalformed, clip(v))
			}
			switch strings.TrimSpace(k) {
			case "svc":
				h.Service = u
			case "inst":
				h.Instance = u
			case "lane":
				h.Lane = u
			case "tag":
				h.Tag = u
			case "fallback":
				h.Fallback = u
			case "from":
				h.From = u
			case "error":
				h.Error = u
			case "note":
				h.Note = u
			}
		}
		if h.Service == "" {
			return hops, fmt.Errorf("%w: hop %q has no svc", ErrMalformed, clip(part))
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '@'
}

const hexDigits = "0123456789ABCDEF"

func escape(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; plain(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
}

func unescape(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, lo := strings.IndexByte(hexDigits, upper(s[i+1])), strings.IndexByte(hexDigits, upper(s[i+2]))
		if hi < 0 || lo < 0 {
			return "", false
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), true
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
