package kafkalane_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
)

// interval is a span of time; end is zero while it is open.
type interval struct{ from, to time.Time }

func (iv interval) contains(t time.Time) bool {
	return !t.Before(iv.from) && (iv.to.IsZero() || !t.After(iv.to))
}

// TestLaneChurn publishes 10,000 records, half of them tagged gray and
// some v3, while the gray lane's consumers come up and go down five times,
// by graceful stops and by crashes (the registration then expires later,
// as an etcd lease would). It checks that no record is lost, that
// duplicates are few and all inside a switch window, that no untagged
// record is processed by the gray lane, and that the base lane processes no
// gray record while a gray consumer had been live for more than a second.
func TestLaneChurn(t *testing.T) {
	const (
		total  = 10000
		cycles = 5
		window = time.Second // the documented convergence bound
	)
	b := newBroker(t)
	reg := registry.NewMemory()
	defer reg.Close()
	j := newJournal()
	base := b.start(t, reg, "", j.handler("prod"), nil)
	awaitLive(t, base.l, "prod", true)
	prod := b.producer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	var (
		grayLive []interval // registered in the registry
		windows  []interval // switch windows
		tags     = map[string]string{}
	)
	sent := 0
	// publish sends n records in batches of 50, spread over a phase of
	// the test, so that every lane change meets records in flight.
	const phase = 1200 * time.Millisecond
	publish := func(n int) {
		batch := make([][2]string, 0, 50)
		tick := time.NewTicker(phase * time.Duration(cap(batch)) / time.Duration(max(n, 1)))
		defer tick.Stop()
		for range n {
			id := strconv.Itoa(sent)
			tg := ""
			switch {
			case sent%2 == 0:
				tg = "gray"
			case sent%10 == 1:
				tg = "v3"
			}
			tags[id] = tg
			batch = append(batch, [2]string{id, tg})
			sent++
			if len(batch) == cap(batch) {
				produce(ctx, t, prod, batch...)
				batch = batch[:0]
				<-tick.C
			}
		}
		if len(batch) > 0 {
			produce(ctx, t, prod, batch...)
		}
	}
	step := total / (2*cycles + 1)
	publish(step)
	for i := range cycles {
		// Up: one or two gray consumers.
		w := interval{from: time.Now()}
		grays := []*running{b.start(t, reg, "gray", j.handler("gray"), nil)}
		if i%2 == 1 {
			grays = append(grays, b.start(t, reg, "gray", j.handler("gray"), nil))
		}
		live := awaitLive(t, base.l, "gray", true)
		awaitInstances(t, reg, base.l, "gray", len(grays))
		grayLive = append(grayLive, interval{from: live})
		w.to = live.Add(window)
		windows = append(windows, w)
		publish(step)

		// Down: graceful stops on even cycles, crashes on odd ones.
		w = interval{from: time.Now()}
		if i%2 == 0 {
			for _, g := range grays {
				g.stop(t)
			}
		} else {
			var (
				regs    []registry.Registration
				errs    []error
				crashed = make(chan struct{})
			)
			go func() { // the deployment dies: all its consumers at once
				defer close(crashed)
				for _, g := range grays {
					g.crashOnNext.Store(true)
				}
				for _, g := range grays {
					r, err := g.crash()
					regs, errs = append(regs, r), append(errs, err)
				}
			}()
			publish(step / 4) // records keep coming while the consumers crash and their leases run
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
		gone := awaitLive(t, base.l, "gray", false)
		grayLive[len(grayLive)-1].to = gone
		w.to = gone.Add(window)
		windows = append(windows, w)
		publish(step - step/4*(i%2))
	}
	publish(total - sent)
	require.Equal(t, total, sent)
	j.awaitDistinct(t, total, testTimeout)
	// Wait for takeovers in flight to end: stopping the base consumer
	// waits for its poll loop.
	base.stop(t)
	windows[len(windows)-1].to = time.Now().Add(window)

	count := map[string]int{}
	var dups, dupOutside, untaggedInLane, grayByBase, wrongTag int
	for _, p := range j.snapshot() {
		count[p.id]++
		if count[p.id] > 1 {
			dups++
			inside := false
			for _, w := range windows {
				inside = inside || w.contains(p.at)
			}
			if !inside {
				dupOutside++
			}
		}
		tg := tags[p.id]
		if p.tag != tg {
			wrongTag++
		}
		if tg == "" && p.lane != "prod" {
			untaggedInLane++
		}
		if tg == "gray" && p.lane == "prod" {
			for _, iv := range grayLive {
				if (interval{from: iv.from.Add(window), to: iv.to}).contains(p.at) && iv.from.Add(window).Before(iv.to) {
					grayByBase++
				}
			}
		}
	}
	lost := 0
	for id := range tags {
		if count[id] == 0 {
			lost++
		}
	}
	st := base.c.Stats()
	broker := "kfake"
	if !b.fake {
		broker = "KAFKA_BROKERS"
	}
	fmt.Printf("kafka lane churn (%s): %d records, %d gray cycles: lost %d, duplicates %d (%.2f%%, %d outside a switch window), "+
		"untagged processed by a lane %d, gray processed by the base with gray live > 1s %d, wrong tag in context %d; "+
		"base: %d processed, %d skipped, %d taken over in %d takeovers\n",
		broker, total, cycles, lost, dups, 100*float64(dups)/total, dupOutside, untaggedInLane, grayByBase, wrongTag,
		st.Processed, st.Skipped, st.TakenOver, st.Takeovers)
	assert.Zero(t, lost, "lost")
	assert.LessOrEqual(t, dups, total/100, "duplicates")
	assert.Zero(t, dupOutside, "duplicates outside a switch window")
	assert.Zero(t, untaggedInLane, "untagged records processed by a lane consumer")
	assert.Zero(t, grayByBase, "gray records processed by the base while gray was live")
	assert.Zero(t, wrongTag, "handler context tag differs from the record's")
}
