package propagation

import (
	"context"
	"strings"

	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/graylane/graylane/tag"
)

var _ otelprop.TextMapPropagator = (*Propagator)(nil)

// Extract implements OpenTelemetry's TextMapPropagator: it reads the tag from
// carrier, with the same sources and rules as ReadHeader, and returns a
// context that carries it (see tag.NewContext). When there is no tag, it
// returns ctx itself. It never fails.
//
// In a composite propagator, put it after propagation.Baggage{} if the
// OpenTelemetry baggage should also count as a source when the carrier's
// baggage header has no member (it counts either way when the header has it).
func (p *Propagator) Extract(ctx context.Context, carrier otelprop.TextMapCarrier) context.Context {
	t, _ := p.read(ctx, carrierValues(carrier), &p.mdKeys)
	if t.IsZero() {
		return ctx
	}
	return tag.NewContext(ctx, t)
}

// Inject implements OpenTelemetry's TextMapPropagator: when ctx carries a
// tag, it sets the tag header, writes every dialect of WithWriteDialects and,
// with baggage injection on, adds or replaces the baggage member in whatever
// "baggage" header the carrier already holds, keeping the other members. It
// writes nothing when ctx has no tag.
//
// In a composite propagator, put it after propagation.Baggage{}: that
// propagator replaces the whole baggage header, so running it later would
// drop the member (the tag header still carries the tag).
func (p *Propagator) Inject(ctx context.Context, carrier otelprop.TextMapCarrier) {
	t, ok := tag.FromContext(ctx)
	if !ok {
		return
	}
	p.injectCarrier(carrierValues(carrier), carrier.Set, t)
}

// injectCarrier writes t through a carrier that reads with values and
// writes with set, one value per key (several baggage lines are joined with
// commas): the tag header, every write dialect and, with baggage injection
// on, the baggage member. It writes a key only when its value changes.
func (p *Propagator) injectCarrier(values valuesFunc, set func(key, value string), t tag.Tag) {
	if cur := values(p.header); len(cur) != 1 || cur[0] != t.String() {
		set(p.header, t.String())
	}
	if p.writeDialects != nil {
		p.injectCarrierDialects(values, set, t)
	}
	if !p.injectBag {
		return
	}
	if out, changed, _ := setMember(values(BaggageHeader), p.member, t.String()); changed {
		set(BaggageHeader, strings.Join(out, ","))
	}
}

// Fields implements OpenTelemetry's TextMapPropagator: the keys Inject
// writes.
func (p *Propagator) Fields() []string {
	return append([]string(nil), p.fields...)
}

func carrierValues(c otelprop.TextMapCarrier) valuesFunc {
	if vg, ok := c.(otelprop.ValuesGetter); ok {
		return vg.Values
	}
	return func(key string) []string {
		if v := c.Get(key); v != "" {
			return []string{v}
		}
		return nil
	}
}
