package kubernetes

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/kubernetes/kubetest"
	"github.com/graylane/graylane/registry/registrytest"
)

// TestAPIServerDown stops the API server for 3 s (and the time it takes
// to start again) while clients call both lanes of a service: no call
// fails, the lanes stay as they were, and the Registry follows changes
// again once the API server is back, with no restart.
func TestAPIServerDown(t *testing.T) {
	s := needServer(t)
	c := newCluster(t)
	prod, gray := startBackend(t, "prod"), startBackend(t, "gray")
	c.deploy(prod, "svc", nil)
	c.deploy(gray, "svc", map[string]string{DefaultLaneLabel: "gray"})
	reg := c.registry(nil, WithPortName("grpc"))
	client := dial(t, reg, "svc")
	eventually(t, client, "gray", "gray routed", time.Now(), servedBy("gray", ""))

	ctx, stopLoad := context.WithCancel(bg)
	var (
		wg                   sync.WaitGroup
		calls, failed, wrong atomic.Int64
		firstErr             atomic.Value
	)
	for i := range 4 {
		lane, want := "", "prod ()"
		if i%2 == 1 {
			lane, want = "gray", "gray ()"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := call(ctx, client, lane)
				if ctx.Err() != nil {
					return
				}
				calls.Add(1)
				switch {
				case r.err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, r.err)
				case r.String() != want:
					wrong.Add(1)
				}
			}
		}()
	}
	defer func() { stopLoad(); wg.Wait() }()

	before := calls.Load()
	down := time.Now()
	s.Stop()
	<-time.After(3 * time.Second) // the outage itself: the load runs meanwhile
	require.NoError(t, s.Restart())
	back := time.Now()
	during := calls.Load() - before
	t.Logf("API server down for %v (3 s stopped, then its start); %d calls meanwhile", back.Sub(down).Round(time.Millisecond), during)

	stopLoad()
	wg.Wait()
	t.Logf("%d calls in all, %d failed, %d answered by the other lane", calls.Load(), failed.Load(), wrong.Load())
	assert.Positive(t, during)
	assert.Zero(t, failed.Load(), "failed calls (first: %v)", firstErr.Load())
	assert.Zero(t, wrong.Load(), "calls answered by the other lane")

	// Recovered by itself: a change made now reaches the clients.
	c.label(gray.name, DefaultLaneLabel, ptr("v3"))
	_, took := eventually(t, client, "gray", "a change after the outage", back, fellBack("noinstances"))
	t.Logf("first change after the API server was back routed %v after it was ready", took.Round(time.Millisecond))
}

// TestWatchExpired makes the Registry's watches resume from a resource
// version that etcd has compacted away: the API server answers 410 Gone,
// the informers list again, and the Registry keeps every instance meanwhile
// and takes the changes it missed. A separate API server reads etcd
// directly (--watch-cache=false), so that compacting etcd expires the
// watches.
func TestWatchExpired(t *testing.T) {
	bin := kubetest.Require(t)
	s, err := kubetest.Start(bin, t.TempDir(), kubetest.Options{Args: []string{"--watch-cache=false"}})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	c := newClusterOn(t, s)

	g := &watchGate{lists: map[string]int{}, blocked: make(chan string, 16)}
	cfg := s.AdminConfig()
	cfg.WrapTransport = g.wrap
	c.pod("a", map[string]string{DefaultLaneLabel: "gray"}, nil)
	c.pod("b", nil, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b"})
	reg := c.registry(cfg)
	w := watchService(t, reg, "svc")
	registrytest.WaitFor(t, w, wait, "first set", is("10.0.0.1:80/gray", "10.0.0.2:80/prod"))
	// An event on each watch, so that they end as established watches do.
	c.pod("c", nil, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b"}, ep{ip: "10.0.0.3", pod: "c"})
	registrytest.WaitFor(t, w, wait, "c added", is("10.0.0.1:80/gray", "10.0.0.2:80/prod", "10.0.0.3:80/prod"))
	listsBefore := g.listCounts()

	// The watches end, as at their timeout; their next requests wait.
	g.hold()
	g.endWatches()
	for range 2 {
		select {
		case <-g.blocked:
		case <-time.After(wait):
			t.Fatal("the informers did not watch again")
		}
	}
	// Meanwhile: c goes, d comes, b changes lane, and etcd forgets the
	// history the watches would resume from.
	c.deletePod("c")
	c.pod("d", nil, nil)
	c.slice("s", "svc", "", 80, ep{ip: "10.0.0.1", pod: "a"}, ep{ip: "10.0.0.2", pod: "b"}, ep{ip: "10.0.0.4", pod: "d"})
	c.label("b", DefaultLaneLabel, ptr("v3"))
	_, err = s.CompactEtcd(bg)
	require.NoError(t, err)
	g.release()

	var dropped []string
	registrytest.WaitFor(t, w, wait, "the missed changes", func(insts []registry.Instance) bool {
		addrs := strings.Join(registrytest.Addrs(insts), " ")
		if !strings.Contains(addrs, "10.0.0.1:80/") || !strings.Contains(addrs, "10.0.0.2:80/") {
			dropped = append(dropped, addrs)
		}
		return is("10.0.0.1:80/gray", "10.0.0.2:80/v3", "10.0.0.4:80/prod")(insts)
	})
	assert.Empty(t, dropped, "sets without the live instances")
	assert.GreaterOrEqual(t, g.expired.Load(), int64(1), "watches answered 410 Gone")
	after := g.listCounts()
	for _, res := range []string{"pods", "endpointslices"} {
		assert.Greater(t, after[res], listsBefore[res], "%s listed again", res)
	}
	t.Logf("watches expired: %d; lists before %v, after %v", g.expired.Load(), listsBefore, after)
}

// watchGate sits in the Registry's HTTP transport: it counts lists, can
// end the open watches as the API server does at their timeout, and can
// hold new watch requests back.
type watchGate struct {
	mu      sync.Mutex
	held    chan struct{} // closed on release; nil when not holding
	bodies  map[*gatedBody]struct{}
	lists   map[string]int // by resource
	blocked chan string    // a watch request is held
	expired atomic.Int64   // watch responses that said 410
}

func resourceOf(req *http.Request) string {
	switch {
	case strings.HasSuffix(req.URL.Path, "/pods"):
		return "pods"
	case strings.HasSuffix(req.URL.Path, "/endpointslices"):
		return "endpointslices"
	}
	return ""
}

func (g *watchGate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		res := resourceOf(req)
		q := req.URL.Query()
		if res == "" {
			return rt.RoundTrip(req)
		}
		watch := q.Get("watch") == "true" || q.Get("watch") == "1"
		list := !watch || q.Get("sendInitialEvents") == "true" // a watch that begins with a list
		g.mu.Lock()
		held := g.held
		if list {
			g.lists[res]++
			held = nil
		}
		g.mu.Unlock()
		if !watch {
			return rt.RoundTrip(req)
		}
		if held != nil {
			g.blocked <- res
			select {
			case <-held:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		b := &gatedBody{ReadCloser: resp.Body, g: g}
		g.mu.Lock()
		if g.bodies == nil {
			g.bodies = map[*gatedBody]struct{}{}
		}
		g.bodies[b] = struct{}{}
		g.mu.Unlock()
		resp.Body = b
		return resp, nil
	})
}

func (g *watchGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = make(chan struct{})
}

func (g *watchGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.held)
	g.held = nil
}

// endWatches ends every open watch response with EOF.
func (g *watchGate) endWatches() {
	g.mu.Lock()
	bodies := g.bodies
	g.bodies = nil
	g.mu.Unlock()
	for b := range bodies {
		b.ended.Store(true)
		b.ReadCloser.Close()
	}
}

func (g *watchGate) listCounts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.lists {
		out[k] = v
	}
	return out
}

type gatedBody struct {
	io.ReadCloser
	g     *watchGate
	ended atomic.Bool
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if b.ended.Load() {
		return 0, io.EOF
	}
	if bytes.Contains(p[:n], []byte("too old")) {
		b.g.expired.Add(1)
	}
	return n, err
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
