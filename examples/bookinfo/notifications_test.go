package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// notes records every event the notifications consumers process.
type notes struct {
	mu      sync.Mutex
	all     []app.Notification
	changed chan struct{}
}

func newNotes() *notes { return &notes{changed: make(chan struct{})} }

func (n *notes) add(x app.Notification) {
	n.mu.Lock()
	n.all = append(n.all, x)
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

func (n *notes) snapshot() []app.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]app.Notification(nil), n.all...)
}

// await waits until ok holds of the notifications so far.
func (n *notes) await(t *testing.T, what string, ok func([]app.Notification) bool) {
	t.Helper()
	deadline := time.After(defaultTestTimeout)
	for {
		n.mu.Lock()
		all, ch := n.all, n.changed
		done := ok(all)
		n.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, defaultTestTimeout)
		}
	}
}

// of returns the notifications of the events of user.
func of(all []app.Notification, user string) []app.Notification {
	var out []app.Notification
	for _, x := range all {
		if x.Event.User == user {
			out = append(out, x)
		}
	}
	return out
}

// view fetches the product page as user (a cookie no ingress rule
// matches), tagged when tg is set; its event carries the user.
func view(ctx context.Context, client *http.Client, gw, user, tg string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/productpage", nil)
	if err != nil {
		return err
	}
	req.AddCookie(&http.Cookie{Name: "user", Value: user})
	if tg != "" {
		req.Header.Set("x-traffic-tag", tg)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// TestNotificationsLanes: untagged page views' events are processed by
// notifications-v1; gray ones too while notifications-v2 has no replica
// (fallback); once notifications-v2 runs, gray events go to it within a
// second, and untagged ones stay with v1.
func TestNotificationsLanes(t *testing.T) {
	rec := newNotes()
	sys := startSystem(t, app.Config{OnNotification: rec.add})
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	n := 0
	viewAndAwait := func(tg string) []app.Notification {
		t.Helper()
		n++
		user := "u" + strconv.Itoa(n)
		require.NoError(t, view(ctx, client, sys.GatewayURL(), user, tg))
		rec.await(t, "the event of "+user, func(all []app.Notification) bool { return len(of(all, user)) > 0 })
		return of(rec.snapshot(), user)
	}
	for range 3 {
		got := viewAndAwait("")
		require.Len(t, got, 1)
		assert.Equal(t, "notifications-v1-0", got[0].Instance)
		assert.Equal(t, "prod", got[0].Lane)
		assert.Equal(t, "", got[0].Tag)
		assert.Equal(t, "untagged", got[0].Reason)
		assert.Equal(t, "productpage-v1-0", got[0].Event.Productpage)
	}
	for range 3 {
		got := viewAndAwait("gray")
		require.Len(t, got, 1)
		assert.Equal(t, "notifications-v1-0", got[0].Instance, "no gray consumer: fallback to prod")
		assert.Equal(t, "gray", got[0].Tag)
		assert.Equal(t, "noinstances", got[0].Reason)
	}

	scale(t, sys, "notifications-v2", 1)
	up := time.Now()
	for {
		got := viewAndAwait("gray")
		if got[0].Instance == "notifications-v2-0" {
			took := got[0].Processed.Sub(up)
			t.Logf("gray events processed by notifications-v2 %v after the scaling", took)
			assert.LessOrEqual(t, took, time.Second)
			break
		}
		require.Less(t, time.Since(up), 2*time.Second, "gray events still processed by %s", got[0].Instance)
	}
	grays := []string{}
	for range 5 {
		got := viewAndAwait("gray")
		grays = append(grays, got[0].Event.User)
		assert.Equal(t, "notifications-v2-0", got[0].Instance)
		assert.Equal(t, "gray", got[0].Lane)
		assert.Equal(t, "matched", got[0].Reason)
	}
	for range 5 {
		got := viewAndAwait("")
		require.Len(t, got, 1)
		assert.Equal(t, "notifications-v1-0", got[0].Instance)
	}
	// notifications-v1 decides the stream in order: having processed the
	// last untagged events, it has decided the gray ones before them.
	all := rec.snapshot()
	for _, u := range grays {
		assert.Len(t, of(all, u), 1, "%s processed once, by v2", u)
	}
	for _, x := range all {
		assert.False(t, x.Tag == "" && x.Lane != "prod", "untagged event %s processed in lane %s", x.Event.ID, x.Lane)
	}

	// The admin API shows the same.
	resp, err := client.Get(sys.AdminURL() + "/api/notifications?n=3")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st app.NotificationsStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	require.Len(t, st.Last, 3)
	assert.Equal(t, "notifications-v1-0", st.Last[0].Instance)
	assert.Equal(t, "u"+strconv.Itoa(n), st.Last[0].Event.User, "newest first")
	assert.Equal(t, 6, st.Processed["notifications-v2-0"])
	assert.Zero(t, st.Events.Failed)
	assert.Equal(t, uint64(n), st.Events.Published)

	// So does the admin page's panel.
	resp, err = client.Get(sys.AdminURL() + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Regexp(t, `(?s)id="notifications".*u`+strconv.Itoa(n)+`.*notifications-v1-0`, string(b))
	assert.Contains(t, string(b), `<td class="inst">notifications-v2-0</td>`)
}

// TestNotificationsScaleDownMidStream sends page views at a steady rate,
// half of them gray, while notifications-v2 is scaled down and up again:
// every event is processed at least once, duplicates only inside a switch
// window, and no untagged event by notifications-v2.
func TestNotificationsScaleDownMidStream(t *testing.T) {
	const window = time.Second // the documented convergence bound
	rec := newNotes()
	sys := startSystem(t, app.Config{OnNotification: rec.add, Replicas: map[string]int{"notifications-v2": 1}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	type sentView struct{ user, tag string }
	var (
		mu      sync.Mutex
		sent    []sentView
		loadErr error
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	go func() { // the steady load: a page view every 5ms
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			v := sentView{user: "load" + strconv.Itoa(i)}
			if i%2 == 0 {
				v.tag = "gray"
			}
			if err := view(ctx, client, sys.GatewayURL(), v.user, v.tag); err != nil {
				mu.Lock()
				loadErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			sent = append(sent, v)
			mu.Unlock()
		}
	}()
	loadStopped := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	processedBy := func(inst string, after int) func([]app.Notification) bool {
		return func(all []app.Notification) bool {
			if loadStopped() {
				return true // the load failed: reported below
			}
			for _, x := range all {
				if n, _ := strconv.Atoi(x.Event.User[len("load"):]); x.Instance == inst && n >= after {
					return true
				}
			}
			return false
		}
	}
	var windows []interval
	rec.await(t, "gray events processed by v2", processedBy("notifications-v2-0", 0))

	w := interval{from: time.Now()}
	scale(t, sys, "notifications-v2", 0) // mid-stream
	w.to = time.Now().Add(window)
	windows = append(windows, w)
	v2Live := []interval{{to: w.from}}
	rec.await(t, "gray events processed by v1 after the scale-down", func(all []app.Notification) bool {
		if loadStopped() {
			return true
		}
		for _, x := range all {
			if x.Tag == "gray" && x.Instance == "notifications-v1-0" && x.Processed.After(w.to.Add(-window)) {
				return true
			}
		}
		return false
	})

	w = interval{from: time.Now()}
	scale(t, sys, "notifications-v2", 1)
	w.to = time.Now().Add(window)
	windows = append(windows, w)
	v2Live = append(v2Live, interval{from: w.to.Add(-window)})
	rec.await(t, "gray events processed by the new v2", processedBy("notifications-v2-1", count()))
	target := count() + 100
	rec.await(t, "more load", func([]app.Notification) bool { return loadStopped() || count() >= target })
	close(stop)
	<-stopped
	require.NoError(t, loadErr)

	total := count()
	rec.await(t, "every event processed", func(all []app.Notification) bool {
		seen := map[string]bool{}
		for _, x := range all {
			seen[x.Event.User] = true
		}
		return len(seen) >= total
	})
	tags := map[string]string{}
	for _, v := range sent {
		tags[v.user] = v.tag
	}
	times := map[string]int{}
	var dups, dupOutside, untaggedByV2, grayByV1, wrongTag int
	for _, x := range rec.snapshot() {
		times[x.Event.User]++
		if times[x.Event.User] > 1 {
			dups++
			inside := false
			for _, w := range windows {
				inside = inside || w.contains(x.Processed)
			}
			if !inside {
				dupOutside++
			}
		}
		if x.Tag != tags[x.Event.User] {
			wrongTag++
		}
		if x.Tag == "" && x.Lane != "prod" {
			untaggedByV2++
		}
		if x.Tag == "gray" && x.Lane == "prod" {
			for _, iv := range v2Live {
				if (interval{from: iv.from.Add(window), to: iv.to}).contains(x.Processed) && (iv.to.IsZero() || iv.from.Add(window).Before(iv.to)) {
					grayByV1++
				}
			}
		}
	}
	lost := 0
	for u := range tags {
		if times[u] == 0 {
			lost++
		}
	}
	st := sys.Notifications(0)
	t.Logf("notifications, v2 scaled down and up under load: %d page views (%d gray), publish failures %d; lost %d, duplicates %d (%d outside a switch window), "+
		"untagged processed by v2 %d, gray processed by v1 while v2 was live > 1s %d, wrong tag %d; processed by instance %v",
		total, (total+1)/2, st.Events.Failed, lost, dups, dupOutside, untaggedByV2, grayByV1, wrongTag, st.Processed)
	assert.Zero(t, st.Events.Failed, "publish failures")
	assert.Zero(t, lost, "lost")
	assert.Zero(t, dupOutside, "duplicates outside a switch window")
	assert.Zero(t, untaggedByV2, "untagged events processed by v2")
	assert.Zero(t, grayByV1, "gray events processed by v1 while v2 was live")
	assert.Zero(t, wrongTag, "tag in the consumer's context differs from the view's")
}

// interval is a span of time, open-ended when a bound is zero.
type interval struct{ from, to time.Time }

func (iv interval) contains(t time.Time) bool {
	return (iv.from.IsZero() || !t.Before(iv.from)) && (iv.to.IsZero() || !t.After(iv.to))
}
