package propagation

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/baggage"
)

// Strip removes from h every place p reads a tag from or writes one to: the
// tag header, the baggage member (unless baggage is off), and the header or
// baggage member of every dialect of WithDialects and WithWriteDialects. It
// reports whether it removed anything. The service's own tag is not in h and
// is not affected.
//
// Removing a baggage member rewrites the "baggage" header: every other
// list-member is kept byte for byte and in order, empty list-members and
// lines left empty are dropped, and the header is deleted when no member is
// left. Unlike reading, stripping is not bounded by the W3C limits: members
// past the 64th and headers over 8192 bytes are scanned too, so that no
// lenient parser downstream finds a tag that Strip missed. Values are not
// looked at: a malformed or invalid tag is removed like a valid one.
//
// Header names are also matched with '_' read as '-', in any case
// ("X_Traffic_Tag"): net/http keeps such names apart, but servers in other
// languages often fold them into the same header.
//
// Strip is for the trust boundary at the edge (package ingress): an
// untrusted client's tag must not reach the services behind it.
func (p *Propagator) Strip(h http.Header) bool {
	removed := p.strip(map[string][]string(h), &p.httpKeys)
	for name := range h {
		if strings.IndexByte(name, '_') < 0 {
			continue
		}
		folded := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if slices.Contains(p.mdKeys.strip, folded) {
			delete(h, name)
			removed = true
		}
	}
	return removed
}

// StripMetadata is Strip for carriers with lower-case keys, such as gRPC
// metadata (metadata.MD).
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
	if len(p.stripMembers) == 0 {
		return removed
	}
	vals, ok := m[k.baggage]
	if !ok {
		return removed
	}
	out, changed := removeMembers(vals, p.stripMembers)
	if !changed {
		return removed
	}
	if len(out) == 0 {
		delete(m, k.baggage)
	} else {
		m[k.baggage] = out
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
	for _, key := range p.stripMembers {
		if bag.Member(key).Key() != "" {
			bag = bag.DeleteMember(key)
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
			if trimOWS(m) == "" || isOneOf(m, keys) {
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
			if isOneOf(m, keys) {
				return true
			}
		}
	}
	return false
}

// isOneOf reports whether list-member m has one of keys as its key.
func isOneOf(m string, keys []string) bool {
	for _, k := range keys {
		if _, ok := memberValue(m, k); ok {
			return true
		}
	}
	return false
}
