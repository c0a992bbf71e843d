// Package queuetest is the lane-churn accounting that graylane's queue
// adapters (kafkalane, natslane) check themselves with, offered to the
// author of an adapter for another broker to check theirs the same way.
//
// The adapter's test starts a consumer of the base lane, whose handler
// records each message it processes in a Journal (Journal.Add, with the
// consumer's lane, "prod" for the base lane), and runs a Churn: Churn.Run
// publishes messages, half of them tagged gray and some v3, while the gray
// lane's consumers come up and go down, by graceful stops and by crashes,
// then tallies what the Journal holds (Tally) and holds the adapter to the
// documented guarantees (Report.Check):
//
//	func TestLaneChurn(t *testing.T) {
//		reg := registry.NewMemory()
//		defer reg.Close()
//		j := queuetest.NewJournal()
//		base := start(t, reg, "", j) // the adapter's own harness
//		queuetest.AwaitLive(t, base.lanes, "prod", true)
//		(&queuetest.Churn{
//			Name: "mybroker lane churn", Noun: "messages",
//			Registry: reg, Base: base.lanes, Journal: j,
//			Start:    func() queuetest.Member { return start(t, reg, "gray", j) },
//			Publish:  func(ctx context.Context, msgs ...[2]string) { publish(ctx, t, msgs...) },
//			StopBase: func() { base.Stop(t) },
//			Stats:    base.consumer.Stats,
//		}).Run(t)
//	}
package queuetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Timeout bounds every wait of the helpers, and of Churn.Run but its
// publishing (twice Timeout).
const Timeout = 30 * time.Second

// The lanes of a Churn: the Journal's name of the base lane, the lane that
// comes and goes, and a tag that is no lane with consumers.
const (
	BaseLane  = "prod"
	ChurnLane = "gray"
	OtherTag  = "v3"
)

// Processing is one call of a consumer's handler.
type Processing struct {
	ID   string    // the message's id
	Lane string    // the consumer's lane (BaseLane for the base lane)
	Tag  string    // the tag in the handler's context
	At   time.Time // when the handler ran
}

// Journal records every processing, and wakes whoever waits for a count.
// Its methods are safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	all     []Processing
	changed chan struct{}
}

// NewJournal returns an empty Journal.
func NewJournal() *Journal { return &Journal{changed: make(chan struct{})} }

// Add records that a consumer of lane processed message id, with the tag
// that ctx, the handler's context, carries.
func (j *Journal) Add(ctx context.Context, id, lane string) {
	t, _ := tag.FromContext(ctx)
	j.mu.Lock()
	j.all = append(j.all, Processing{ID: id, Lane: lane, Tag: t.String(), At: time.Now()})
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// AwaitDistinct waits until n distinct ids are processed, failing the test
// after timeout.
func (j *Journal) AwaitDistinct(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		j.mu.Lock()
		seen := map[string]bool{}
		for _, p := range j.all {
			seen[p.ID] = true
		}
		ch := j.changed
		j.mu.Unlock()
		if len(seen) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d of %d messages processed", len(seen), n)
		}
	}
}

// Snapshot returns the processings so far, in the order they were added.
func (j *Journal) Snapshot() []Processing {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Processing(nil), j.all...)
}

// Interval is a span of time; To is zero while it is open.
type Interval struct{ From, To time.Time }

// Contains reports whether t is in the interval, ends included.
func (iv Interval) Contains(t time.Time) bool {
	return !t.Before(iv.From) && (iv.To.IsZero() || !t.After(iv.To))
}

// AwaitLive waits until l's table says whether lane is live, and returns
// when it did, failing the test after Timeout.
func AwaitLive(t testing.TB, l *queue.Lanes, lane string, live bool) time.Time {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		ch := l.Changed()
		if l.Table().Live(lane) == live {
			return time.Now()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("lane %q never became live=%v", lane, live)
		}
	}
}

// AwaitInstances waits until reg has n consumers of lane, as l sees them,
// failing the test after Timeout.
func AwaitInstances(t testing.TB, reg *registry.Memory, l *queue.Lanes, lane string, n int) {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		ch := l.Changed()
		got := 0
		for _, in := range reg.Instances(l.Group()) {
			if in.Tag.String() == lane {
				got++
			}
		}
		if got == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d consumers of lane %q, want %d", got, lane, n)
		}
	}
}

// Report is the tally of a churn: what the consumers processed against
// what was sent.
type Report struct {
	Total          int // messages sent
	Lost           int // messages sent and never processed
	Duplicates     int // processings of a message after its first
	DupOutside     int // duplicates outside every switch window
	UntaggedInLane int // untagged messages processed by a consumer of another lane than the base
	LaneByBase     int // ChurnLane messages processed by the base lane while ChurnLane had been live for longer than the window
	WrongTag       int // processings whose handler context carried another tag than the message's
}

// Tally accounts for the processings ps of the messages sent (id to tag,
// "" untagged): live holds the intervals in which ChurnLane was live,
// switches the windows in which a lane change may still be converging,
// and window the convergence bound.
func Tally(ps []Processing, sent map[string]string, live, switches []Interval, window time.Duration) Report {
	r := Report{Total: len(sent)}
	count := map[string]int{}
	for _, p := range ps {
		count[p.ID]++
		if count[p.ID] > 1 {
			r.Duplicates++
			inside := false
			for _, w := range switches {
				inside = inside || w.Contains(p.At)
			}
			if !inside {
				r.DupOutside++
			}
		}
		tg := sent[p.ID]
		if p.Tag != tg {
			r.WrongTag++
		}
		if tg == "" && p.Lane != BaseLane {
			r.UntaggedInLane++
		}
		if tg == ChurnLane && p.Lane == BaseLane {
			for _, iv := range live {
				if (Interval{From: iv.From.Add(window), To: iv.To}).Contains(p.At) && iv.From.Add(window).Before(iv.To) {
					r.LaneByBase++
				}
			}
		}
	}
	for id := range sent {
		if count[id] == 0 {
			r.Lost++
		}
	}
	return r
}

// Check holds the tally to the adapters' guarantees: nothing lost, at most
// 1% duplicates and all of them inside a switch window, no untagged
// message processed by a lane, no ChurnLane message processed by the base
// while ChurnLane was live, and the message's tag in the handler's
// context. noun names the messages in the failures ("records").
func (r Report) Check(t testing.TB, noun string) {
	t.Helper()
	assert.Zero(t, r.Lost, "lost")
	assert.LessOrEqual(t, r.Duplicates, r.Total/100, "duplicates")
	assert.Zero(t, r.DupOutside, "duplicates outside a switch window")
	assert.Zero(t, r.UntaggedInLane, "untagged "+noun+" processed by a lane consumer")
	assert.Zero(t, r.LaneByBase, ChurnLane+" "+noun+" processed by the base while "+ChurnLane+" was live")
	assert.Zero(t, r.WrongTag, "handler context tag differs from the record's")
}

// Member is one consumer of ChurnLane, as the adapter's test runs it.
type Member interface {
	// Stop stops the consumer gracefully, waits for it and closes its
	// Lanes, failing the test on an error.
	Stop(t testing.TB)
	// ArmCrash makes the consumer crash after the next message it
	// processes. It may be called from any goroutine.
	ArmCrash()
	// Crash makes the consumer crash in the middle of its next message,
	// or at once when none comes soon, waits for it and closes its Lanes.
	// It returns the consumer's registration, left in the registry as a
	// crashed process leaves it (nil if it never registered), and the
	// error of closing the Lanes. It may be called from any goroutine.
	Crash() (registry.Registration, error)
}

// Churn is the lane-churn check of an adapter. Run publishes 10,000
// messages, half of them tagged ChurnLane and some OtherTag, in batches of
// 50 spread over phases of 1.2s, while ChurnLane's consumers come up (one,
// or two on odd cycles) and go down five times, by graceful stops on even
// cycles and by crashes on odd ones, the crashed consumers' registrations
// expiring later, as an etcd lease would. A switch window runs from a
// change until a second (the documented convergence bound) after the base
// lane's table shows it.
type Churn struct {
	Name     string           // the report's name: "kafka lane churn (kfake)"
	Noun     string           // what the messages are called: "records", "messages"
	Registry *registry.Memory // the registry of every consumer
	Base     *queue.Lanes     // the Lanes of the base lane's consumer, running and live
	Journal  *Journal         // where every consumer's handler records its processings

	// Start starts a consumer of ChurnLane, whose handler records in
	// Journal.
	Start func() Member
	// Publish sends msgs, each an id and a tag ("" untagged), and returns
	// once the broker has them all.
	Publish func(ctx context.Context, msgs ...[2]string)
	// StopBase stops the base lane's consumer gracefully; it returns once
	// the consumer's takeovers in flight have ended.
	StopBase func()
	// Stats returns the base lane's consumer's counts, for the report.
	Stats func() queue.Stats
}

// Run runs the churn, prints its report and checks it (Report.Check).
func (c *Churn) Run(t testing.TB) Report {
	t.Helper()
	const (
		total  = 10000
		cycles = 5
		window = time.Second // the documented convergence bound
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*Timeout)
	defer cancel()

	var (
		live     []Interval // ChurnLane registered in the registry
		switches []Interval // switch windows
		sent     = map[string]string{}
	)
	n := 0
	// publish sends k messages in batches of 50, spread over a phase of
	// the test, so that every lane change meets messages in flight.
	const phase = 1200 * time.Millisecond
	publish := func(k int) {
		batch := make([][2]string, 0, 50)
		tick := time.NewTicker(phase * time.Duration(cap(batch)) / time.Duration(max(k, 1)))
		defer tick.Stop()
		for range k {
			id := strconv.Itoa(n)
			tg := ""
			switch {
			case n%2 == 0:
				tg = ChurnLane
			case n%10 == 1:
				tg = OtherTag
			}
			sent[id] = tg
			batch = append(batch, [2]string{id, tg})
			n++
			if len(batch) == cap(batch) {
				c.Publish(ctx, batch...)
				batch = batch[:0]
				<-tick.C
			}
		}
		if len(batch) > 0 {
			c.Publish(ctx, batch...)
		}
	}
	step := total / (2*cycles + 1)
	publish(step)
	for i := range cycles {
		// Up: one or two consumers.
		w := Interval{From: time.Now()}
		members := []Member{c.Start()}
		if i%2 == 1 {
			members = append(members, c.Start())
		}
		up := AwaitLive(t, c.Base, ChurnLane, true)
		AwaitInstances(t, c.Registry, c.Base, ChurnLane, len(members))
		live = append(live, Interval{From: up})
		w.To = up.Add(window)
		switches = append(switches, w)
		publish(step)

		// Down: graceful stops on even cycles, crashes on odd ones.
		w = Interval{From: time.Now()}
		if i%2 == 0 {
			for _, m := range members {
				m.Stop(t)
			}
		} else {
			var (
				regs    []registry.Registration
				errs    []error
				crashed = make(chan struct{})
			)
			go func() { // the deployment dies: all its consumers at once
				defer close(crashed)
				for _, m := range members {
					m.ArmCrash()
				}
				for _, m := range members {
					r, err := m.Crash()
					regs, errs = append(regs, r), append(errs, err)
				}
			}()
			publish(step / 4) // messages keep coming while the consumers crash and their leases run
			<-crashed
			for _, err := range errs {
				require.NoError(t, err)
			}
			for _, r := range regs {
				if r != nil { // nil: it crashed before registering
					require.NoError(t, r.Deregister(ctx)) // the lease expires
				}
			}
		}
		gone := AwaitLive(t, c.Base, ChurnLane, false)
		live[len(live)-1].To = gone
		w.To = gone.Add(window)
		switches = append(switches, w)
		publish(step - step/4*(i%2))
	}
	publish(total - n)
	require.Equal(t, total, n)
	c.Journal.AwaitDistinct(t, total, Timeout)
	// Wait for takeovers in flight to end.
	c.StopBase()
	switches[len(switches)-1].To = time.Now().Add(window)

	r := Tally(c.Journal.Snapshot(), sent, live, switches, window)
	st := c.Stats()
	fmt.Printf("%s: %d %s, %d %s cycles: lost %d, duplicates %d (%.2f%%, %d outside a switch window), "+
		"untagged processed by a lane %d, %s processed by the base with %s live > 1s %d, wrong tag in context %d; "+
		"base: %d processed, %d skipped, %d taken over in %d takeovers\n",
		c.Name, total, c.Noun, cycles, ChurnLane, r.Lost, r.Duplicates, 100*float64(r.Duplicates)/total, r.DupOutside,
		r.UntaggedInLane, ChurnLane, ChurnLane, r.LaneByBase, r.WrongTag,
		st.Processed, st.Skipped, st.TakenOver, st.Takeovers)
	r.Check(t, c.Noun)
	return r
}
