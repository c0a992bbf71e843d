package propagation

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/tag"
)

// ReadHeader returns the tag of an inbound HTTP request with header h, and
// the source it came from (SourceNone, and the zero Tag, when there is
// none). ctx is consulted for OpenTelemetry baggage when h has no baggage
// member; it may be the request's context. It never fails: bad values are
// skipped and counted (see the package documentation).
func (p *Propagator) ReadHeader(ctx context.Context, h http.Header) (tag.Tag, Source) {
	return p.read(ctx, headerValues(h), &p.httpKeys)
}

// ReadMetadata is ReadHeader for carriers with lower-case keys, such as
// gRPC metadata (metadata.MD): values returns all values of a key.
func (p *Propagator) ReadMetadata(ctx context.Context, values func(key string) []string) (tag.Tag, Source) {
	return p.read(ctx, values, &p.mdKeys)
}

type valuesFunc = func(key string) []string

func headerValues(h http.Header) valuesFunc {
	return func(key string) []string { return h[key] }
}

// carrierKeys are the keys of one kind of carrier: canonical header names
// for http.Header, lower-case ones for metadata and TextMapCarrier.
type carrierKeys struct {
	header, baggage string
	canonical       bool
	strip           []string // the headers Strip removes
}

func (p *Propagator) read(ctx context.Context, values valuesFunc, k *carrierKeys) (tag.Tag, Source) {
	for _, s := range p.order {
		var t tag.Tag
		switch s {
		case SourceHeader:
			t = p.fromHeader(ctx, values(k.header))
		case SourceBaggage:
			if p.member == "" {
				continue
			}
			t = p.fromBaggage(ctx, values(k.baggage))
		case SourceOwn:
			t = p.own
		case SourceDialect:
			t = p.fromDialects(ctx, values, k)
		}
		if !t.IsZero() {
			return t, s
		}
	}
	return tag.Tag{}, SourceNone
}

// fromHeader picks the tag out of the values of the tag header.
func (p *Propagator) fromHeader(ctx context.Context, vals []string) tag.Tag {
	return pickTag(vals, nil, func(r rejectReason, v string) { p.stats.reject(ctx, SourceHeader, r, v) })
}

// pickTag returns the tag that the values of one header carry, each value
// turned into a lane name by lane first when lane is not nil. An invalid
// value is rejected and skipped; two valid values that differ make the tag
// ambiguous: both are rejected, and there is no tag.
func pickTag(vals []string, lane func(string) string, reject func(rejectReason, string)) tag.Tag {
	var got tag.Tag
	for _, v := range vals {
		s := v
		if lane != nil {
			s = lane(v)
		}
		t, ok := tag.Of(s)
		if !ok {
			reject(rejectInvalid, v)
			continue
		}
		if !got.IsZero() && got != t {
			reject(rejectAmbiguous, got.String()+","+v)
			return tag.Tag{}
		}
		got = t
	}
	return got
}

// fromBaggage picks the tag out of the baggage header values, or out of the
// OpenTelemetry baggage in ctx when the header has no member.
func (p *Propagator) fromBaggage(ctx context.Context, vals []string) tag.Tag {
	return memberTag(ctx, vals, p.member, func(r rejectReason, v string) { p.stats.reject(ctx, SourceBaggage, r, v) })
}

// memberTag picks the tag out of the baggage member key of the header
// values vals, or out of the OpenTelemetry baggage in ctx when the header
// has no such member; reject reports a value it ignores, and why.
func memberTag(ctx context.Context, vals []string, key string, reject func(rejectReason, string)) tag.Tag {
	raw, res := findMember(vals, key)
	switch res {
	case scanAbsent:
		m := baggage.FromContext(ctx).Member(key)
		if m.Key() == "" {
			return tag.Tag{}
		}
		// Already percent-decoded by the OpenTelemetry parser.
		t, ok := tag.Of(m.Value())
		if !ok {
			reject(rejectInvalid, m.Value())
		}
		return t
	case scanOversize:
		reject(rejectOversize, "")
		return tag.Tag{}
	case scanAmbiguous:
		reject(rejectAmbiguous, "")
		return tag.Tag{}
	case scanInvalid:
		reject(rejectInvalid, raw)
		return tag.Tag{}
	}
	v, ok := unescape(raw)
	t, valid := tag.Of(v)
	if !ok || !valid {
		reject(rejectInvalid, raw)
		return tag.Tag{}
	}
	return t
}
