package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/queue/natslane"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Notification is one page view event as a notifications consumer
// processed it.
type Notification struct {
	Event     PageViewEvent `json:"event"`
	Tag       string        `json:"tag"`      // the event's tag; "" when untagged
	Lane      string        `json:"lane"`     // the lane of the consumer that processed it
	Instance  string        `json:"instance"` // the consumer instance, e.g. notifications-v2-0
	Reason    string        `json:"reason"`   // matched, untagged, or why the event's lane did not process it
	Processed time.Time     `json:"processed"`
}

// NotificationsStatus is what GET /api/notifications answers.
type NotificationsStatus struct {
	Events    EventStats     `json:"events"`    // the publishing side, in this process
	Processed map[string]int `json:"processed"` // events processed, by consumer instance
	Last      []Notification `json:"last"`      // the last ones, newest first
}

// keptNotifications is how many of the last notifications the admin API
// can show.
const keptNotifications = 200

// notifications records what the consumers of this process processed.
type notifications struct {
	mu     sync.Mutex
	last   []Notification // a ring of keptNotifications
	next   int
	byInst map[string]int
	hook   func(Notification)
}

func (n *notifications) add(x Notification) {
	n.mu.Lock()
	if n.byInst == nil {
		n.byInst = map[string]int{}
	}
	n.byInst[x.Instance]++
	if len(n.last) < keptNotifications {
		n.last = append(n.last, x)
	} else {
		n.last[n.next] = x
	}
	n.next = (n.next + 1) % keptNotifications
	n.mu.Unlock()
	if n.hook != nil {
		n.hook(x)
	}
}

// status returns the counts and the last k notifications, newest first.
func (n *notifications) status(k int) (map[string]int, []Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	counts := make(map[string]int, len(n.byInst))
	for k, v := range n.byInst {
		counts[k] = v
	}
	k = min(k, len(n.last))
	out := make([]Notification, 0, k)
	for i := range k {
		out = append(out, n.last[(n.next-1-i+2*keptNotifications)%keptNotifications])
	}
	return counts, out
}

// Notifications returns the publishing counts of this process, how many
// events each consumer instance of this process processed, and the last n
// events processed (at most 200), newest first.
func (s *System) Notifications(n int) NotificationsStatus {
	st := NotificationsStatus{}
	if s.events != nil {
		st.Events = s.events.stats()
	}
	st.Processed, st.Last = s.notes.status(n)
	return st
}

// registered tells when the consumer registered in the registry.
type registered struct {
	registry.Registry
	once sync.Once
	ch   chan struct{}
	reg  registry.Registration // once ch is closed
}

func (r *registered) Register(ctx context.Context, in registry.Instance) (registry.Registration, error) {
	reg, err := r.Registry.Register(ctx, in)
	if err == nil || errors.Is(err, registry.ErrReadOnly) { // read-only: the platform lists the consumer
		r.once.Do(func() { r.reg = reg; close(r.ch) })
	}
	return reg, err
}

// registration returns the registration, nil before there is one.
func (r *registered) registration() registry.Registration {
	select {
	case <-r.ch:
		return r.reg
	default:
		return nil
	}
}

// startConsumer runs one instance of a notifications deployment: a
// JetStream consumer of the page view events in the deployment's lane,
// registered as an instance of NotificationsGroup. It returns once the
// consumer is registered. Stopping it is graceful: the consumer
// acknowledges what it processed, then deregisters, and if it was its
// lane's last, the fallback lane takes over what it left.
func (s *System) startConsumer(ctx context.Context, d *deployment, in *instance) error {
	if s.events == nil {
		return errors.New("no NATS server: give one with -nats, or run the gateway in this process")
	}
	sig := &registered{Registry: s.reg, ch: make(chan struct{})}
	lanes, err := queue.New(ctx, sig, NotificationsGroup,
		queue.WithLane(d.Lane), queue.WithDynamicPolicy(s.policy), queue.WithLogger(s.log), queue.WithMeterProvider(s.tel.MeterProvider()), queue.WithInstance("", in.name))
	if err != nil {
		return err
	}
	lane := d.LaneName()
	h := func(ctx context.Context, msg jetstream.Msg) error {
		var ev PageViewEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			s.log.Warn("notifications: not a page view event", "instance", in.name, "error", err)
			return nil // a bad event is dropped, never redelivered forever
		}
		t, _ := tag.FromContext(ctx)
		reason := fallback.Matched.String()
		switch {
		case t.IsZero():
			reason = fallback.Untagged.String()
		case t.String() != lane:
			reason = fallback.NoInstances.String() // the event's lane has no live consumer
		}
		s.notes.add(Notification{Event: ev, Tag: t.String(), Lane: lane, Instance: in.name, Reason: reason, Processed: time.Now()})
		s.log.DebugContext(ctx, "notification", "instance", in.name, "event", ev.ID)
		return nil
	}
	c, err := natslane.NewConsumer(s.events.js, EventStream, lanes, h, natslane.WithFilterSubjects(PageViewSubject))
	if err != nil {
		lanes.Close()
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	in.consumer = sig
	in.stop = func(ctx context.Context) error {
		cancel()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		return errors.Join(err, lanes.Close())
	}
	select {
	case <-sig.ch:
		return nil
	case err := <-done:
		lanes.Close()
		cancel()
		return fmt.Errorf("consumer: %w", err)
	case <-ctx.Done():
		in.stop(context.Background())
		return ctx.Err()
	}
}

// notificationsRoutes adds GET /api/notifications?n=20 to the admin API.
func (s *System) notificationsRoutes(r chi.Router) {
	r.Get("/api/notifications", func(w http.ResponseWriter, r *http.Request) {
		n := 20
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "n: want a count"})
				return
			}
		}
		writeJSON(w, http.StatusOK, s.Notifications(n))
	})
}
