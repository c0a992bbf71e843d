// Package registrytest checks that a registry.Registry keeps the contract
// that graylane's gRPC resolver, balancer and Router rely on, and offers
// the helpers those checks use to the implementation's own tests. Run the
// checks from a test of the implementation:
//
//	func TestContract(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Registry {
//			reg := myregistry.New(...)
//			t.Cleanup(func() { reg.Close() })
//			return reg
//		})
//	}
//
// The checks work for registries that deliver changes asynchronously: they
// read a Watcher until the expected set arrives, within Timeout. Only the
// first Watcher of a service is held to return, at once, every instance
// whose Register has returned; later Watchers of the same service may
// start from a view the registry shares between them. The checks use the
// services "svc" and "other" (and "sv", "svc2") and addresses in
// 10.0.0.0/8.
package registrytest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// Timeout bounds every wait of the checks and of Next.
const Timeout = 10 * time.Second

// Run checks the registries that newRegistry returns, a fresh one for each
// check. If they implement io.Closer, Run also checks that closing one
// ends its watchers and refuses new registrations.
func Run(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	t.Run("first set", func(t *testing.T) { firstSet(t, newRegistry(t)) })
	t.Run("changes", func(t *testing.T) { changes(t, newRegistry(t)) })
	t.Run("other services", func(t *testing.T) { otherServices(t, newRegistry(t)) })
	t.Run("slow watcher", func(t *testing.T) { slowWatcher(t, newRegistry(t)) })
	t.Run("invalid", func(t *testing.T) { invalid(t, newRegistry(t)) })
	t.Run("concurrent", func(t *testing.T) { concurrent(t, newRegistry(t)) })
	t.Run("close", func(t *testing.T) { closing(t, newRegistry(t)) })
}

// Inst returns an instance of service at addr in lane ("" for the base lane).
func Inst(service, addr, lane string) registry.Instance {
	in := registry.Instance{Service: service, Addr: addr}
	if lane != "" {
		in.Tag = tag.MustParse(lane)
	}
	return in
}

// Next returns the watcher's next set, failing the test after Timeout.
func Next(tb testing.TB, w registry.Watcher) []registry.Instance {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := w.Next(ctx)
	require.NoError(tb, err)
	return got
}

// Addrs renders a set as "addr/lane" strings, "prod" for the base lane.
func Addrs(insts []registry.Instance) []string {
	out := []string{}
	for _, in := range insts {
		out = append(out, in.Addr+"/"+in.Lane(tag.Base))
	}
	return out
}

// WaitFor reads sets from w until ok accepts one, within timeout, and
// returns that set and the time it took.
func WaitFor(tb testing.TB, w registry.Watcher, timeout time.Duration, what string, ok func([]registry.Instance) bool) ([]registry.Instance, time.Duration) {
	tb.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last []registry.Instance
	for {
		got, err := w.Next(ctx)
		if err != nil {
			tb.Fatalf("%s: not within %v (%v); last set %v", what, timeout, err, Addrs(last))
		}
		last = got
		if ok(got) {
			return got, time.Since(start)
		}
	}
}

// Is accepts the sets whose Addrs are want.
func Is(want ...string) func([]registry.Instance) bool {
	return func(insts []registry.Instance) bool {
		got := Addrs(insts)
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
}

func watch(t *testing.T, reg registry.Registry, service string) registry.Watcher {
	t.Helper()
	w, err := reg.Watch(context.Background(), service)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func register(t *testing.T, reg registry.Registry, in registry.Instance) registry.Registration {
	t.Helper()
	r, err := reg.Register(context.Background(), in)
	require.NoError(t, err)
	return r
}

// firstSet: the first Next returns the current set, sorted by address,
// and an empty one for a service without instances.
func firstSet(t *testing.T, reg registry.Registry) {
	assert.Empty(t, Next(t, watch(t, reg, "other")), "a service without instances")
	for _, a := range []string{"10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"} {
		register(t, reg, Inst("svc", a, ""))
	}
	// Register has returned, and nothing in the process follows "svc" yet:
	// the first watch of it has all three at once.
	want := []string{"10.0.0.1:80/prod", "10.0.0.2:80/prod", "10.0.0.3:80/prod"}
	assert.Equal(t, want, Addrs(Next(t, watch(t, reg, "svc"))), "the first Next returns the current set, sorted by address")
	// A second watch may share the first one's view, which a registry that
	// delivers changes late may still be bringing up to date.
	WaitFor(t, watch(t, reg, "svc"), Timeout, "a second watch", Is(want...))
}

// changes: registrations, updates and deregistrations reach a watcher,
// tag and metadata intact; the errors of the contract.
func changes(t *testing.T, reg registry.Registry) {
	ctx := context.Background()
	w := watch(t, reg, "svc")
	Next(t, w)
	r1 := register(t, reg, Inst("svc", "10.0.0.2:80", ""))
	WaitFor(t, w, Timeout, "registered", Is("10.0.0.2:80/prod"))

	r2 := register(t, reg, registry.Instance{Service: "svc", Addr: "10.0.0.1:80", Name: "gray-0",
		Tag: tag.MustParse("gray"), Weight: 3, Metadata: map[string]string{"version": "v2"}})
	got, _ := WaitFor(t, w, Timeout, "a second one", Is("10.0.0.1:80/gray", "10.0.0.2:80/prod"))
	assert.Equal(t, "gray-0", got[0].Name)
	assert.Equal(t, uint32(3), got[0].Weight)
	assert.Equal(t, map[string]string{"version": "v2"}, got[0].Metadata)
	assert.Equal(t, registry.Serving, got[0].Health)

	_, err := reg.Register(ctx, Inst("svc", "10.0.0.1:80", "v3"))
	assert.ErrorIs(t, err, registry.ErrDuplicate)
	_, err = reg.Register(ctx, Inst("other", "10.0.0.1:80", ""))
	assert.NoError(t, err, "the same address in another service is another instance")

	upd := r2.Instance()
	upd.Tag, upd.Health = tag.MustParse("v3"), registry.NotServing
	require.NoError(t, r2.Update(ctx, upd))
	got, _ = WaitFor(t, w, Timeout, "retagged", Is("10.0.0.1:80/v3", "10.0.0.2:80/prod"))
	assert.Equal(t, registry.NotServing, got[0].Health)
	assert.Equal(t, "v3", r2.Instance().Tag.String())
	assert.ErrorIs(t, r2.Update(ctx, Inst("svc", "10.0.0.9:80", "")), registry.ErrInvalidInstance, "the address is fixed")

	require.NoError(t, r1.Deregister(ctx))
	require.NoError(t, r1.Deregister(ctx), "idempotent")
	WaitFor(t, w, Timeout, "deregistered", Is("10.0.0.1:80/v3"))
	assert.Equal(t, "10.0.0.2:80", r1.Instance().Addr, "Instance after Deregister")
	assert.ErrorIs(t, r1.Update(ctx, r1.Instance()), registry.ErrNotRegistered)

	register(t, reg, Inst("svc", "10.0.0.2:80", "gray"))
	WaitFor(t, w, Timeout, "the address free again", Is("10.0.0.1:80/v3", "10.0.0.2:80/gray"))
}

// otherServices: changes to other services, even with names that share a
// prefix, do not wake a watcher.
func otherServices(t *testing.T, reg registry.Registry) {
	w := watch(t, reg, "svc")
	Next(t, w)
	register(t, reg, Inst("svc2", "10.0.1.1:80", ""))
	register(t, reg, Inst("sv", "10.0.1.2:80", ""))
	register(t, reg, Inst("svc", "10.0.1.3:80", ""))
	got := Next(t, w)
	assert.Equal(t, []string{"10.0.1.3:80/prod"}, Addrs(got), "only this service's change wakes the watcher")
}

// slowWatcher: registrations never wait for a watcher that does not read,
// and the watcher skips to the last set.
func slowWatcher(t *testing.T, reg registry.Registry) {
	const n = 100
	w := watch(t, reg, "svc")
	Next(t, w)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := reg.Register(context.Background(), Inst("svc", fmt.Sprintf("10.0.2.%d:80", i), "")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(Timeout):
		t.Fatal("registration blocked on a watcher that does not read")
	}
	reads := 0
	WaitFor(t, w, Timeout, "all registered", func(s []registry.Instance) bool { reads++; return len(s) == n })
	assert.Less(t, reads, n, "intermediate sets are skipped")
}

// invalid: instances that fail Validate are refused with
// ErrInvalidInstance, and so are watches of names that are no service.
func invalid(t *testing.T, reg registry.Registry) {
	ctx := context.Background()
	for _, in := range []registry.Instance{
		{Service: "bad name", Addr: "10.0.0.1:80"},
		{Service: "svc", Addr: "no-port"},
		{Service: "svc", Addr: "10.0.0.1:80", Weight: registry.MaxWeight + 1},
		{Service: "svc", Addr: "10.0.0.1:80", Health: 9},
	} {
		_, err := reg.Register(ctx, in)
		assert.ErrorIs(t, err, registry.ErrInvalidInstance, "%+v", in)
	}
	_, err := reg.Watch(ctx, "not/a/service")
	assert.ErrorIs(t, err, registry.ErrInvalidInstance)
	r := register(t, reg, Inst("svc", "10.0.0.1:80", "gray"))
	bad := r.Instance()
	bad.Health = 9
	assert.ErrorIs(t, r.Update(ctx, bad), registry.ErrInvalidInstance)
	assert.Equal(t, "gray", r.Instance().Tag.String(), "a refused update changes nothing")
}

// concurrent: writers and watchers at once; every watcher ends on the
// last state.
func concurrent(t *testing.T, reg registry.Registry) {
	ctx := context.Background()
	const workers, each = 4, 20
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				addr := fmt.Sprintf("10.%d.0.%d:80", g+1, i)
				h, err := reg.Register(ctx, Inst("svc", addr, ""))
				if !assert.NoError(t, err) {
					return
				}
				if i%2 == 0 {
					assert.NoError(t, h.Update(ctx, Inst("svc", addr, "gray")))
				}
				if i%4 == 0 {
					assert.NoError(t, h.Deregister(ctx))
				}
			}
		}()
	}
	watchers := make([]registry.Watcher, workers)
	for i := range watchers {
		watchers[i] = watch(t, reg, "svc")
	}
	wg.Wait()
	want := workers * (each - each/4)
	for _, w := range watchers {
		got, _ := WaitFor(t, w, Timeout, "every write seen", func(s []registry.Instance) bool { return len(s) == want })
		gray := 0
		for _, in := range got {
			if in.Tag.String() == "gray" {
				gray++
			}
		}
		assert.Equal(t, workers*each/4, gray)
	}
}

// closing: a closed Watcher says ErrClosed, a cancelled Next the context's
// error; a closed Registry ends its watchers and refuses registrations.
func closing(t *testing.T, reg registry.Registry) {
	ctx := context.Background()
	w, err := reg.Watch(ctx, "svc")
	require.NoError(t, err)
	Next(t, w)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "idempotent")
	_, err = w.Next(ctx)
	assert.ErrorIs(t, err, registry.ErrClosed)

	w = watch(t, reg, "svc")
	Next(t, w)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = w.Next(cancelled)
	assert.ErrorIs(t, err, context.Canceled)

	c, ok := reg.(io.Closer)
	if !ok {
		return
	}
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
	_, err = w.Next(ctx)
	assert.ErrorIs(t, err, registry.ErrClosed, "closing the registry ends its watchers")
	_, err = reg.Register(ctx, Inst("svc", "10.0.0.1:80", ""))
	assert.ErrorIs(t, err, registry.ErrClosed)
}
