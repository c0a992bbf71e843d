package kafkalane

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graylane/graylane/queue"
)

// switchTables runs the takeovers a table change calls for, before any
// record is decided with the new table.
func (c *Consumer) switchTables(ctx context.Context, adm *kadm.Client, prev, next *queue.Table) error {
	ks := queue.Takeovers(prev, next)
	if len(ks) == 0 {
		return nil
	}
	c.mu.Lock()
	pos := maps.Clone(c.next)
	c.mu.Unlock()
	for _, k := range ks {
		if err := c.takeover(ctx, adm, k, pos); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("graylane: takeover incomplete; the rest waits in the lane's consumer group",
				"group", c.group, "from", k.From, "error", err)
		}
	}
	return nil
}

// takeover processes the records that lane k.From left behind on the
// partitions this consumer owns: from where k.From's group had got to up
// to pos, this consumer's own position when it switched tables, the
// records that k.Takes. Then it marks k.From's offsets as handed over, at
// pos, so that the lane, when it comes back, starts where this lane will
// have got to. Kafka accepts the mark only once the group is empty: a
// crashed consumer stays a member until its session times out, so the
// mark is retried in the background meanwhile.
func (c *Consumer) takeover(ctx context.Context, adm *kadm.Client, k queue.Takeover, pos map[int32]int64) error {
	tctx, cancel := context.WithTimeout(ctx, c.cfg.takeover)
	defer cancel()
	from := GroupName(c.lanes.Group(), k.From, c.lanes.Base())
	committed, err := adm.FetchOffsets(tctx, from)
	if err != nil {
		return fmt.Errorf("fetching offsets of %s: %w", from, err)
	}
	start, end := map[int32]int64{}, map[int32]int64{}
	mark := kadm.Offsets{}
	for p, at := range pos {
		o, ok := committed.Lookup(c.topic, p)
		if at < 0 || !ok || o.Err != nil || o.At < 0 || o.Metadata == HandoverMetadata {
			continue
		}
		if o.At < at {
			start[p], end[p] = o.At, at
		}
		mark.Add(kadm.Offset{Topic: c.topic, Partition: p, At: max(o.At, at), LeaderEpoch: -1, Metadata: HandoverMetadata})
	}
	n := 0
	if len(start) > 0 {
		n, err = c.catchUp(tctx, k, start, end)
		c.lanes.TookOver(k.From, n)
		if err != nil {
			return err
		}
	}
	if len(mark) > 0 {
		if err := commitAdmin(tctx, adm, from, mark); err != nil {
			c.retryMark(ctx, adm, k.From, from, mark)
		}
	}
	c.counts.Takeovers.Add(1)
	c.log.Info("graylane: took over a lost lane's records", "group", c.group, "from", k.From, "records", n)
	return nil
}

// retryMark commits the handover mark into group in the background until
// Kafka takes it, the lane is live again (its consumers own the group
// again), or Run ends.
func (c *Consumer) retryMark(ctx context.Context, adm *kadm.Client, lane, group string, mark kadm.Offsets) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if c.lanes.Table().Live(lane) {
				return
			}
			if err := commitAdmin(ctx, adm, group, mark); err == nil {
				return
			}
		}
	}()
}

// catchUp reads [start, end) of each partition outside any group and
// processes the records k takes.
func (c *Consumer) catchUp(ctx context.Context, k queue.Takeover, start, end map[int32]int64) (int, error) {
	parts := map[int32]kgo.Offset{}
	for p, at := range start {
		parts[p] = kgo.NewOffset().At(at)
	}
	cl, err := c.adminClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: parts}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for len(end) > 0 {
		fetches := cl.PollRecords(ctx, c.cfg.maxPoll)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			stop, ok := end[r.Partition]
			if !ok {
				return
			}
			if r.Offset >= stop { // a gap at the end of the range
				delete(end, r.Partition)
				return
			}
			if t := c.tagOf(ctx, r); k.Takes(t) {
				c.process(ctx, k.Table().Decide(t), t, r)
				c.counts.TakenOver.Add(1)
				n++
			}
			if r.Offset+1 >= stop {
				delete(end, r.Partition)
			}
		})
	}
	return n, nil
}

// commitAdmin commits offsets into a group that has no members (a lost
// lane's). Kafka refuses it once the group has members again.
func commitAdmin(ctx context.Context, adm *kadm.Client, group string, offs kadm.Offsets) error {
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing into %s: %w", group, err)
	}
	return nil
}
