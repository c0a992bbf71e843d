package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/loadgen"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
)

// proc is one process of the demo.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

type fleetProcs struct {
	t    *testing.T
	bin  string
	mu   sync.Mutex
	all  []*proc
	args []string // common flags
	env  []string // added to the test's environment
}

func (f *fleetProcs) start(name string, args ...string) *proc {
	f.t.Helper()
	p := &proc{name: name, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(f.bin, append(append([]string{}, f.args...), args...)...)
	if len(f.env) > 0 {
		p.cmd.Env = append(os.Environ(), f.env...)
	}
	w := &lockedWriter{w: p.out} // one writer for both, so that exec serialises them
	p.cmd.Stdout, p.cmd.Stderr = w, w
	require.NoError(f.t, p.cmd.Start())
	go func() { p.cmd.Wait(); close(p.done) }()
	f.mu.Lock()
	f.all = append(f.all, p)
	f.mu.Unlock()
	return p
}

func (f *fleetProcs) stopAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- { // the gateway, holding etcd, last
		p := f.all[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if f.t.Failed() {
			f.t.Logf("--- output of %s ---\n%s", p.name, p.out)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestMultiProcess runs the demo as separate processes on one etcd (the
// gateway's process embeds it), replays the gray-lane walkthrough, and
// kills reviews-v2 with SIGKILL under load: gray requests fall back to
// reviews-v1, and none fails once its lease has expired.
func TestMultiProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bookinfo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building the demo")

	const ttl = 2 * time.Second
	etcdAddr := etcdtest.FreeAddr(t)
	f := &fleetProcs{t: t, bin: bin, args: []string{"-log-level", "warn", "-lease-ttl", ttl.String()}}
	defer f.stopAll()
	gw := etcdtest.FreeAddr(t)
	f.start("gateway", "-deployment", "gateway", "-gateway-addr", gw,
		"-registry", "embedded-etcd", "-etcd-client-addr", etcdAddr, "-etcd-peer-addr", etcdtest.FreeAddr(t), "-etcd-dir", t.TempDir())
	reg := []string{"-registry", "etcd://" + etcdAddr}
	for _, d := range []string{"productpage-v1", "details-v1", "reviews-v1", "ratings-v1"} {
		f.start(d, append(reg, "-deployment", d)...)
	}

	client := newClient(t)
	base := "http://" + gw + "/productpage"
	get := func(h http.Header) func() page {
		return func() page {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p, _, err := get(ctx, client, base, h)
			if err != nil {
				return page{} // not up yet, or killed: the callers wait for a page
			}
			return p
		}
	}
	untagged, gray := get(nil), get(http.Header{"X-Traffic-Tag": {"gray"}})

	p := until(t, "every process up", untagged, func(p page) bool {
		return p.status == 200 && len(p.hops) == 4 && p.reviewsPod() == "reviews-v1-0" && !p.anyFailed()
	})
	assert.Equal(t, []string{"gateway@gateway(prod)", "productpage@productpage-v1-0(prod)", "details@details-v1-0(prod)", "reviews@reviews-v1-0(prod)"}, p.route())

	p = gray()
	assert.Equal(t, []string{"gateway@gateway(prod)", "productpage@productpage-v1-0(prod)!noinstances",
		"details@details-v1-0(prod)!noinstances", "reviews@reviews-v1-0(prod)!noinstances"}, p.route())

	reviewsV2 := f.start("reviews-v2", append(reg, "-deployment", "reviews-v2")...)
	p = until(t, "reviews-v2 up", gray, func(p page) bool { return p.reviewsPod() == "reviews-v2-0" })
	assert.Equal(t, []string{"black:5", "black:4"}, p.stars())
	assert.Equal(t, "ratings@ratings-v1-0(prod)!noinstances", p.route()[4])

	f.start("ratings-v2", append(reg, "-deployment", "ratings-v2")...)
	p = until(t, "ratings-v2 up", gray, func(p page) bool { return len(p.hops) == 5 && p.hops[4].Instance == "ratings-v2-0" })
	assert.Equal(t, []string{"black:3", "black:2"}, p.stars())
	assert.Equal(t, "reviews-v1-0", until(t, "untagged unchanged", untagged, func(p page) bool { return p.status == 200 }).reviewsPod())

	// Kill reviews-v2 under gray load.
	_, stopLoad := startGrayLoad(base)
	defer stopLoad()
	require.NoError(t, reviewsV2.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	<-reviewsV2.done
	until(t, "gray falls back to reviews-v1", gray, func(p page) bool { return p.reviewsPod() == "reviews-v1-0" })
	fellBack := time.Since(killed)
	for time.Since(killed) < ttl+time.Second { // until the lease has surely expired
		gray()
	}
	res := stopLoad()
	t.Logf("load during the kill: %d requests, %d failed (in flight at the kill); gray fell back after %v", res.Requests, res.Errors, fellBack)
	assert.LessOrEqual(t, res.Errors, 5, "only requests in flight at the kill may fail: %v", res.ErrorSamples)

	after, err := loadgen.Run(context.Background(), loadgen.Config{URL: base, Rate: 50, Duration: 2 * time.Second, Tagged: 1, Route: true, PageErrors: true})
	require.NoError(t, err)
	assert.Zero(t, after.Errors, "after the lease expired: %v", after.ErrorSamples)
	assert.NotZero(t, after.Served["gray"]["reviews-v1-0"])
	assert.Zero(t, after.Served["gray"]["reviews-v2-0"], "the killed instance is gone from the lane")
	assert.NotZero(t, after.Served["gray"]["details-v1-0"], "gray requests still go through")
}

// startGrayLoad runs a steady load of gray requests (50/s, route receipts
// on) against url, and returns once 20 of them have been answered: the
// change that follows meets a load already running. stop ends the load and
// returns its result; it may be called more than once. progress reports
// the requests answered so far, as loadgen.Config.Progress does.
func startGrayLoad(url string) (progress <-chan int, stop func() loadgen.Result) {
	ctx, cancel := context.WithCancel(context.Background())
	during := make(chan loadgen.Result, 1)
	answered := make(chan int)
	go func() {
		res, _ := loadgen.Run(ctx, loadgen.Config{URL: url, Rate: 50, Duration: time.Minute, Tagged: 1, Route: true, PageErrors: true, Progress: answered})
		during <- res
	}()
	for n := range answered {
		if n >= 20 {
			break
		}
	}
	var (
		once sync.Once
		res  loadgen.Result
	)
	return answered, func() loadgen.Result {
		once.Do(func() { cancel(); res = <-during })
		return res
	}
}
