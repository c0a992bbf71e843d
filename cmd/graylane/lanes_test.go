package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/tag"
)

// changeTimeout is how soon a change in the registry must show.
const changeTimeout = time.Second

// fleet is an embedded etcd and a registry on it where the test registers
// instances.
type fleet struct {
	t   *testing.T
	url string // --registry
	reg *etcd.Registry
}

func newFleet(t *testing.T) *fleet {
	srv := etcdtest.Start(t)
	reg, err := etcd.Dial([]string{srv.Endpoint()})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	return &fleet{t: t, url: "etcd://" + srv.Endpoint(), reg: reg}
}

func (f *fleet) add(service, addr, name, lane string, health registry.Health) registry.Registration {
	f.t.Helper()
	in := registry.Instance{Service: service, Addr: addr, Name: name, Health: health}
	if lane != "" {
		in.Tag = tag.MustParse(lane)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	r, err := f.reg.Register(ctx, in)
	require.NoError(f.t, err)
	return r
}

// bookinfo registers a small Bookinfo: reviews in three lanes, one of
// them draining.
func (f *fleet) bookinfo() {
	f.add("details", "10.0.0.1:9080", "details-v1-0", "", registry.Serving)
	f.add("reviews", "10.0.0.2:9080", "reviews-v1-0", "", registry.Serving)
	f.add("reviews", "10.0.0.3:9080", "reviews-v2-0", "gray", registry.Serving)
	f.add("reviews", "10.0.0.4:9080", "reviews-v2-1", "gray", registry.NotServing)
	f.add("reviews", "10.0.0.5:9080", "reviews-v3-0", "v3", registry.NotServing)
	f.add("ratings", "10.0.0.6:9080", "ratings-v1-0", "", registry.Serving)
	f.add("ratings", "10.0.0.7:9080", "ratings-v1-1", "", registry.Serving)
}

func TestLanes(t *testing.T) {
	f := newFleet(t)
	code, stdout, stderr := runCmd(t, "", "lanes", "--registry", f.url)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "no services\n", stdout)

	f.bookinfo()
	code, stdout, stderr = runCmd(t, "", "lanes", "--registry", f.url)
	require.Equal(t, exitOK, code, stderr)
	golden(t, "lanes.golden", stdout)

	code, stdout, _ = runCmd(t, "", "lanes", "--registry", f.url, "--service", "reviews,nothing")
	require.Equal(t, exitOK, code)
	golden(t, "lanes-service.golden", stdout)

	t.Setenv("GRAYLANE_REGISTRY", f.url)
	code, stdout, stderr = runCmd(t, "", "lanes", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var v lanesJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &v))
	assert.Equal(t, []string{"prod", "gray", "v3"}, v.Lanes)
	require.Len(t, v.Services, 3)
	assert.Equal(t, "reviews", v.Services[2].Service)
	gray := v.Services[2].Lanes[1]
	assert.Equal(t, "gray", gray.Lane)
	assert.Equal(t, 1, gray.Ready)
	assert.Equal(t, 2, gray.Total)
	assert.Equal(t, "ready", gray.State)
	require.Len(t, gray.Instances, 2)
	assert.Equal(t, instanceJSON{Name: "reviews-v2-1", Addr: "10.0.0.4:9080", Lane: "gray", Weight: 1, Health: "notserving"}, gray.Instances[1])
	assert.Equal(t, "notready", v.Services[2].Lanes[2].State)
}

// watcher runs lanes --watch in-process and hands over its output line by
// line.
type watcher struct {
	lines  chan string
	cancel context.CancelFunc
	code   chan int
}

func startWatch(t *testing.T, args ...string) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	w := &watcher{lines: make(chan string, 1000), cancel: cancel, code: make(chan int, 1)}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	go func() {
		w.code <- run(ctx, append([]string{"lanes", "--watch"}, args...), strings.NewReader(""), pw, os.Stderr)
		pw.Close()
	}()
	t.Cleanup(w.stop)
	return w
}

// stop ends the command and waits for it.
func (w *watcher) stop() {
	w.cancel()
	for range w.lines {
	}
}

// await returns the first line within d that satisfies ok.
func (w *watcher) await(t *testing.T, d time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last string
	for {
		select {
		case line, open := <-w.lines:
			require.True(t, open, "the command ended; last line %q", last)
			if ok(line) {
				return line
			}
			last = line
		case <-timer.C:
			t.Fatalf("%s: not within %v; last line %q", what, d, last)
		}
	}
}

// cell returns "ready/total" of a service's lane in a JSON matrix, or "".
func cell(t *testing.T, line, service, lane string) string {
	t.Helper()
	var v lanesJSON
	require.NoError(t, json.Unmarshal([]byte(line), &v), line)
	for _, s := range v.Services {
		if s.Service != service {
			continue
		}
		for _, l := range s.Lanes {
			if l.Lane == lane {
				return strings.Join([]string{itoa(l.Ready), itoa(l.Total)}, "/")
			}
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLanesWatch: --watch prints the matrix again within a second of every
// change: a registration, a change of health, a deregistration, and a new
// service.
func TestLanesWatch(t *testing.T) {
	f := newFleet(t)
	f.bookinfo()
	for _, args := range [][]string{{"-o", "json"}, {"-o", "json", "--service", "ratings,reviews"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			w := startWatch(t, append(args, "--registry", f.url)...)
			w.await(t, defaultTestTimeout, "first matrix", func(l string) bool { return cell(t, l, "ratings", "prod") == "2/2" })

			start := time.Now()
			gray := f.add("ratings", "10.0.0.8:9080", "ratings-v2-0", "gray", registry.Serving)
			w.await(t, changeTimeout, "registration", func(l string) bool { return cell(t, l, "ratings", "gray") == "1/1" })
			t.Logf("registration shown after %v", time.Since(start))

			in := gray.Instance()
			in.Health = registry.NotServing
			require.NoError(t, gray.Update(context.Background(), in))
			w.await(t, changeTimeout, "health", func(l string) bool { return cell(t, l, "ratings", "gray") == "0/1" })

			require.NoError(t, gray.Deregister(context.Background()))
			w.await(t, changeTimeout, "deregistration", func(l string) bool { return cell(t, l, "ratings", "gray") == "" })

			w.stop()
			assert.Equal(t, exitOK, <-w.code, "Ctrl-C ends the watch normally")
		})
	}
	t.Run("new service", func(t *testing.T) {
		w := startWatch(t, "-o", "json", "--registry", f.url)
		w.await(t, defaultTestTimeout, "first matrix", func(l string) bool { return cell(t, l, "ratings", "prod") == "2/2" })
		r := f.add("productpage", "10.0.0.9:9080", "productpage-v1-0", "", registry.Serving)
		w.await(t, relistEvery+changeTimeout, "new service", func(l string) bool { return cell(t, l, "productpage", "prod") == "1/1" })
		require.NoError(t, r.Deregister(context.Background()))
		w.await(t, changeTimeout, "service gone", func(l string) bool { return !strings.Contains(l, "productpage") })
	})
	t.Run("table", func(t *testing.T) {
		w := startWatch(t, "--registry", f.url, "--service", "ratings")
		w.await(t, defaultTestTimeout, "first table", func(l string) bool { return strings.HasPrefix(l, "ratings") && strings.Contains(l, "2/2 ready") })
		f.add("ratings", "10.0.0.10:9080", "ratings-v1-2", "", registry.Serving)
		w.await(t, changeTimeout, "table redrawn", func(l string) bool { return strings.HasPrefix(l, "ratings") && strings.Contains(l, "3/3 ready") })
	})
}
