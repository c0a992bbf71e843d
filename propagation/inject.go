package propagation

import (
	"net/http"

	"github.com/graylane/graylane/tag"
)

// InjectHeader writes t into the outbound HTTP header h: the tag header is
// set to t (any earlier values are replaced), with baggage injection on the
// baggage member is added or replaced (see the package documentation), and
// every dialect of WithWriteDialects is written too. The zero Tag writes
// nothing, and neither does a nil h, which has nowhere to write.
func (p *Propagator) InjectHeader(h http.Header, t tag.Tag) {
	p.inject(map[string][]string(h), t, &p.httpKeys)
}

// InjectMetadata is InjectHeader for carriers with lower-case keys, such as
// gRPC metadata (metadata.MD). A nil md is left alone.
func (p *Propagator) InjectMetadata(md map[string][]string, t tag.Tag) {
	p.inject(md, t, &p.mdKeys)
}

func (p *Propagator) inject(m map[string][]string, t tag.Tag, k *carrierKeys) {
	if t.IsZero() || m == nil {
		return
	}
	if cur := m[k.header]; len(cur) != 1 || cur[0] != t.String() {
		m[k.header] = []string{t.String()}
	}
	if p.writeDialects != nil {
		p.injectDialects(m, t, k)
	}
	if !p.injectBag {
		return
	}
	if out, changed, _ := setMember(m[k.baggage], p.member, t.String()); changed {
		if len(out) == 0 {
			delete(m, k.baggage)
		} else {
			m[k.baggage] = out
		}
	}
}

// HeaderCarries reports whether the outbound HTTP header h already carries t
// exactly as InjectHeader would write it, so that a caller can avoid copying
// a request that needs no change.
func (p *Propagator) HeaderCarries(h http.Header, t tag.Tag) bool {
	return p.carries(headerValues(h), t, &p.httpKeys)
}

// MetadataCarries is HeaderCarries for carriers with lower-case keys: values
// returns all values of a key.
func (p *Propagator) MetadataCarries(values func(key string) []string, t tag.Tag) bool {
	return p.carries(values, t, &p.mdKeys)
}

func (p *Propagator) carries(values valuesFunc, t tag.Tag, k *carrierKeys) bool {
	if t.IsZero() {
		return true
	}
	if cur := values(k.header); len(cur) != 1 || cur[0] != t.String() {
		return false
	}
	if p.writeDialects != nil && !p.dialectsCarry(values, t, k) {
		return false
	}
	if !p.injectBag {
		return true
	}
	_, changed, _ := setMember(values(k.baggage), p.member, t.String())
	return !changed
}
