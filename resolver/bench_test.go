package resolver

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/connectivity"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/lanes"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// fakeCC is a balancer.ClientConn whose SubConns connect at once, so that a
// balancer can be driven, and its picker measured, without a network.
type fakeCC struct {
	balancer.ClientConn
	mu     sync.Mutex
	picker balancer.Picker
	state  connectivity.State
	ready  chan struct{}
}

type fakeSC struct {
	balancer.SubConn
	listener func(balancer.SubConnState)
}

func (sc *fakeSC) Connect() {
	go func() {
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	}()
}
func (sc *fakeSC) Shutdown()                              {}
func (sc *fakeSC) UpdateAddresses([]grpcresolver.Address) {}
func (sc *fakeSC) RegisterHealthListener(l func(balancer.SubConnState)) {
	go l(balancer.SubConnState{ConnectivityState: connectivity.Ready})
}

func (cc *fakeCC) NewSubConn(_ []grpcresolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	return &fakeSC{listener: opts.StateListener}, nil
}
func (cc *fakeCC) UpdateState(s balancer.State) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.picker, cc.state = s.Picker, s.ConnectivityState
	select {
	case cc.ready <- struct{}{}:
	default:
	}
}
func (cc *fakeCC) ResolveNow(grpcresolver.ResolveNowOptions) {}

// endpoints returns n endpoints spread over lanes lanes ("lane-0" is the
// base lane, written as "").
func endpoints(n, lanes int) []grpcresolver.Endpoint {
	eps := make([]grpcresolver.Endpoint, n)
	for i := range eps {
		lane := ""
		if l := i % lanes; l > 0 {
			lane = "lane-" + strconv.Itoa(l)
		}
		eps[i] = grpcresolver.Endpoint{
			Addresses:  []grpcresolver.Address{{Addr: "10.0.0.1:" + strconv.Itoa(1000+i)}},
			Attributes: attributes.New(laneAttr{}, lane).WithValue(infoAttr{}, endpointInfo{weight: 1}),
		}
	}
	return eps
}

// readyPicker builds the named balancer over the endpoints and waits until
// every endpoint is ready.
func readyPicker(b testing.TB, name string, eps []grpcresolver.Endpoint, cfg any) (balancer.Picker, func()) {
	cc := &fakeCC{ready: make(chan struct{}, 1)}
	bal := balancer.Get(name).Build(cc, balancer.BuildOptions{Target: grpcresolver.Target{}})
	ccs := balancer.ClientConnState{ResolverState: grpcresolver.State{Endpoints: eps}}
	if cfg != nil {
		ccs.BalancerConfig = cfg.(*LBConfig)
	}
	if err := bal.UpdateClientConnState(ccs); err != nil {
		b.Fatal(err)
	}
	for {
		<-cc.ready
		cc.mu.Lock()
		p := cc.picker
		cc.mu.Unlock()
		if allReady(p, name, len(eps)) {
			return p, bal.Close
		}
	}
}

func allReady(p balancer.Picker, name string, n int) bool {
	switch p := p.(type) {
	case *picker:
		total := 0
		seen := map[*laneView]bool{}
		for _, r := range p.byLane.All() {
			if r.lane != nil && !seen[r.lane] && r.lane.state == fallback.Ready {
				seen[r.lane] = true
				total += len(r.lane.ready)
			}
		}
		return total == n
	default:
		for range n * 4 {
			if _, err := p.Pick(balancer.PickInfo{Ctx: context.Background()}); err != nil {
				return false
			}
		}
		return true
	}
}

// BenchmarkPick measures Pick against grpc-go's round_robin (impl=round_robin)
// over the same ready endpoints, from 3 to 300 instances and 1 to 100
// lanes. Compare with benchstat -col /impl.
func BenchmarkPick(b *testing.B) {
	cfg := &LBConfig{}
	cases := []struct{ instances, lanes int }{{3, 1}, {300, 1}, {300, 100}, {3, 3}}
	for _, c := range cases {
		eps := endpoints(c.instances, c.lanes)
		ctx := context.Background()
		if c.lanes > 1 {
			ctx = tag.NewContext(ctx, tag.MustParse("lane-"+strconv.Itoa(c.lanes-1)))
		}
		info := balancer.PickInfo{FullMethodName: "/svc/Method", Ctx: ctx}
		name := fmt.Sprintf("instances=%d/lanes=%d", c.instances, c.lanes)
		for _, impl := range []string{BalancerName, roundrobin.Name} {
			var conf any
			if impl == BalancerName {
				conf = cfg
			}
			p, closeFn := readyPicker(b, impl, eps, conf)
			runtime.GC() // not the garbage of building the balancer during the measurement
			b.Run(name+"/impl="+impl, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Pick(info); err != nil {
						b.Fatal(err)
					}
				}
			})
			closeFn()
		}
	}
}

// instancesIn returns n instances spread over lanes lanes.
func instancesIn(n, lanes int) []registry.Instance {
	out := make([]registry.Instance, n)
	for i := range out {
		out[i] = registry.Instance{Service: "svc", Addr: fmt.Sprintf("10.%d.%d.%d:80", i>>16, (i>>8)&255, i&255), Name: "svc-" + strconv.Itoa(i)}
		if l := i % lanes; l > 0 {
			out[i].Tag = tag.MustParse("lane-" + strconv.Itoa(l))
		}
	}
	return out
}

// BenchmarkResolverUpdate measures what one registry update costs
// graylane's resolver (the instance set turned into a resolver state) and
// balancer (lanes grouped, every decision worked out, the picker built),
// for 1,000 and 10,000 instances in 100 lanes. ns/op divided by the
// instance count stays flat: the work is O(instances).
func BenchmarkResolverUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		insts := instancesIn(n, 100)
		r := &grpcResolver{b: NewBuilder(registry.NewMemory())}
		b.Run(fmt.Sprintf("stage=resolver/instances=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s := r.state(insts); len(s.Endpoints) != n {
					b.Fatal(len(s.Endpoints))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/instance")
		})

		state := r.state(insts)
		bal := &tagBalancer{
			cc: &fakeCC{ready: make(chan struct{}, 1)}, service: "svc",
			lanes: map[string]*laneInfo{}, parked: map[string]bool{}, counters: lanes.Shared(nil).NewCounters(),
		}
		bal.cfg = &LBConfig{}
		bal.policy = bal.cfg.policy()
		bal.endpoints = state.Endpoints
		ready := readyPickerStub{}
		for _, ep := range state.Endpoints {
			bal.childStates = append(bal.childStates, endpointsharding.ChildState{
				Endpoint: ep,
				State:    balancer.State{ConnectivityState: connectivity.Ready, Picker: ready},
			})
		}
		b.Run(fmt.Sprintf("stage=balancer/instances=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			bal.mu.Lock()
			defer bal.mu.Unlock()
			for b.Loop() {
				bal.publishLocked()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/instance")
		})
	}
}

type readyPickerStub struct{}

func (readyPickerStub) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, nil
}

// BenchmarkRebuild measures what one instance flapping costs the balancer
// of a service of 1,000 instances in 100 lanes: each op turns the
// instance's child not ready, or ready again, and builds the picker
// (stage=flap); beside it, the same rebuild with nothing changed
// (stage=same), the least a rebuild costs. While it runs, metrics are
// collected in a loop (collect=true), as a Prometheus scrape would: it
// shares the CPU but no lock with the rebuild (TestCollectionDoesNotBlockDecisions
// in internal/lanes holds a collection mid-way and builds counters
// meanwhile). Bar: a rebuild under 1 ms.
func BenchmarkRebuild(b *testing.B) {
	for _, collect := range []bool{false, true} {
		for _, stage := range []string{"same", "flap"} {
			b.Run(fmt.Sprintf("instances=1000/lanes=100/stage=%s/collect=%v", stage, collect), func(b *testing.B) {
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				defer mp.Shutdown(context.Background())
				tel := lanes.New(mp, nil)
				defer tel.Close()
				insts := instancesIn(1000, 100)
				r := &grpcResolver{b: NewBuilder(registry.NewMemory())}
				state := r.state(insts)
				bal := &tagBalancer{
					cc: &fakeCC{ready: make(chan struct{}, 1)}, service: "svc",
					lanes: map[string]*laneInfo{}, parked: map[string]bool{}, counters: tel.NewCounters(), cfg: &LBConfig{},
				}
				bal.policy = bal.cfg.policy()
				bal.endpoints = state.Endpoints
				for _, ep := range state.Endpoints {
					bal.childStates = append(bal.childStates, endpointsharding.ChildState{
						Endpoint: ep,
						State:    balancer.State{ConnectivityState: connectivity.Ready, Picker: readyPickerStub{}},
					})
				}
				bal.mu.Lock()
				bal.publishLocked() // the counters exist before the measurement
				bal.mu.Unlock()
				stop := make(chan struct{})
				var wg sync.WaitGroup
				if collect {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var rm metricdata.ResourceMetrics
						for {
							select {
							case <-stop:
								return
							default:
							}
							if err := reader.Collect(context.Background(), &rm); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				flap := &bal.childStates[7]
				b.ReportAllocs()
				for b.Loop() {
					if stage == "flap" {
						if flap.State.ConnectivityState == connectivity.Ready {
							flap.State.ConnectivityState = connectivity.TransientFailure
						} else {
							flap.State.ConnectivityState = connectivity.Ready
						}
					}
					bal.mu.Lock()
					bal.publishLocked()
					bal.mu.Unlock()
				}
				close(stop)
				wg.Wait()
			})
		}
	}
}
