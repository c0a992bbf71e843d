package etcd_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/registrytest"
)

// pollUntil checks cond until it holds, within timeout: for conditions
// that are not events (a gauge's value, a log line, a key's lease).
func pollUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, timeout)
		}
	}
	return time.Since(start)
}

func gauge(t testing.TB, m *metrics) int64 {
	v, ok := m.value(t, etcd.ConnectedMetric)
	require.True(t, ok, "the gauge is reported")
	return v
}

// TestOutage stops etcd while a client routes under load, for longer than
// the lease TTL, then starts it again on the same data and ports.
//
// During the outage every call succeeds and lands where it did before:
// the watchers keep their last sets. After the restart nothing is
// restarted by hand: the registries put their instances again under new
// leases (theirs expired, as far as they know), and a registration made
// after the restart reaches the existing client.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	prodClient := newClient(t, srv.Endpoint())
	prodReg, prodLogs := newRegistry(t, prodClient, etcd.WithTTL(testTTL))
	grayReg, grayLogs := newRegistry(t, newClient(t, srv.Endpoint()), etcd.WithTTL(testTTL))
	m := newMetrics(t)
	clients, logs := newRegistry(t, newClient(t, srv.Endpoint()), etcd.WithTTL(testTTL), etcd.WithMeterProvider(m.mp))

	prod, gray := startBackend(t, "prod"), startBackend(t, "gray")
	_, err := prodReg.Register(ctx, prod.instance("svc", ""))
	require.NoError(t, err)
	_, err = grayReg.Register(ctx, gray.instance("svc", "gray"))
	require.NoError(t, err)
	_, oldLease := raw(t, prodClient, "/graylane/services/svc/"+prod.addr)
	client := dial(t, clients, "svc")
	eventually(t, client, "gray", defaultTestTimeout, "gray routed", servedBy("gray"))
	// A second watcher of the client's registry, read directly.
	w, err := clients.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	require.Len(t, registrytest.Next(t, w), 2)
	assert.Equal(t, int64(1), gauge(t, m))
	outages, _ := m.value(t, etcd.OutagesMetric)
	assert.Zero(t, outages)

	l := startLoad(client, 4)
	defer func() {
		select {
		case <-l.stopc:
		default:
			l.stop()
		}
	}()
	l.waitCalls(t, 200)

	// Outage.
	stopped := time.Now()
	srv.Stop()
	detected := pollUntil(t, defaultTestTimeout, "outage reported", func() bool { return gauge(t, m) == 0 })
	t.Logf("outage reported %v after etcd stopped", detected.Round(time.Millisecond))
	outages, _ = m.value(t, etcd.OutagesMetric)
	assert.Equal(t, int64(1), outages)
	assert.Equal(t, 1, logs.count(slog.LevelWarn, "registry unreachable"))
	// Outlive the TTL: the registries consider their leases lost.
	pollUntil(t, testTTL+5*time.Second, "leases given up", func() bool {
		return grayLogs.count(slog.LevelDebug, "lease lost") > 0 && prodLogs.count(slog.LevelDebug, "lease lost") > 0
	})
	l.waitCalls(t, 200)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = w.Next(short)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "no new set during the outage: the last one stays")
	late, err := clients.Watch(ctx, "svc")
	require.NoError(t, err)
	assert.Len(t, registrytest.Next(t, late), 2, "a watcher started during the outage gets the last known set")
	require.NoError(t, late.Close())
	outage := time.Since(stopped)

	// Recovery, with nothing restarted but etcd.
	srv.Restart()
	back := pollUntil(t, defaultTestTimeout, "recovery reported", func() bool { return gauge(t, m) == 1 })
	t.Logf("etcd down %v (TTL %v); recovery reported %v after the restart", outage.Round(time.Millisecond), testTTL, back.Round(time.Millisecond))
	assert.Equal(t, 1, logs.count(slog.LevelInfo, "registry reachable again"))
	n, _ := m.value(t, etcd.OutageDurationMetric)
	assert.Equal(t, int64(1), n, "one outage measured")

	pollUntil(t, defaultTestTimeout, "prod registered again", func() bool {
		v, lease := raw(t, prodClient, "/graylane/services/svc/"+prod.addr)
		return v != "" && lease != oldLease
	})
	pollUntil(t, defaultTestTimeout, "the lost lease revoked", func() bool {
		resp, err := prodClient.TimeToLive(ctx, oldLease)
		return err == nil && resp.TTL == -1
	})
	v3 := startBackend(t, "v3")
	_, err = grayReg.Register(ctx, v3.instance("svc", "v3"))
	require.NoError(t, err)
	_, took := eventually(t, client, "v3", defaultTestTimeout, "a registration after the restart is routed", servedBy("v3"))
	t.Logf("registration after the restart routed in %v", took.Round(time.Millisecond))
	waitFor(t, w, defaultTestTimeout, "the watcher follows again", has(v3.addr))
	l.waitCalls(t, 200)
	l.stop()

	t.Logf("%d calls, %d failed, %d misrouted", l.total.Load(), l.failed.Load(), l.misrout.Load())
	assert.Zero(t, l.failed.Load(), "failed calls: %v", l.errs)
	assert.Zero(t, l.misrout.Load(), "misrouted calls: %v", l.errs)
	resp, err := prodClient.Get(ctx, "/graylane/services/svc/", clientv3.WithPrefix())
	require.NoError(t, err)
	assert.Len(t, resp.Kvs, 3, "prod, gray and v3 registered")
}

// TestPartition cuts one process off etcd while etcd keeps serving the
// others, for longer than the TTL: its lease expires and its instance
// leaves the other processes' sets; its own watchers keep their last set.
// When the link is back, the process registers its instance again on its
// own, and the lane serves again.
func TestPartition(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	link := newProxy(t, srv.Endpoint())
	m := newMetrics(t)
	cutOff, logs := newRegistry(t, newClient(t, link.Addr()), etcd.WithTTL(testTTL), etcd.WithMeterProvider(m.mp))
	clients, _ := newRegistry(t, newClient(t, srv.Endpoint()))

	prod, gray := startBackend(t, "prod"), startBackend(t, "gray")
	_, err := clients.Register(ctx, prod.instance("svc", ""))
	require.NoError(t, err)
	_, err = cutOff.Register(ctx, gray.instance("svc", "gray"))
	require.NoError(t, err)
	client := dial(t, clients, "svc")
	eventually(t, client, "gray", defaultTestTimeout, "gray routed", servedBy("gray"))
	own, err := cutOff.Watch(ctx, "svc")
	require.NoError(t, err)
	defer own.Close()
	waitFor(t, own, defaultTestTimeout, "own view", func(s []registry.Instance) bool { return len(s) == 2 })

	link.SetCut(true)
	r, took := eventually(t, client, "gray", testTTL+time.Second, "gray's lease expired", servedBy("prod"))
	assert.Equal(t, "noinstances", r.reason)
	t.Logf("gray left the lane %v after the cut (TTL %v)", took.Round(time.Millisecond), testTTL)
	pollUntil(t, defaultTestTimeout, "outage reported", func() bool { return gauge(t, m) == 0 })
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = own.Next(short)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the cut-off process keeps its last set")

	link.SetCut(false)
	_, took = eventually(t, client, "gray", defaultTestTimeout, "gray registered again", servedBy("gray"))
	t.Logf("gray back in its lane %v after the link was restored", took.Round(time.Millisecond))
	pollUntil(t, defaultTestTimeout, "recovery reported", func() bool { return gauge(t, m) == 1 })
	n, _ := m.value(t, etcd.ReregistrationsMetric)
	assert.Equal(t, int64(1), n)
	assert.Equal(t, 1, logs.count(slog.LevelWarn, "registry unreachable"))
	assert.Equal(t, 1, logs.count(slog.LevelInfo, "registry reachable again"))
	assert.Equal(t, 1, logs.count(slog.LevelInfo, "lease lost"))
}
