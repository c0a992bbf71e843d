package propagation

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/baggage"
)

// Strip removes from h every place p reads a tag from or writes one to: the
// tag header, the baggage member (unless baggage is off), and the header or
// baggage member of every dialect of WithDialects and WithWriteDialects. It
// reports whether it removed anything. The service's own tag is not in h and
// is not affected.
//
// Strip removes what any reader downstream could take for a tag, not only
// what p reads:
//
//   - Header names are matched in any case, with every byte other than a
//     letter or digit read as '-' ("X_Traffic_Tag", "x.traffic.tag"):
//     net/http keeps such names apart, but servers in other languages often
//     fold them into the same header (CGI and its heirs turn '-' into '_').
//     The "baggage" header is found the same way.
//   - A baggage list-member is removed when its key, read loosely, is a tag
//     key: the text before the first '=' (or ';'), trimmed of every control
//     character, every Unicode white space (U+0085, U+00A0, U+1680,
//     U+2000 to U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, and the
//     ASCII ones) and the invisible U+180E, U+200B to U+200D, U+2060 and
//     U+FEFF, percent-decoded, compared in any case (with Unicode case
//     mappings, so the Kelvin sign is a 'k') and with '_' taken for '-'.
//     OpenTelemetry's baggage parser, for one, trims keys with
//     strings.TrimSpace, so " traffic-tag=gray" with a no-break space is a
//     tag member to it.
//
// Removing a baggage member rewrites the "baggage" header: every other
// list-member is kept byte for byte and in order, empty list-members and
// lines left empty are dropped, and the header is deleted when no member is
// left. Unlike reading, stripping is not bounded by the W3C limits: members
// past the 64th and headers over 8192 bytes are scanned too, so that no
// lenient parser downstream finds a tag that Strip missed. Values are not
// looked at: a malformed or invalid tag is removed like a valid one.
//
// Strip is for the trust boundary at the edge (package ingress): an
// untrusted client's tag must not reach the services behind it.
func (p *Propagator) Strip(h http.Header) bool {
	return p.strip(map[string][]string(h), &p.httpKeys)
}

// looseHeaderIs reports whether the header name is want (lower-case) in
// any case, with every byte other than a letter or a digit read as '-'.
func looseHeaderIs(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c, w := lowerASCII(name[i]), want[i]
		if c == w {
			continue
		}
		if w == '-' && !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// StripMetadata is Strip for carriers with lower-case keys, such as gRPC
// metadata (metadata.MD). Keys are matched as Strip matches header names.
func (p *Propagator) StripMetadata(md map[string][]string) bool {
	return p.strip(md, &p.mdKeys)
}

func (p *Propagator) strip(m map[string][]string, k *carrierKeys) bool {
	removed := false
	for _, key := range k.strip {
		if _, ok := m[key]; ok {
			delete(m, key)
			removed = true
		}
	}
	if p.stripBaggage(m, k.baggage) {
		removed = true
	}
	// The same names in other spellings.
	for name := range m {
		if n := len(name); n >= 64 || p.foldLens&(1<<n) == 0 {
			if n < 64 || !p.foldLong {
				continue // no name Strip looks for has this length
			}
		}
		switch p.foldedName(name, k) {
		case foldedHeader:
			delete(m, name)
			removed = true
		case foldedBaggage:
			if p.stripBaggage(m, name) {
				removed = true
			}
		}
	}
	return removed
}

type folded uint8

const (
	foldedNone folded = iota
	foldedHeader
	foldedBaggage
)

// foldedName says whether name, not in the form p looks up, is another
// spelling of a header Strip removes or of the baggage header.
func (p *Propagator) foldedName(name string, k *carrierKeys) folded {
	if name == k.baggage {
		return foldedNone // handled already
	}
	if len(p.stripMembers) > 0 && looseHeaderIs(name, BaggageHeader) {
		return foldedBaggage
	}
	for _, key := range p.mdKeys.strip {
		if looseHeaderIs(name, key) {
			return foldedHeader
		}
	}
	return foldedNone
}

// stripBaggage removes the tag members from the baggage header name of m.
func (p *Propagator) stripBaggage(m map[string][]string, name string) bool {
	if len(p.stripMembers) == 0 {
		return false
	}
	vals, ok := m[name]
	if !ok {
		return false
	}
	out, changed := removeMembers(vals, p.stripMembers)
	if !changed {
		return false
	}
	if len(out) == 0 {
		delete(m, name)
	} else {
		m[name] = out
	}
	return true
}

// StripContext returns ctx without the OpenTelemetry baggage members that
// Strip removes from headers (a middleware such as otelhttp may have put
// the inbound baggage there already), or ctx itself when it has none of
// them.
func (p *Propagator) StripContext(ctx context.Context) context.Context {
	if len(p.stripMembers) == 0 {
		return ctx
	}
	bag := baggage.FromContext(ctx)
	if bag.Len() == 0 {
		return ctx
	}
	changed := false
	for _, m := range bag.Members() {
		if isLooseMember(m.Key()+"=", p.stripMembers) {
			bag = bag.DeleteMember(m.Key())
			changed = true
		}
	}
	if !changed {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, bag)
}

// removeMembers returns the baggage header values vals without the
// list-members whose key is one of keys. It allocates only when there is
// something to remove; then other members are kept byte for byte, empty
// members and empty lines are dropped.
func removeMembers(vals []string, keys []string) ([]string, bool) {
	if !hasMember(vals, keys) {
		return vals, false
	}
	out := make([]string, 0, len(vals))
	for _, line := range vals {
		var b strings.Builder
		for m := range strings.SplitSeq(line, ",") {
			if trimOWS(m) == "" || isLooseMember(m, keys) {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m)
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
	}
	return out, true
}

func hasMember(vals []string, keys []string) bool {
	for _, line := range vals {
		for len(line) > 0 {
			var m string
			if i := strings.IndexByte(line, ','); i >= 0 {
				m, line = line[:i], line[i+1:]
			} else {
				m, line = line, ""
			}
			if isLooseMember(m, keys) {
				return true
			}
		}
	}
	return false
}
