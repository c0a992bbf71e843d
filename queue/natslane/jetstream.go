package natslane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Handler processes one JetStream message. Its context carries the
// message's tag, so the calls it makes, and the messages it publishes with
// Inject, stay in the message's lane. The Consumer acknowledges the message
// when Handler returns nil, and asks for it again (Nak) when it returns an
// error.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// DeadLetterFunc receives the messages of a strict lane that has no live
// consumer, on the base lane's consumers, when the Lanes was built with
// queue.WithDeadLetter. The message is acknowledged when it returns nil
// and asked for again otherwise.
type DeadLetterFunc func(ctx context.Context, msg jetstream.Msg) error

// Option configures a Consumer.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	filter     []string
	prop       *propagation.Propagator
	deadLetter DeadLetterFunc
	batch      int
	ackWait    time.Duration
}

// WithFilterSubjects limits the Consumer to the stream's messages on these
// subjects (default: all of the stream's).
func WithFilterSubjects(subjects ...string) Option {
	subjects = append([]string(nil), subjects...)
	return optionFunc(func(c *config) { c.filter = subjects })
}

// WithPropagator sets the Propagator that reads the messages' tags
// (default propagation.New()). The service's own tag never counts as a
// message's tag.
func WithPropagator(p *propagation.Propagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithDeadLetter sets where the base lane's consumers send the messages of
// a strict lane that has no live consumer (see queue.WithDeadLetter).
func WithDeadLetter(f DeadLetterFunc) Option {
	return optionFunc(func(c *config) { c.deadLetter = f })
}

// WithBatch sets how many messages one pull asks for (default 100).
func WithBatch(n int) Option { return optionFunc(func(c *config) { c.batch = n }) }

// WithAckWait sets the durable consumers' ack wait: how long a message
// delivered to a consumer that died unacknowledged waits before it is
// delivered again (default 30s, JetStream's).
func WithAckWait(d time.Duration) Option { return optionFunc(func(c *config) { c.ackWait = d }) }

// Stats counts what a Consumer did (see queue.Stats).
type Stats = queue.Stats

// Consumer consumes a JetStream stream in the lane of its Lanes, through
// the lane's durable consumer (see Name), and takes over what a lost lane
// left behind. See the package documentation.
type Consumer struct {
	js      jetstream.JetStream
	stream  string
	lanes   *queue.Lanes
	handler Handler
	cfg     config
	name    string
	log     *slog.Logger

	counts queue.Counters

	mu      sync.Mutex
	reg     registry.Registration
	lastSeq uint64 // stream sequence of the last message decided
	floor   uint64 // the durable's ack floor when the consumer took it up
	crashed atomic.Bool
	running atomic.Bool
}

// NewConsumer returns a Consumer of stream for the lane of l, calling h for
// the messages its lane serves. It does not connect: Run does.
func NewConsumer(js jetstream.JetStream, stream string, l *queue.Lanes, h Handler, opts ...Option) (*Consumer, error) {
	c := &Consumer{js: js, stream: stream, lanes: l, handler: h, cfg: config{batch: 100}}
	for _, o := range opts {
		if o != nil {
			o.apply(&c.cfg)
		}
	}
	switch {
	case js == nil || l == nil || h == nil:
		return nil, errors.New("natslane: NewConsumer needs JetStream, Lanes and a Handler")
	case stream == "":
		return nil, errors.New("natslane: empty stream name")
	case c.cfg.batch < 1:
		return nil, fmt.Errorf("natslane: batch %d: want at least 1", c.cfg.batch)
	}
	if c.cfg.prop == nil {
		c.cfg.prop = defaultPropagator()
	}
	c.name = Name(l.Group(), l.Lane(), l.Base())
	c.log = l.Logger()
	return c, nil
}

// Durable returns the name of the Consumer's durable consumer.
func (c *Consumer) Durable() string { return c.name }

// Stats returns the Consumer's counts so far.
func (c *Consumer) Stats() Stats { return c.counts.Stats() }

// Run consumes until ctx is done, then stops gracefully: it acknowledges
// what it processed (and waits for the server to have the acks), then
// deregisters the consumer, so that if it was its lane's last consumer the
// fallback lane takes over exactly where it stopped. It registers the
// consumer once its durable consumer exists. Run returns nil after a
// graceful stop, or the error that stopped it. A Consumer runs once.
func (c *Consumer) Run(ctx context.Context) (err error) {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("natslane: Consumer already ran")
	}
	cons, err := c.durable(ctx)
	if err != nil {
		return err
	}
	if info := cons.CachedInfo(); info != nil {
		c.mu.Lock()
		c.floor = info.AckFloor.Stream
		c.mu.Unlock()
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	defer func() {
		if c.crashed.Load() {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if derr := c.reg.Deregister(dctx); derr != nil && err == nil {
			err = fmt.Errorf("natslane: deregistering: %w", derr)
		}
	}()
	var last *queue.Table
	for {
		tb := c.lanes.Table()
		if last != nil && tb != last {
			c.switchTables(ctx, last, tb)
		}
		last = tb
		// A pull is never cancelled: messages the server had sent for it
		// would stay unacknowledged until the ack wait, holding back the
		// lane's ack floor, from which a takeover starts. Short pulls bound
		// how long a table change waits instead.
		batch, err := cons.Fetch(c.cfg.batch, jetstream.FetchMaxWait(pullWait))
		if err != nil {
			if ctx.Err() != nil || c.crashed.Load() {
				return nil
			}
			if !durableGone(err) {
				return fmt.Errorf("natslane: fetching: %w", err)
			}
			// Another lane took over from this lane just before it came
			// up, and deleted its durable consumer: make it anew.
			if cons, err = c.redurable(ctx); err != nil {
				return err
			}
			continue
		}
		for msg := range batch.Messages() {
			if c.crashed.Load() {
				break
			}
			if now := c.lanes.Table(); now != last {
				c.switchTables(ctx, last, now)
				last = now
			}
			if err := c.decide(ctx, last, msg); err != nil {
				return err
			}
		}
		if c.crashed.Load() {
			return nil
		}
		if ctx.Err() != nil {
			return c.flush(ctx)
		}
		if err := batch.Error(); durableGone(err) {
			// Back off a pull's wait, so that a server that answers no
			// pull is not asked in a loop, then find or make the durable.
			select {
			case <-ctx.Done():
				continue
			case <-time.After(pullWait):
			}
			if cons, err = c.redurable(ctx); err != nil {
				return err
			}
		}
	}
}

// redurable finds the lane's durable consumer again after a pull found it
// gone: the lane that took over from this lane, before it came back,
// deleted it. Made anew, it starts after the last message this consumer
// decided (or where its durable stood when it took it up): what came
// since is this lane's to decide, and nothing the lane owns is skipped.
func (c *Consumer) redurable(ctx context.Context) (jetstream.Consumer, error) {
	if cons, err := c.js.Consumer(ctx, c.stream, c.name); err == nil {
		return cons, nil
	}
	c.mu.Lock()
	from := max(c.lastSeq, c.floor) + 1
	c.mu.Unlock()
	c.log.Info("graylane: durable consumer gone; made anew", "consumer", c.name, "from", from)
	return c.create(ctx, from)
}

// durableGone reports whether err may mean that the lane's durable
// consumer no longer exists: a pull to a deleted consumer finds no
// responder.
func durableGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrNoResponders)
}

// pullWait is how long one pull waits for messages: the longest a
// consumer with nothing to do takes to act on a table change.
const pullWait = 200 * time.Millisecond

// flush waits until the server has every ack sent.
func (c *Consumer) flush(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.js.Conn().FlushWithContext(fctx)
}

// durable returns the lane's durable consumer, creating it where the
// lane's predecessor has got to when the lane has none.
func (c *Consumer) durable(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := c.js.Consumer(ctx, c.stream, c.name)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("natslane: %w", err)
	}
	var from uint64
	if pred, ok := c.lanes.Table().Predecessor(); ok {
		pc, err := c.js.Consumer(ctx, c.stream, Name(c.lanes.Group(), pred, c.lanes.Base()))
		if err == nil {
			info, err := pc.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("natslane: the predecessor lane's consumer: %w", err)
			}
			from = info.AckFloor.Stream + 1
		}
	}
	return c.create(ctx, from)
}

// create makes the lane's durable consumer, starting at stream sequence
// from (0: the start of the stream).
func (c *Consumer) create(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.ackWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(c.cfg.filter) {
	case 0:
	case 1:
		cfg.FilterSubject = c.cfg.filter[0]
	default:
		cfg.FilterSubjects = c.cfg.filter
	}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("natslane: creating the durable consumer %s: %w", c.name, err)
	}
	return cons, nil
}

func (c *Consumer) register(ctx context.Context) error {
	reg, err := c.lanes.Register(ctx)
	if err != nil {
		return fmt.Errorf("natslane: registering the consumer: %w", err)
	}
	c.mu.Lock()
	c.reg = reg
	c.mu.Unlock()
	return nil
}

// decide processes, skips or dead-letters one message, and acknowledges
// it.
func (c *Consumer) decide(ctx context.Context, tb *queue.Table, msg jetstream.Msg) error {
	t := readTag(ctx, c.cfg.prop, msg.Headers())
	route := tb.Decide(t)
	switch route.Action {
	case queue.Process:
		c.process(ctx, route, t, msg, true)
	case queue.Skip:
		c.counts.Skipped.Add(1)
		_ = msg.Ack()
	case queue.Hold:
		c.counts.Held.Add(1)
		_ = msg.Ack()
	case queue.DeadLetter:
		if c.cfg.deadLetter == nil {
			c.counts.Held.Add(1)
			_ = msg.Ack()
			break
		}
		if err := c.cfg.deadLetter(withTag(ctx, route, t), msg); err != nil {
			_ = msg.Nak()
			c.counts.Errors.Add(1)
			break
		}
		c.counts.DeadLettered.Add(1)
		_ = msg.Ack()
	}
	if md, err := msg.Metadata(); err == nil {
		c.mu.Lock()
		c.lastSeq = md.Sequence.Stream
		c.mu.Unlock()
	}
	return nil
}

func (c *Consumer) process(ctx context.Context, route *queue.Route, t tag.Tag, msg jetstream.Msg, ack bool) {
	c.counts.Processed.Add(1)
	if err := c.handler(withTag(ctx, route, t), msg); err != nil {
		c.counts.Errors.Add(1)
		c.log.Warn("graylane: handler failed", "consumer", c.name, "subject", msg.Subject(), "error", err)
		if ack {
			_ = msg.Nak()
		}
		return
	}
	if ack && !c.crashed.Load() {
		_ = msg.Ack()
	}
}

// switchTables runs the takeovers a table change calls for: for each lost
// lane, the messages after its durable consumer's ack floor, up to the
// last message this consumer decided, that the lost lane was to process
// and this lane now serves. Then it deletes the lost lane's durable
// consumer, so that the lane, when it comes back, starts where its
// predecessor has got to.
func (c *Consumer) switchTables(ctx context.Context, prev, next *queue.Table) {
	for _, k := range queue.Takeovers(prev, next) {
		n, err := c.takeover(ctx, k)
		c.lanes.TookOver(k.From, n)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("graylane: takeover incomplete; the rest waits in the lane's durable consumer",
					"consumer", c.name, "from", k.From, "error", err)
			}
			continue
		}
		c.counts.Takeovers.Add(1)
		c.log.Info("graylane: took over a lost lane's messages", "consumer", c.name, "from", k.From, "messages", n)
	}
}

func (c *Consumer) takeover(ctx context.Context, k queue.Takeover) (int, error) {
	name := Name(c.lanes.Group(), k.From, c.lanes.Base())
	lost, err := c.js.Consumer(ctx, c.stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := lost.Info(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	end := c.lastSeq
	c.mu.Unlock()
	n := 0
	if from := info.AckFloor.Stream + 1; from <= end {
		oc, err := c.js.OrderedConsumer(ctx, c.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: c.cfg.filter,
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    from,
		})
		if err != nil {
			return 0, err
		}
	read:
		for {
			batch, err := oc.Fetch(c.cfg.batch, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return n, err
			}
			got := 0
			for msg := range batch.Messages() {
				got++
				md, err := msg.Metadata()
				if err != nil {
					continue
				}
				if md.Sequence.Stream > end {
					break read
				}
				if t := readTag(ctx, c.cfg.prop, msg.Headers()); k.Takes(t) {
					c.process(ctx, k.Table().Decide(t), t, msg, false)
					c.counts.TakenOver.Add(1)
					n++
				}
				if md.Sequence.Stream == end {
					break read
				}
			}
			if err := batch.Error(); err != nil {
				return n, err
			}
			if got == 0 {
				break // nothing more in the stream
			}
		}
	}
	if next := c.lanes.Table(); next.Live(k.From) {
		return n, nil // the lane is back: its consumer owns its durable again
	}
	if err := c.js.DeleteConsumer(ctx, c.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return n, err
	}
	return n, nil
}
