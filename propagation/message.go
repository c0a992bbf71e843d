package propagation

import (
	"context"
	"slices"

	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/graylane/graylane/tag"
)

// MessageCarrier is the headers of a message on a queue: Kafka record
// headers, NATS message headers. Their keys are case-sensitive, and graylane
// matches and writes them exactly as OpenTelemetry's carriers for Kafka and
// NATS do: in lower case ("x-traffic-tag", "baggage", the dialects' header
// names).
//
// The message adapters (queue/kafkalane, queue/natslane) provide carriers;
// MessageHeader is one for headers kept in a map, such as nats.Header.
type MessageCarrier interface {
	// Values returns the values of key, matched exactly, in order. The
	// caller only reads them, and only until its next call on the carrier.
	Values(key string) []string
	// Set replaces every value of key with value.
	Set(key, value string)
}

// MessageHeader is a MessageCarrier over a map from case-sensitive keys to
// values, the form of nats.Header: convert with MessageHeader(msg.Header).
// It is also an OpenTelemetry TextMapCarrier (and ValuesGetter), so trace
// propagators can share it. Unlike http.Header, it never changes a key's
// case.
type MessageHeader map[string][]string

var (
	_ MessageCarrier          = MessageHeader(nil)
	_ otelprop.TextMapCarrier = MessageHeader(nil)
	_ otelprop.ValuesGetter   = MessageHeader(nil)
)

// Values implements MessageCarrier.
func (h MessageHeader) Values(key string) []string { return h[key] }

// Set implements MessageCarrier and TextMapCarrier.
func (h MessageHeader) Set(key, value string) { h[key] = []string{value} }

// Get implements TextMapCarrier: the first value of key, or "".
func (h MessageHeader) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Keys implements TextMapCarrier, sorted.
func (h MessageHeader) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ReadMessage returns the tag of an inbound message with headers c, and the
// source it came from, with the sources, dialects and rules of ReadHeader:
// the tag header, then the baggage member (from the "baggage" header, or
// from the OpenTelemetry baggage of ctx when the header has no member), then
// the dialects, then the service's own tag. Keys are matched exactly, in
// lower case. Bad values (invalid, several different ones, an oversized
// baggage) are skipped and counted, never an error: a message is never
// refused because of its tag headers. It does not allocate unless a value
// is percent-encoded or rejected.
func (p *Propagator) ReadMessage(ctx context.Context, c MessageCarrier) (tag.Tag, Source) {
	return p.read(ctx, c.Values, &p.mdKeys)
}

// InjectMessage writes t into the headers c of an outbound message, as
// InjectHeader does on HTTP: the tag header is set to t; with baggage
// injection the baggage member is added to, or replaced in, the "baggage"
// header (its lines joined into one), keeping every other member and the
// W3C limits; every dialect of WithWriteDialects is written too. Keys are
// lower case. A key whose value is already right is not written again. The
// zero Tag writes nothing.
func (p *Propagator) InjectMessage(c MessageCarrier, t tag.Tag) {
	if t.IsZero() {
		return
	}
	p.injectCarrier(c.Values, c.Set, t)
}
