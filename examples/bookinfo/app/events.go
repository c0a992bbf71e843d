package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/queue/natslane"
)

// The asynchronous hop: every product page view is published as an event
// on NATS JetStream, in the lane of the request, and consumed by the
// notifications deployments (notifications.go).
const (
	// EventStream is the JetStream stream of the demo's events.
	EventStream = "BOOKINFO"
	// PageViewSubject is the subject of the page view events.
	PageViewSubject = "bookinfo.pageviews"
	// NotificationsGroup is the consumer group of the notifications
	// service: the service name its consumers register under, no RPC
	// service's name.
	NotificationsGroup = "notifications-events"
)

// PageViewEvent is the JSON of one page view event.
type PageViewEvent struct {
	ID          string    `json:"id"`          // unique: the productpage instance and a count
	ProductID   int       `json:"product_id"`  // always 0
	User        string    `json:"user"`        // "" when nobody is logged in
	Time        time.Time `json:"time"`        // when the page was served
	Productpage string    `json:"productpage"` // the instance that served it
}

// EventStats counts the page view events of this process's productpage
// instances.
type EventStats struct {
	Published uint64 `json:"published"` // handed to the client library
	Acked     uint64 `json:"acked"`     // stored by JetStream
	Failed    uint64 `json:"failed"`    // refused, stalled or timed out: the event is lost
}

// events is the process's connection to NATS, and the embedded server
// when it runs one.
type events struct {
	srv  *server.Server
	dir  string // the embedded server's store
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	seq  atomic.Uint64
	stat struct{ published, acked, failed atomic.Uint64 }
}

// publishWait bounds how long a page view may wait for room among the
// events not yet acknowledged: past it, the event is dropped and counted.
const publishWait = 20 * time.Millisecond

// startEvents connects to the NATS server at url or, when url is "",
// starts one in this process, with JetStream storing in a temporary
// directory, listening on addr (default 127.0.0.1 and a random port). It
// creates the event stream when it is missing.
func startEvents(ctx context.Context, url, addr string) (*events, error) {
	e := &events{url: url}
	if url == "" {
		if err := e.embed(addr); err != nil {
			return nil, err
		}
	}
	nc, err := nats.Connect(e.url, nats.Name("bookinfo"), nats.MaxReconnects(-1))
	if err != nil {
		e.close()
		return nil, fmt.Errorf("nats %s: %w", e.url, err)
	}
	e.nc = nc
	e.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncTimeout(5*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { e.stat.acked.Add(1) }),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { e.stat.failed.Add(1) }),
	)
	if err != nil {
		e.close()
		return nil, err
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: EventStream, Subjects: []string{"bookinfo.>"}, MaxAge: 24 * time.Hour,
	}); err != nil {
		e.close()
		return nil, fmt.Errorf("nats: the %s stream: %w", EventStream, err)
	}
	return e, nil
}

func (e *events) embed(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("nats address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("nats address %q: bad port", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	dir, err := os.MkdirTemp("", "bookinfo-nats-")
	if err != nil {
		return err
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "bookinfo", Host: host, Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("embedded nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		os.RemoveAll(dir)
		return errors.New("embedded nats did not become ready in 10s")
	}
	e.srv, e.dir, e.url = s, dir, s.ClientURL()
	return nil
}

// URL returns the URL of the NATS server.
func (e *events) URL() string { return e.url }

// pageView publishes a page view event carrying the tag of ctx. It never
// fails the page and waits at most publishWait: a failure is counted.
func (e *events) pageView(ctx context.Context, v productpage.PageView) {
	ev := PageViewEvent{
		ID:        v.Instance + "-" + strconv.FormatUint(e.seq.Add(1), 10),
		ProductID: v.ProductID, User: v.User, Time: time.Now().UTC(), Productpage: v.Instance,
	}
	data, _ := json.Marshal(ev) // a struct of plain fields
	msg := natslane.NewMsg(ctx, nil, PageViewSubject, data)
	// Counted before it goes: a consumer may process it before
	// PublishMsgAsync returns.
	e.stat.published.Add(1)
	if _, err := e.js.PublishMsgAsync(msg, jetstream.WithStallWait(publishWait)); err != nil {
		e.stat.published.Add(^uint64(0))
		e.stat.failed.Add(1)
	}
}

func (e *events) stats() EventStats {
	return EventStats{Published: e.stat.published.Load(), Acked: e.stat.acked.Load(), Failed: e.stat.failed.Load()}
}

// close waits a little for the events not yet acknowledged, then closes
// the connection and stops the embedded server.
func (e *events) close() {
	if e.js != nil {
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(2 * time.Second):
		}
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		os.RemoveAll(e.dir)
	}
}
