package kafkalane

import (
	"context"
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// Headers returns the headers of r as a carrier for package propagation:
// keys are matched exactly, values read as strings, Set replaces every
// header with the key by one.
func Headers(r *kgo.Record) propagation.MessageCarrier { return producerHeaders{r} }

// producerHeaders is the carrier of a record being produced. It is one
// pointer wide, so turning it into an interface does not allocate.
type producerHeaders struct{ r *kgo.Record }

func (h producerHeaders) Values(key string) []string {
	var out []string
	for _, kv := range h.r.Headers {
		if kv.Key == key {
			out = append(out, string(kv.Value))
		}
	}
	return out
}

func (h producerHeaders) Set(key, value string) { setHeader(h.r, key, value) }

func setHeader(r *kgo.Record, key, value string) {
	kept := r.Headers[:0]
	for _, kv := range r.Headers {
		if kv.Key != key {
			kept = append(kept, kv)
		}
	}
	r.Headers = append(kept, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// consumerHeaders is the carrier of a consumed record, reused for every
// record of one consumer: Values returns strings that share the record's
// bytes, valid while the record is not modified, so reading a tag does not
// allocate. A tag that outlives the decision is copied (see tagOf).
type consumerHeaders struct {
	r   *kgo.Record
	buf [4]string
}

func (h *consumerHeaders) Values(key string) []string {
	out := h.buf[:0]
	for _, kv := range h.r.Headers {
		if kv.Key == key {
			out = append(out, unsafe.String(unsafe.SliceData(kv.Value), len(kv.Value)))
		}
	}
	return out
}

func (h *consumerHeaders) Set(key, value string) { setHeader(h.r, key, value) }

// hook writes the tag of a produced record's context into its headers.
type hook struct{ p *propagation.Propagator }

var _ kgo.HookProduceRecordBuffered = hook{}

func (h hook) OnProduceRecordBuffered(r *kgo.Record) {
	if r.Context == nil {
		return
	}
	if t, ok := tag.FromContext(r.Context); ok {
		h.p.InjectMessage(producerHeaders{r}, t)
	}
}

// ProduceHook returns the client option that makes every record produced
// with a context carrying a tag (kgo.Client.Produce and ProduceSync set
// Record.Context to their ctx) carry it in its headers, with the keys and
// rules of p: "x-traffic-tag", and the "baggage" member with baggage
// injection on. A nil p means the default Propagator. Records whose context
// has no tag are left alone.
func ProduceHook(p *propagation.Propagator) (kgo.Opt, error) {
	if p == nil {
		p = defaultPropagator()
	}
	return kgo.WithHooks(hook{p}), nil
}

// Inject writes the tag of ctx into the headers of r, for records produced
// without ProduceHook. A nil p means the default Propagator. It writes
// nothing when ctx has no tag.
func Inject(ctx context.Context, p *propagation.Propagator, r *kgo.Record) {
	if t, ok := tag.FromContext(ctx); ok {
		if p == nil {
			p = defaultPropagator()
		}
		p.InjectMessage(producerHeaders{r}, t)
	}
}

var defaultPropagator = sync.OnceValue(func() *propagation.Propagator {
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		panic(err) // the defaults are valid
	}
	return p
})
