package natslane

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/tag"
)

// Header returns the headers of msg as a carrier for package propagation,
// creating them if msg has none. NATS header keys are case-sensitive;
// graylane writes and reads them in lower case, as OpenTelemetry's
// carriers do.
func Header(msg *nats.Msg) propagation.MessageHeader {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	return propagation.MessageHeader(msg.Header)
}

// Inject writes the tag of ctx into the headers of msg, with the keys and
// rules of p ("x-traffic-tag", and the "baggage" member with baggage
// injection on). A nil p means the default Propagator. It writes nothing
// when ctx has no tag. Publish msg with nats.Conn.PublishMsg or
// jetstream.JetStream.PublishMsg.
func Inject(ctx context.Context, p *propagation.Propagator, msg *nats.Msg) {
	t, ok := tag.FromContext(ctx)
	if !ok {
		return
	}
	if p == nil {
		p = defaultPropagator()
	}
	p.InjectMessage(Header(msg), t)
}

// NewMsg returns a message for subject with data, carrying the tag of ctx.
func NewMsg(ctx context.Context, p *propagation.Propagator, subject string, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Data: data}
	Inject(ctx, p, msg)
	return msg
}

var defaultPropagator = sync.OnceValue(func() *propagation.Propagator {
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		panic(err) // the defaults are valid
	}
	return p
})

// readTag reads the tag of a message with headers h; the service's own
// tag never counts as a message's tag.
func readTag(ctx context.Context, p *propagation.Propagator, h map[string][]string) tag.Tag {
	t, src := p.ReadMessage(ctx, propagation.MessageHeader(h))
	if src == propagation.SourceOwn {
		return tag.Tag{}
	}
	return t
}

// withTag returns ctx carrying the message's tag, the table's copy when it
// names a known lane.
func withTag(ctx context.Context, route *queue.Route, t tag.Tag) context.Context {
	switch {
	case t.IsZero():
		return ctx
	case !route.Tag.IsZero():
		return tag.NewContext(ctx, route.Tag)
	}
	own, _ := tag.Of(strings.Clone(t.String()))
	return tag.NewContext(ctx, own)
}

// Name returns the name of the JetStream durable consumer, or core NATS
// queue group, of the consumers of lane in group: the group's name for the
// base lane (lane "" or base) and "<group>_<lane>" for any other lane, with
// the characters a consumer name may not hold escaped: '.' as "_2E" and '_'
// as "_5F" ("notifications_gray", "notifications_v1_2E2" for lane
// "v1.2").
func Name(group, lane, base string) string {
	if lane == "" || lane == base {
		return group
	}
	var b strings.Builder
	b.WriteString(group)
	b.WriteByte('_')
	for i := 0; i < len(lane); i++ {
		switch c := lane[i]; c {
		case '.':
			b.WriteString("_2E")
		case '_':
			b.WriteString("_5F")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
