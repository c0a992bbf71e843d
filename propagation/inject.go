package propagation

import (
	"net/http"

	"github.com/graylane/graylane/tag"
)

// InjectHeader writes t into the outbound HTTP header h: the tag header is
// set to t (any earlier values are replaced) and, with baggage injection on,
// the baggage member is added or replaced (see the package documentation).
// The zero Tag writes nothing.
func (p *Propagator) InjectHeader(h http.Header, t tag.Tag) {
	p.inject(map[string][]string(h), t, p.headerCanon, "Baggage")
}

// InjectMetadata is InjectHeader for carriers with lower-case keys, such as
// gRPC metadata (metadata.MD).
func (p *Propagator) InjectMetadata(md map[string][]string, t tag.Tag) {
	p.inject(md, t, p.header, BaggageHeader)
}

func (p *Propagator) inject(m map[string][]string, t tag.Tag, headerKey, baggageKey string) {
	if t.IsZero() {
		return
	}
	if cur := m[headerKey]; len(cur) != 1 || cur[0] != t.String() {
		m[headerKey] = []string{t.String()}
	}
	if !p.injectBag {
		return
	}
	if out, changed, _ := setMember(m[baggageKey], p.member, t.String()); changed {
		if len(out) == 0 {
			delete(m, baggageKey)
		} else {
			m[baggageKey] = out
		}
	}
}

// HeaderCarries reports whether the outbound HTTP header h already carries t
// exactly as InjectHeader would write it, so that a caller can avoid copying
// a request that needs no change.
func (p *Propagator) HeaderCarries(h http.Header, t tag.Tag) bool {
	return p.carries(headerValues(h), t, p.headerCanon, "Baggage")
}

// MetadataCarries is HeaderCarries for carriers with lower-case keys: values
// returns all values of a key.
func (p *Propagator) MetadataCarries(values func(key string) []string, t tag.Tag) bool {
	return p.carries(values, t, p.header, BaggageHeader)
}

func (p *Propagator) carries(values valuesFunc, t tag.Tag, headerKey, baggageKey string) bool {
	if t.IsZero() {
		return true
	}
	if cur := values(headerKey); len(cur) != 1 || cur[0] != t.String() {
		return false
	}
	if !p.injectBag {
		return true
	}
	_, changed, _ := setMember(values(baggageKey), p.member, t.String())
	return !changed
}
