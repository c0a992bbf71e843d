package kafkalane

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// assigned notes the newly assigned partitions; their start positions come
// in adjust.
func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range parts[c.topic] {
		if _, ok := c.next[p]; !ok {
			c.next[p] = -1
		}
	}
}

// revoked forgets revoked partitions. Everything processed is committed
// after each poll, before rebalances are allowed.
func (c *Consumer) revoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range parts[c.topic] {
		delete(c.next, p)
		delete(c.toStart, p)
	}
}

func (c *Consumer) lost(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	c.revoked(ctx, cl, parts)
}

// adjust chooses where the lane starts on each assigned partition, then
// registers the consumer (once): a lane's own committed position, unless
// the lane has none or another lane took its messages over from it, in
// which case its predecessor's position, when that is further on.
// Registering only after that is what makes the switch lossless: the
// predecessor has not skipped a single record of the lane before the lane
// knew where to start.
func (c *Consumer) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	cl, err := c.adminClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	a := kadm.NewClient(cl)
	own, err := a.FetchOffsets(ctx, c.group)
	if err != nil {
		return nil, fmt.Errorf("kafkalane: fetching offsets of %s: %w", c.group, err)
	}
	tb := c.lanes.Table()
	var pred kadm.OffsetResponses
	if lane, ok := tb.Predecessor(); ok {
		if pred, err = a.FetchOffsets(ctx, GroupName(c.lanes.Group(), lane, c.lanes.Base())); err != nil {
			return nil, fmt.Errorf("kafkalane: fetching offsets of the predecessor lane %s: %w", lane, err)
		}
	}
	c.mu.Lock()
	for p, off := range offsets[c.topic] {
		start := int64(-1)
		o, has := own.Lookup(c.topic, p)
		has = has && o.Err == nil && o.At >= 0
		if has {
			start = o.At
		}
		if !has || o.Metadata == HandoverMetadata {
			if po, ok := pred.Lookup(c.topic, p); ok && po.Err == nil && po.At > start {
				start = po.At
			}
		}
		if start < 0 {
			c.next[p] = -1
			continue
		}
		if eo := off.EpochOffset(); !has || eo.Offset != start {
			offsets[c.topic][p] = kgo.NewOffset().At(start).WithEpoch(-1)
		}
		c.next[p] = start
		if !has || o.Metadata == HandoverMetadata || o.At != start {
			c.toStart[p] = start
		}
	}
	registered := c.reg != nil
	c.mu.Unlock()
	if !registered {
		if err := c.register(ctx); err != nil {
			return nil, err
		}
	}
	return offsets, nil
}

func (c *Consumer) register(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	reg, err := c.lanes.Register(rctx)
	if err != nil {
		return fmt.Errorf("kafkalane: registering the consumer: %w", err)
	}
	c.mu.Lock()
	c.reg = reg
	c.mu.Unlock()
	return nil
}

// adminClient returns a client of its own for requests about other groups,
// so that they never wait behind the group's own management.
func (c *Consumer) adminClient(extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.cfg.client...), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkalane: %w", err)
	}
	return cl, nil
}

// commitStarts commits the start positions adjust chose, so that the
// lane's group records from the start where the lane has got to (and
// drops any handover mark).
func (c *Consumer) commitStarts(ctx context.Context, cl *kgo.Client) error {
	c.mu.Lock()
	if len(c.toStart) == 0 {
		c.mu.Unlock()
		return nil
	}
	offs := make(map[int32]kgo.EpochOffset, len(c.toStart))
	for p, at := range c.toStart {
		offs[p] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	clear(c.toStart)
	c.mu.Unlock()
	return commitSync(ctx, cl, c.topic, offs)
}
