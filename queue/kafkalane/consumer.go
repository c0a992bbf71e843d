package kafkalane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// HandoverMetadata is the commit metadata with which a lane that took over
// another lane's messages records, in that lane's consumer group, where it
// took them up to. A consumer of the lane that finds it starts no earlier
// than its predecessor's position.
const HandoverMetadata = "graylane.handover"

// GroupName returns the Kafka consumer group of the consumers of lane in
// group: the group's name for the base lane (lane "" or base), and
// "<group>.<lane>" for any other lane, such as "notifications.gray".
func GroupName(group, lane, base string) string {
	if lane == "" || lane == base {
		return group
	}
	return group + "." + lane
}

// Handler processes one record. Its context carries the record's tag (see
// tag.FromContext), so the calls it makes, and the records it produces
// through a client with ProduceHook, stay in the record's lane. An error is
// logged and counted; the record is committed all the same (retry inside
// the handler, or send the record to a topic of your own, to do otherwise).
type Handler func(ctx context.Context, r *kgo.Record) error

// DeadLetterFunc receives the records of a strict lane that has no live
// consumer, on the base lane's consumers, when the Lanes was built with
// queue.WithDeadLetter. The record is committed when it returns nil; an
// error stops the consumer (Run returns it), so that no record is lost.
type DeadLetterFunc func(ctx context.Context, r *kgo.Record) error

// Option configures a Consumer.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	client     []kgo.Opt
	prop       *propagation.Propagator
	deadLetter DeadLetterFunc
	maxPoll    int
	takeover   time.Duration
}

// WithClientOptions sets the options of the Kafka clients the Consumer
// creates: seed brokers, TLS, SASL, fetch sizes. Leave out group and topic
// options; the Consumer sets them.
func WithClientOptions(opts ...kgo.Opt) Option {
	opts = append([]kgo.Opt(nil), opts...)
	return optionFunc(func(c *config) { c.client = append(c.client, opts...) })
}

// WithPropagator sets the Propagator that reads the records' tags (default
// propagation.New()). The service's own tag is never read as a record's
// tag: an untagged record stays untagged.
func WithPropagator(p *propagation.Propagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithDeadLetter sets where the base lane's consumers send the records of
// a strict lane that has no live consumer (see queue.WithDeadLetter).
func WithDeadLetter(f DeadLetterFunc) Option {
	return optionFunc(func(c *config) { c.deadLetter = f })
}

// WithMaxPollRecords bounds the records processed between two commits
// (default 500).
func WithMaxPollRecords(n int) Option {
	return optionFunc(func(c *config) { c.maxPoll = n })
}

// WithTakeoverTimeout bounds one takeover (default 1 minute). A takeover
// that does not finish in time leaves the rest of the lost lane's messages
// in its consumer group, for the lane's consumers when it comes back or
// for the next takeover.
func WithTakeoverTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.takeover = d })
}

// Stats counts what a Consumer did (see queue.Stats).
type Stats = queue.Stats

// Consumer consumes one topic in the lane of its Lanes, processing the
// records that the lane serves and committing the others, and takes over
// the records a lost lane left behind. See the package documentation.
type Consumer struct {
	lanes   *queue.Lanes
	topic   string
	handler Handler
	cfg     config
	group   string
	log     *slog.Logger

	counts queue.Counters

	mu      sync.Mutex
	next    map[int32]int64 // next offset to decide, per assigned partition; -1 unknown
	toStart map[int32]int64 // start positions to commit at the next poll
	reg     registry.Registration
	crashed atomic.Bool // testing: stop as a crash would
	bg      sync.WaitGroup
	running atomic.Bool

	hdr consumerHeaders // used by the poll loop only
}

// NewConsumer returns a Consumer of topic for the lane of l, which calls h
// for the records its lane serves. It does not connect: Run does.
func NewConsumer(l *queue.Lanes, topic string, h Handler, opts ...Option) (*Consumer, error) {
	c := &Consumer{lanes: l, topic: topic, handler: h, cfg: config{maxPoll: 500, takeover: time.Minute}}
	for _, o := range opts {
		if o != nil {
			o.apply(&c.cfg)
		}
	}
	switch {
	case l == nil:
		return nil, errors.New("kafkalane: nil Lanes")
	case topic == "":
		return nil, errors.New("kafkalane: empty topic")
	case h == nil:
		return nil, errors.New("kafkalane: nil Handler")
	case c.cfg.maxPoll < 1:
		return nil, fmt.Errorf("kafkalane: max poll records %d: want at least 1", c.cfg.maxPoll)
	}
	if c.cfg.prop == nil {
		p, err := propagation.New()
		if err != nil {
			return nil, fmt.Errorf("kafkalane: %w", err)
		}
		c.cfg.prop = p
	}
	c.group = GroupName(l.Group(), l.Lane(), l.Base())
	c.log = l.Logger()
	return c, nil
}

// Group returns the Kafka consumer group the Consumer consumes in.
func (c *Consumer) Group() string { return c.group }

// Stats returns the Consumer's counts so far.
func (c *Consumer) Stats() Stats { return c.counts.Stats() }

// Run consumes until ctx is done, then stops gracefully: it commits what
// it processed, leaves the consumer group and deregisters the consumer, in
// that order, so that if it was its lane's last consumer the fallback lane
// takes over exactly where it stopped. It registers the consumer once it
// knows where to start. Run returns nil after a graceful stop, or the
// error that stopped it. A Consumer runs once.
func (c *Consumer) Run(ctx context.Context) (err error) {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafkalane: Consumer already ran")
	}
	c.next, c.toStart = map[int32]int64{}, map[int32]int64{}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.cfg.client...),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(c.topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.AdjustFetchOffsetsFn(c.adjust),
	)...)
	if err != nil {
		return fmt.Errorf("kafkalane: %w", err)
	}
	adm := kadm.NewClient(cl)
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopBg()
		c.bg.Wait()
		if c.crashed.Load() {
			cl.AllowRebalance()
			cl.Close()
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cl.CloseAllowingRebalance()
		c.mu.Lock()
		reg := c.reg
		c.mu.Unlock()
		if reg != nil {
			if derr := reg.Deregister(cctx); derr != nil && err == nil {
				err = fmt.Errorf("kafkalane: deregistering: %w", derr)
			}
		}
	}()
	var last *queue.Table
	done := map[int32]kgo.EpochOffset{}
	for {
		changed := c.lanes.Changed()
		tb := c.lanes.Table()
		if last != nil && tb != last {
			if err := c.switchTables(bgCtx, adm, last, tb); err != nil {
				return err
			}
		}
		last = tb
		if err := c.commitStarts(ctx, cl); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("graylane: committing start offsets", "group", c.group, "error", err)
		}
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
				cancel()
			case <-pctx.Done():
			}
		}()
		fetches := cl.PollRecords(pctx, c.cfg.maxPoll)
		cancel()
		if ctx.Err() != nil || c.crashed.Load() {
			return c.finish(ctx, cl)
		}
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("graylane: fetch error", "group", c.group, "topic", t, "partition", p, "error", err)
			}
		})
		clear(done)
		var stopErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if stopErr != nil {
				return
			}
			if now := c.lanes.Table(); now != last {
				if stopErr = c.switchTables(bgCtx, adm, last, now); stopErr != nil {
					return
				}
				last = now
			}
			if stopErr = c.decide(ctx, last, r); stopErr != nil {
				return
			}
			done[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			c.mu.Lock()
			c.next[r.Partition] = r.Offset + 1
			c.mu.Unlock()
		})
		if len(done) > 0 && !c.crashed.Load() {
			if err := commitSync(ctx, cl, c.topic, done); err != nil && ctx.Err() == nil {
				c.log.Warn("graylane: commit failed", "group", c.group, "error", err)
			}
		}
		cl.AllowRebalance()
		if stopErr != nil {
			return stopErr
		}
	}
}

// finish ends Run at a graceful stop: everything processed is committed
// after each poll already.
func (c *Consumer) finish(context.Context, *kgo.Client) error { return nil }

func commitSync(ctx context.Context, cl *kgo.Client, topic string, offs map[int32]kgo.EpochOffset) error {
	var err error
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: offs}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, e error) {
		if e != nil {
			err = e
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil && err == nil {
					err = perr
				}
			}
		}
	})
	return err
}

// decide processes, skips or dead-letters one record.
func (c *Consumer) decide(ctx context.Context, tb *queue.Table, r *kgo.Record) error {
	t := c.tagOf(ctx, r)
	route := tb.Decide(t)
	switch route.Action {
	case queue.Process:
		c.process(ctx, route, t, r)
	case queue.Skip:
		c.counts.Skipped.Add(1)
	case queue.Hold:
		c.counts.Held.Add(1)
	case queue.DeadLetter:
		if c.cfg.deadLetter == nil {
			c.counts.Held.Add(1)
			return nil
		}
		if err := c.cfg.deadLetter(withTag(ctx, route, t), r); err != nil {
			return fmt.Errorf("kafkalane: dead letter of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		c.counts.DeadLettered.Add(1)
	}
	return nil
}

// tagOf reads the record's tag without allocating. The tag shares the
// record's bytes: withTag copies it before it outlives the decision.
func (c *Consumer) tagOf(ctx context.Context, r *kgo.Record) tag.Tag {
	c.hdr.r = r
	t, src := c.cfg.prop.ReadMessage(ctx, &c.hdr)
	c.hdr.r = nil
	if src == propagation.SourceOwn {
		return tag.Tag{}
	}
	return t
}

// withTag returns ctx carrying the record's tag, the table's copy of it
// when the tag names a known lane, a copy of its own otherwise.
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

func (c *Consumer) process(ctx context.Context, route *queue.Route, t tag.Tag, r *kgo.Record) {
	c.counts.Processed.Add(1)
	if err := c.handler(withTag(ctx, route, t), r); err != nil {
		c.counts.Errors.Add(1)
		c.log.Warn("graylane: handler failed", "group", c.group, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err)
	}
}
