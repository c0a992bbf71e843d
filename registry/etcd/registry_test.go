package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/registrytest"
	"github.com/graylane/graylane/tag"
)

// raw returns the value and lease of key, read straight from etcd, or ""
// when there is no such key.
func raw(t testing.TB, c *clientv3.Client, key string) (string, clientv3.LeaseID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	resp, err := c.Get(ctx, key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease)
}

func TestRegisterRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client)
	other, _ := newRegistry(t, newClient(t, srv.Endpoint())) // another process

	w, err := other.Watch(ctx, "reviews")
	require.NoError(t, err)
	defer w.Close()
	assert.Empty(t, registrytest.Next(t, w), "the first Next returns the current, empty, set")

	gray := registry.Instance{
		Service: "reviews", Addr: "10.0.0.1:9080", Name: "reviews-v2-0", Tag: tag.MustParse("gray"),
		Weight: 3, Metadata: map[string]string{"version": "v2", "zone": "eu-1a"},
	}
	r1, err := reg.Register(ctx, gray)
	require.NoError(t, err)

	value, lease := raw(t, client, "/graylane/services/reviews/10.0.0.1:9080")
	assert.JSONEq(t, `{"addr":"10.0.0.1:9080","name":"reviews-v2-0","tag":"gray","weight":3,"health":"serving","metadata":{"version":"v2","zone":"eu-1a"}}`, value)
	require.NotZero(t, lease, "registered under a lease")
	ttl, err := client.TimeToLive(ctx, lease)
	require.NoError(t, err)
	assert.Equal(t, int64(etcd.DefaultTTL/time.Second), ttl.GrantedTTL)

	got := registrytest.Next(t, w)
	require.Len(t, got, 1)
	assert.Equal(t, gray, got[0], "every field survives the round trip")
	assert.Equal(t, gray, r1.Instance())

	r2, err := reg.Register(ctx, registrytest.Inst("reviews", "10.0.0.0:9080", ""))
	require.NoError(t, err)
	value, lease2 := raw(t, client, "/graylane/services/reviews/10.0.0.0:9080")
	assert.JSONEq(t, `{"addr":"10.0.0.0:9080","health":"serving"}`, value, "empty fields are left out")
	assert.Equal(t, lease, lease2, "one lease per Registry")
	assert.Equal(t, []string{"10.0.0.0:9080/prod", "10.0.0.1:9080/gray"}, registrytest.Addrs(registrytest.Next(t, w)), "sorted by address")

	upd := r1.Instance()
	upd.Tag = tag.MustParse("v3")
	upd.Health = registry.NotServing
	upd.Metadata = map[string]string{"version": "v3"}
	require.NoError(t, r1.Update(ctx, upd))
	value, lease3 := raw(t, client, "/graylane/services/reviews/10.0.0.1:9080")
	assert.JSONEq(t, `{"addr":"10.0.0.1:9080","name":"reviews-v2-0","tag":"v3","weight":3,"health":"notserving","metadata":{"version":"v3"}}`, value)
	assert.Equal(t, lease, lease3, "Update keeps the lease")
	got = registrytest.Next(t, w)
	assert.Equal(t, []string{"10.0.0.0:9080/prod", "10.0.0.1:9080/v3"}, registrytest.Addrs(got))
	assert.Equal(t, upd, got[1])
	assert.Equal(t, upd, r1.Instance())

	require.NoError(t, r2.Deregister(ctx))
	value, _ = raw(t, client, "/graylane/services/reviews/10.0.0.0:9080")
	assert.Empty(t, value, "Deregister deletes the key before it returns")
	assert.Equal(t, []string{"10.0.0.1:9080/v3"}, registrytest.Addrs(registrytest.Next(t, w)))
	require.NoError(t, r2.Deregister(ctx), "idempotent")
	assert.ErrorIs(t, r2.Update(ctx, r2.Instance()), registry.ErrNotRegistered)
	assert.Equal(t, "10.0.0.0:9080", r2.Instance().Addr, "Instance still says what was registered")

	// An Update that changes nothing wakes nobody.
	require.NoError(t, r1.Update(ctx, r1.Instance()))
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = w.Next(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRegisterErrors(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client, etcd.WithPrefix("/custom"), etcd.WithTTL(2500*time.Millisecond))

	bad := registry.Instance{Service: "bad name", Addr: "10.0.0.1:80"}
	_, err := reg.Register(ctx, bad)
	assert.Equal(t, bad.Validate(), err, "Validate's error, as is")
	_, err = reg.Register(ctx, registry.Instance{Service: "svc", Addr: "10.0.0.1:80", Weight: registry.MaxWeight + 1})
	assert.ErrorIs(t, err, registry.ErrInvalidInstance)
	_, err = reg.Watch(ctx, "not/a/service")
	assert.ErrorIs(t, err, registry.ErrInvalidInstance)

	r1, err := reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "gray"))
	require.NoError(t, err)
	value, lease := raw(t, client, "/custom/svc/10.0.0.1:80")
	assert.NotEmpty(t, value, "the prefix gets its trailing slash")
	ttl, err := client.TimeToLive(ctx, lease)
	require.NoError(t, err)
	assert.Equal(t, int64(3), ttl.GrantedTTL, "the TTL is rounded up to whole seconds")

	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "v3"))
	assert.ErrorIs(t, err, registry.ErrDuplicate)
	_, err = reg.Register(ctx, registrytest.Inst("other", "10.0.0.1:80", ""))
	assert.NoError(t, err, "the same address in another service is another instance")

	assert.ErrorIs(t, r1.Update(ctx, registrytest.Inst("svc", "10.0.0.9:80", "")), registry.ErrInvalidInstance, "the address is fixed")
	badUpd := registrytest.Inst("svc", "10.0.0.1:80", "")
	badUpd.Health = 9
	assert.ErrorIs(t, r1.Update(ctx, badUpd), registry.ErrInvalidInstance)
	assert.Equal(t, "gray", r1.Instance().Tag.String(), "a refused update changes nothing")

	require.NoError(t, r1.Deregister(ctx))
	r1b, err := reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "v3"))
	require.NoError(t, err, "free again after Deregister")
	require.NoError(t, r1.Deregister(ctx), "an old handle does not touch the new registration")
	value, _ = raw(t, client, "/custom/svc/10.0.0.1:80")
	assert.Contains(t, value, `"tag":"v3"`)

	// A Register that cannot finish within its context leaves nothing behind.
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = reg.Register(done, registrytest.Inst("svc", "10.0.0.2:80", ""))
	assert.ErrorIs(t, err, context.Canceled)
	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.2:80", ""))
	assert.NoError(t, err, "a failed Register does not hold the address")

	require.NoError(t, reg.Close())
	require.NoError(t, reg.Close(), "idempotent")
	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.3:80", ""))
	assert.ErrorIs(t, err, registry.ErrClosed)
	_, err = reg.Watch(ctx, "svc")
	assert.ErrorIs(t, err, registry.ErrClosed)
	assert.ErrorIs(t, r1b.Update(ctx, r1b.Instance()), registry.ErrClosed)
	assert.ErrorIs(t, r1b.Deregister(ctx), registry.ErrClosed)
	assert.NoError(t, r1.Deregister(ctx), "already deregistered")
}

func TestOptions(t *testing.T) {
	_, err := etcd.New(nil)
	assert.ErrorContains(t, err, "nil client")
	_, err = etcd.Dial(nil)
	assert.ErrorContains(t, err, "no endpoint")

	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	for _, tt := range []struct {
		opt  etcd.Option
		want string
	}{
		{etcd.WithTTL(time.Second), "minimum"},
		{etcd.WithTTL(-time.Second), "minimum"},
		{etcd.WithPrefix(""), "empty key prefix"},
	} {
		_, err := etcd.New(client, tt.opt)
		assert.ErrorContains(t, err, tt.want)
	}
}

func TestDial(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	reg, err := etcd.Dial([]string{srv.Endpoint()}, etcd.WithLogger(slog.New(&logSink{})))
	require.NoError(t, err)
	defer reg.Close()
	w, err := reg.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	assert.Empty(t, registrytest.Next(t, w))
	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1:80/prod"}, registrytest.Addrs(registrytest.Next(t, w)))
	require.NoError(t, reg.Close()) // also closes the client: goleak checks
}

// TestContract: the etcd Registry keeps the Registry contract. Each check
// gets a Registry of its own under a prefix of its own, on one etcd.
func TestContract(t *testing.T) {
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	n := 0
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		n++
		reg, _ := newRegistry(t, client, etcd.WithPrefix(fmt.Sprintf("/contract-%d", n)))
		return reg
	})
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client)

	for _, a := range []string{"10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"} {
		_, err := reg.Register(ctx, registrytest.Inst("svc", a, ""))
		require.NoError(t, err)
	}
	w, err := reg.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, []string{"10.0.0.1:80/prod", "10.0.0.2:80/prod", "10.0.0.3:80/prod"}, registrytest.Addrs(registrytest.Next(t, w)),
		"the first Next returns the whole current set, sorted")

	t.Run("keys that are not instances are skipped", func(t *testing.T) {
		bad := map[string]string{
			"not-json:80":    `{`,
			"10.0.3.1:80":    `{"addr":"10.0.3.2:80","health":"serving"}`,
			"10.0.3.3:80":    `{"addr":"10.0.3.3:80","tag":"not a tag","health":"serving"}`,
			"10.0.3.4:80":    `{"addr":"10.0.3.4:80","health":"sleeping"}`,
			"10.0.3.5:80":    `{"addr":"10.0.3.5:80","weight":100000}`,
			"no-port":        `{"addr":"no-port"}`,
			"10.0.3.7:80":    `{"addr":"10.0.3.7:80","tag":"gray","future":{"field":1}}`, // another tool's, valid
			"10.0.3.8:80":    `{"addr":"10.0.3.8:80","health":"notserving"}`,             // valid
			"[fd00::1]:8080": `{"addr":"[fd00::1]:8080","name":"v6"}`,                    // valid
		}
		for k, v := range bad {
			_, err := client.Put(ctx, "/graylane/services/svc/"+k, v)
			require.NoError(t, err)
		}
		// Each key has its own event: wait for the last one.
		_, err := client.Put(ctx, "/graylane/services/svc/10.0.3.9:80", `{"addr":"10.0.3.9:80"}`)
		require.NoError(t, err)
		got := []registry.Instance{}
		waitFor(t, w, defaultTestTimeout, "raw keys seen", func(s []registry.Instance) bool {
			got = s
			return has("10.0.3.9:80")(s)
		})
		var extra []string
		for _, in := range got {
			if in.Addr >= "10.0.3" || in.Addr[0] == '[' || in.Addr == "no-port" || in.Addr == "not-json:80" {
				extra = append(extra, in.Addr+"/"+in.Lane("prod")+"/"+in.Health.String())
			}
		}
		assert.ElementsMatch(t, []string{"10.0.3.7:80/gray/serving", "10.0.3.8:80/prod/notserving",
			"10.0.3.9:80/prod/serving", "[fd00::1]:8080/prod/serving"}, extra)

		// A new watcher reads the same from etcd.
		fresh, _ := newRegistry(t, newClient(t, srv.Endpoint()))
		w2, err := fresh.Watch(ctx, "svc")
		require.NoError(t, err)
		defer w2.Close()
		assert.Equal(t, registrytest.Addrs(got), registrytest.Addrs(registrytest.Next(t, w2)))

		// A valid instance turned invalid leaves the set.
		_, err = client.Put(ctx, "/graylane/services/svc/10.0.3.7:80", `{"addr":"10.0.3.7:80","tag":"-bad-"}`)
		require.NoError(t, err)
		waitFor(t, w2, defaultTestTimeout, "invalid value dropped", hasNot("10.0.3.7:80"))
	})

}

// TestCloseRevokes: Close deletes every instance of the Registry at once.
func TestCloseRevokes(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client)
	for _, a := range []string{"10.0.0.1:80", "10.0.0.2:80"} {
		_, err := reg.Register(ctx, registrytest.Inst("svc", a, ""))
		require.NoError(t, err)
	}
	resp, err := client.Get(ctx, "/graylane/services/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(2), resp.Count)
	require.NoError(t, reg.Close())
	resp, err = client.Get(ctx, "/graylane/services/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "gone when Close returns")
}

// TestLeaseExpiry: a process that dies without deregistering leaves the
// other processes' sets within the TTL.
func TestLeaseExpiry(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	crashing, _ := newRegistry(t, client, etcd.WithTTL(testTTL))
	watching, _ := newRegistry(t, newClient(t, srv.Endpoint()))

	w, err := watching.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	_, err = crashing.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "gray"))
	require.NoError(t, err)
	waitFor(t, w, defaultTestTimeout, "registered", has("10.0.0.1:80"))

	crashing.Abandon()
	value, _ := raw(t, client, "/graylane/services/svc/10.0.0.1:80")
	require.NotEmpty(t, value, "Abandon deletes nothing")
	took := waitFor(t, w, testTTL+time.Second, "gone within TTL + 1s", hasNot("10.0.0.1:80"))
	t.Logf("instance of the abandoned registry gone after %v (TTL %v)", took.Round(time.Millisecond), testTTL)
}

// TestReregisterAfterRevoke: when its lease is revoked behind its back, the
// Registry puts its instances again under a new lease.
func TestReregisterAfterRevoke(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	m := newMetrics(t)
	reg, logs := newRegistry(t, client, etcd.WithTTL(testTTL), etcd.WithMeterProvider(m.mp))
	watching, _ := newRegistry(t, newClient(t, srv.Endpoint()))
	w, err := watching.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()

	h, err := reg.Register(ctx, registry.Instance{Service: "svc", Addr: "10.0.0.1:80", Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.2:80", "gray"))
	require.NoError(t, err)
	gone, err := reg.Register(ctx, registrytest.Inst("svc", "10.0.0.3:80", ""))
	require.NoError(t, err)
	require.NoError(t, gone.Deregister(ctx))
	waitFor(t, w, defaultTestTimeout, "registered", func(s []registry.Instance) bool { return len(s) == 2 })
	_, lease := raw(t, client, "/graylane/services/svc/10.0.0.1:80")

	_, err = client.Revoke(ctx, lease)
	require.NoError(t, err)
	waitFor(t, w, defaultTestTimeout, "revoked", func(s []registry.Instance) bool { return len(s) == 0 })
	took := waitFor(t, w, defaultTestTimeout, "registered again", func(s []registry.Instance) bool { return len(s) == 2 })
	t.Logf("registered again %v after the revocation was seen", took.Round(time.Millisecond))

	value, lease2 := raw(t, client, "/graylane/services/svc/10.0.0.1:80")
	assert.NotEqual(t, lease, lease2, "under a new lease")
	assert.JSONEq(t, `{"addr":"10.0.0.1:80","health":"serving","metadata":{"k":"v"}}`, value)
	value, _ = raw(t, client, "/graylane/services/svc/10.0.0.3:80")
	assert.Empty(t, value, "a deregistered instance is not put again")
	n, _ := m.value(t, etcd.ReregistrationsMetric)
	assert.Equal(t, int64(1), n)
	assert.Equal(t, 1, logs.count(slog.LevelInfo, "lease lost"))

	// The handles work on under the new lease.
	upd := h.Instance()
	upd.Tag = tag.MustParse("v3")
	require.NoError(t, h.Update(ctx, upd))
	_, lease3 := raw(t, client, "/graylane/services/svc/10.0.0.1:80")
	assert.Equal(t, lease2, lease3)
}

// TestWritesDuringOutage: writes that cannot reach etcd fail within their
// context, and the Registry brings etcd to what the callers were told once
// it answers: the deregistered key deleted, the failed update and the
// failed registration undone.
func TestWritesDuringOutage(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	link := newProxy(t, srv.Endpoint())
	direct := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, newClient(t, link.Addr())) // default TTL: the lease outlives the cut

	a, err := reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "gray"))
	require.NoError(t, err)
	b, err := reg.Register(ctx, registrytest.Inst("svc", "10.0.0.2:80", ""))
	require.NoError(t, err)

	link.SetCut(true)
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	// The errors are the context's, or the client's when the cut breaks a
	// request in flight.
	assert.ErrorContains(t, a.Deregister(short()), "deleted once etcd answers")
	assert.Error(t, b.Update(short(), registrytest.Inst("svc", "10.0.0.2:80", "v3")))
	assert.True(t, b.Instance().Tag.IsZero(), "a failed update changes nothing")
	_, err = reg.Register(short(), registrytest.Inst("svc", "10.0.0.3:80", ""))
	assert.Error(t, err)
	value, _ := raw(t, direct, "/graylane/services/svc/10.0.0.1:80")
	assert.NotEmpty(t, value, "etcd did not hear of the deregistration")

	link.SetCut(false)
	pollUntil(t, defaultTestTimeout, "deregistration done in the background", func() bool {
		v, _ := raw(t, direct, "/graylane/services/svc/10.0.0.1:80")
		return v == ""
	})
	value, _ = raw(t, direct, "/graylane/services/svc/10.0.0.2:80")
	assert.JSONEq(t, `{"addr":"10.0.0.2:80","health":"serving"}`, value)
	value, _ = raw(t, direct, "/graylane/services/svc/10.0.0.3:80")
	assert.Empty(t, value)
	_, err = reg.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", "gray"))
	assert.NoError(t, err, "deregistered, so free again")
	require.NoError(t, b.Update(ctx, registrytest.Inst("svc", "10.0.0.2:80", "v3")))
	value, _ = raw(t, direct, "/graylane/services/svc/10.0.0.2:80")
	assert.Contains(t, value, `"tag":"v3"`)
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client)
	const workers, each = 4, 20
	var writers, readers sync.WaitGroup
	writing, stop := context.WithCancel(ctx)
	for g := range workers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range each {
				h, err := reg.Register(ctx, registrytest.Inst("svc", fmt.Sprintf("10.%d.0.%d:80", g, i), ""))
				if !assert.NoError(t, err) {
					return
				}
				if i%2 == 0 {
					assert.NoError(t, h.Update(ctx, registrytest.Inst("svc", fmt.Sprintf("10.%d.0.%d:80", g, i), "gray")))
				}
				if i%4 == 0 {
					assert.NoError(t, h.Deregister(ctx))
				}
			}
		}()
		readers.Add(1)
		go func() {
			defer readers.Done()
			w, err := reg.Watch(ctx, "svc")
			if !assert.NoError(t, err) {
				return
			}
			defer w.Close()
			for {
				if _, err := w.Next(writing); err != nil {
					assert.ErrorIs(t, err, context.Canceled)
					return
				}
			}
		}()
	}
	writers.Wait()
	stop()
	readers.Wait()
	w, err := reg.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	want := workers * (each - each/4)
	waitFor(t, w, defaultTestTimeout, "all writes seen", func(s []registry.Instance) bool { return len(s) == want })
	resp, err := client.Get(ctx, "/graylane/services/svc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Equal(t, int64(want), resp.Count)
}
