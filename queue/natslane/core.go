package natslane

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/queue"
)

// MsgHandler processes one core NATS message. Its context carries the
// message's tag.
type MsgHandler func(ctx context.Context, msg *nats.Msg)

// Subscribe subscribes to subject on core NATS for the lane of l, in the
// queue group Name(group, lane, base): every lane receives every message
// once, and each consumer processes those its lane serves and drops the
// others. Core NATS keeps nothing, so there is nothing to take over: a
// message is processed at most once, and a lane change is exact only for
// the messages that arrive after every subscriber has the new table (the
// switch window); use JetStream (Consumer) where a message must not be
// lost. The consumer is registered in l's registry once subscribed; Stop
// the Subscription to drain it and deregister. A nil p means the default
// Propagator.
func Subscribe(ctx context.Context, nc *nats.Conn, subject string, l *queue.Lanes, p *propagation.Propagator, h MsgHandler) (*Subscription, error) {
	if nc == nil || l == nil || h == nil {
		return nil, errors.New("natslane: Subscribe needs a connection, Lanes and a handler")
	}
	if p == nil {
		p = defaultPropagator()
	}
	s := &Subscription{}
	sub, err := nc.QueueSubscribe(subject, Name(l.Group(), l.Lane(), l.Base()), func(msg *nats.Msg) {
		t := readTag(ctx, p, msg.Header)
		route := l.Table().Decide(t)
		if route.Action == queue.Process {
			h(withTag(ctx, route, t), msg)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("natslane: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natslane: %w", err)
	}
	reg, err := l.Register(ctx)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natslane: registering: %w", err)
	}
	s.sub, s.reg = sub, reg
	return s, nil
}

// Subscription is a lane-aware core NATS subscription.
type Subscription struct {
	sub *nats.Subscription
	reg interface {
		Deregister(context.Context) error
	}
}

// Stop deregisters the consumer, then drains the subscription: messages
// already received are processed while the other lanes learn that this
// consumer is gone.
func (s *Subscription) Stop(ctx context.Context) error {
	return errors.Join(s.reg.Deregister(ctx), s.sub.Drain())
}
