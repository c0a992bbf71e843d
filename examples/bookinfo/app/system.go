// Package app runs the Bookinfo demo: every deployment of the four
// services as instances on loopback ports, registered in a registry, wired
// with graylane's middleware, interceptors, routing transport and
// balancer; the gateway that assigns tags at the edge; and the admin page
// that scales deployments and switches lanes between strict and loose.
//
// The services themselves (packages productpage, details, reviews,
// ratings) know nothing of lanes: everything lane-related is in the wiring
// here.
//
// The asynchronous hop (events.go, notifications.go): every product page
// view is published, asynchronously and tagged with the request's lane
// (natslane.NewMsg), on the subject bookinfo.pageviews of the JetStream
// stream BOOKINFO, on a NATS server embedded in the process (Config.NATSURL
// for an external one). The notifications deployments consume it through
// queue.New and natslane.NewConsumer in the consumer group
// notifications-events, registered in the demo's registry: their durable
// consumers are "notifications-events" (prod) and
// "notifications-events_gray". Scaling a notifications deployment down
// stops a consumer gracefully: it acknowledges what it processed, then
// deregisters, and the fallback lane takes over what it left.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// Config says what a System runs.
type Config struct {
	// GatewayAddr is where the gateway listens ("" for none), e.g. ":9080".
	GatewayAddr string
	// AdminAddr is where the admin page listens ("" for none), e.g.
	// "127.0.0.1:9091".
	AdminAddr string
	// Deployments lists the deployments this process runs (nil: all).
	Deployments []string
	// Replicas overrides the initial replica counts, by deployment name.
	Replicas map[string]int
	// StrictLanes start in strict mode.
	StrictLanes []string
	// Registry is where instances register. nil: an in-memory registry of
	// the System's own.
	Registry registry.Registry
	// Gateway settings.
	Gateway GatewayConfig
	// Productpage timeouts; zero values keep the original's.
	DetailsTimeout, ReviewsTimeout, RatingsTimeout time.Duration
	// Drain is how long an instance keeps serving after it has been
	// deregistered, before it stops (default 300ms).
	Drain time.Duration
	// Logger for the demo's own messages (default slog.Default()).
	Logger *slog.Logger
	// ListenHost is where instances listen (default 127.0.0.1), on random
	// ports unless InstancePort is set (one instance per process then).
	ListenHost   string
	InstancePort int
	// AdvertiseHost is the host instances register with (default
	// ListenHost; required when ListenHost is a wildcard such as 0.0.0.0).
	AdvertiseHost string
	// InstanceName, when set, names this process's one instance (e.g. the
	// pod name) instead of <deployment>-<n>.
	InstanceName string
	// Lane, when set, overrides the lane of every deployment this process
	// runs, as GRAYLANE_TAG set from a pod label does.
	Lane string
	// Telemetry is where metrics and spans go: every graylane metric and
	// productpage's request_result, served at the admin page's /metrics.
	// nil: the process's default Telemetry (DefaultTelemetry), without
	// tracing.
	Telemetry *Telemetry
	// AdminHosts are the host names, besides loopback names and the
	// address it listens on, that the admin page answers to (a defence
	// against DNS rebinding): e.g. the name of the machine.
	AdminHosts []string
	// NoRouting turns graylane's routing off, as a baseline for
	// measurements: every client calls the first instance of its service's
	// base-lane deployment directly, and lanes, fallback and the registry
	// play no part (the tag still travels). Only with every deployment in
	// this process.
	NoRouting bool
	// NATSURL is the NATS server (with JetStream) that carries the page
	// view events, e.g. "nats://127.0.0.1:4222". "": a server embedded in
	// this process when it runs every deployment or the gateway, listening
	// on NATSAddr (default 127.0.0.1 and a random port); otherwise no
	// events (and no notifications deployment).
	NATSURL, NATSAddr string
	// NoEvents turns the asynchronous hop off: no NATS, page views publish
	// nothing, and the notifications deployments must stay at 0.
	NoEvents bool
	// OnNotification, when set, is told of every event a notifications
	// consumer of this process processes.
	OnNotification func(Notification)
	// Dial, when set, dials the instances for the HTTP and gRPC clients
	// (tests use it to reach loopback servers behind made-up Pod IPs).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// System is a running demo.
type System struct {
	cfg     Config
	log     *slog.Logger
	reg     registry.Registry
	memReg  *registry.Memory // when the System owns its registry
	policy  *fallback.Dynamic
	router  *routing.Router
	prop    *propagation.Propagator // for clients: writes the context's tag
	tel     *Telemetry
	laneMap laneMapper
	// platformListed: the registry is read-only (Kubernetes), the platform
	// lists the instances, and Scale refuses.
	platformListed atomic.Bool

	detailsClient *http.Client
	reviewsConn   *grpc.ClientConn
	ratingsConn   *grpc.ClientConn
	ratingsStore  *ratings.Store
	events        *events // nil: no NATS
	notes         notifications

	mu      sync.Mutex
	strict  map[string]bool
	deps    map[string]*deployment
	servers []*http.Server
	gwAddr  string
	admAddr string
	gateway *gateway
	closed  bool

	// With NoRouting: the listeners of the fixed instances, by service
	// (see baseline.go).
	fixedLis map[string]net.Listener
}

// deployment is the running state of one Deployment.
type deployment struct {
	Deployment
	faults    *faults.Switch
	scaleMu   sync.Mutex // one scaling at a time
	mu        sync.Mutex
	instances []*instance
	nextID    int
}

// Start runs a System. Close stops it.
func Start(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Drain == 0 {
		cfg.Drain = 300 * time.Millisecond
	}
	s := &System{cfg: cfg, log: cfg.Logger, strict: map[string]bool{}, deps: map[string]*deployment{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.start(ctx); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *System) start(ctx context.Context) error {
	if s.cfg.ListenHost == "" {
		s.cfg.ListenHost = "127.0.0.1"
	}
	if s.cfg.AdvertiseHost == "" {
		if ip := net.ParseIP(s.cfg.ListenHost); ip != nil && ip.IsUnspecified() {
			return errors.New("instances listen on a wildcard address: set the host to advertise")
		}
		s.cfg.AdvertiseHost = s.cfg.ListenHost
	}
	if s.cfg.Lane != "" {
		if _, err := ParseLanes(s.cfg.Lane); err != nil && s.cfg.Lane != "prod" {
			return err
		}
	}
	s.tel = s.cfg.Telemetry
	if s.tel == nil {
		tel, err := DefaultTelemetry()
		if err != nil {
			return err
		}
		s.tel = tel
	}
	s.reg = s.cfg.Registry
	if s.reg == nil {
		s.memReg = registry.NewMemory()
		s.reg = s.memReg
	}
	for _, lane := range s.cfg.StrictLanes {
		if !s.knownLane(lane) {
			return fmt.Errorf("strict lane %q: %w", lane, ErrUnknownLane)
		}
		s.strict[lane] = true
	}
	p, err := s.buildPolicy()
	if err != nil {
		return err
	}
	s.policy = fallback.NewDynamic(p)
	if s.prop, err = s.newPropagator(""); err != nil {
		return err
	}
	if s.cfg.NoRouting {
		if err := s.listenFixed(); err != nil {
			return err
		}
	}
	if err := s.dialClients(); err != nil {
		return err
	}
	s.notes.hook = s.cfg.OnNotification
	if !s.cfg.NoEvents && (s.cfg.NATSURL != "" || s.cfg.Deployments == nil || s.cfg.GatewayAddr != "") {
		if s.events, err = startEvents(ctx, s.cfg.NATSURL, s.cfg.NATSAddr); err != nil {
			return err
		}
	}

	run := s.cfg.Deployments
	if run == nil {
		run = deploymentNames()
	}
	for name, n := range s.cfg.Replicas {
		if _, ok := deploymentByName(name); !ok {
			return fmt.Errorf("replicas: unknown deployment %q", name)
		}
		if n < 0 || n > MaxReplicas {
			return fmt.Errorf("replicas: %s=%d: want 0 to %d", name, n, MaxReplicas)
		}
	}
	for _, name := range run {
		d, ok := deploymentByName(name)
		if !ok {
			return fmt.Errorf("unknown deployment %q (known: %v)", name, deploymentNames())
		}
		if n, ok := s.cfg.Replicas[name]; ok {
			d.Replicas = n
		} else if s.cfg.Deployments != nil {
			d.Replicas = 1 // a process started for one deployment runs it
		}
		if s.cfg.Lane != "" {
			d.Lane = s.cfg.Lane
			if d.Lane == "prod" {
				d.Lane = ""
			}
		}
		if s.cfg.InstancePort != 0 && d.Replicas > 1 {
			return fmt.Errorf("%s: %d replicas on one fixed port", name, d.Replicas)
		}
		s.deps[name] = &deployment{Deployment: d, faults: &faults.Switch{}}
	}
	for _, name := range run {
		if err := s.scaleTo(ctx, s.deps[name], s.deps[name].Replicas); err != nil {
			return err
		}
	}
	if s.cfg.GatewayAddr != "" {
		gw, err := s.newGateway(s.cfg.Gateway)
		if err != nil {
			return err
		}
		s.gateway = gw
		if s.gwAddr, err = s.serve(s.cfg.GatewayAddr, gw); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	if s.cfg.AdminAddr != "" {
		// The admin page changes things with plain forms: refuse requests
		// that other sites' pages make a browser send.
		// It answers only to the names it is known by, so that a page
		// whose name is made to resolve to loopback (DNS rebinding)
		// cannot use it either.
		guard, err := newHostGuard(s.cfg.AdminAddr, s.cfg.AdminHosts)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		addr, err := s.serve(s.cfg.AdminAddr, guard.wrap(http.NewCrossOriginProtection().Handler(s.adminHandler())))
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		s.admAddr = addr
	}
	return nil
}

// serve listens on addr and serves h until Close; it returns the address
// actually bound.
func (s *System) serve(addr string, h http.Handler) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go srv.Serve(lis)
	return lis.Addr().String(), nil
}

// GatewayURL returns the gateway's base URL.
func (s *System) GatewayURL() string { return "http://" + loopbackIfWildcard(s.gwAddr) }

// NATSURL returns the URL of the NATS server that carries the page view
// events, "" when there is none.
func (s *System) NATSURL() string {
	if s.events == nil {
		return ""
	}
	return s.events.URL()
}

// AdminURL returns the admin page's base URL.
func (s *System) AdminURL() string { return "http://" + loopbackIfWildcard(s.admAddr) }

func loopbackIfWildcard(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// Faults returns the fault switch shared by the instances of a deployment.
func (s *System) Faults(deployment string) *faults.Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.deps[deployment]; d != nil {
		return d.faults
	}
	return nil
}

// SetLaneMode switches a lane between loose and strict.
func (s *System) SetLaneMode(lane string, m fallback.Mode) error {
	lanes, err := ParseLanes(lane)
	if err != nil {
		return err
	}
	if len(lanes) != 1 {
		return fmt.Errorf("lane %q: want one lane", lane)
	}
	if !s.knownLane(lane) {
		return fmt.Errorf("lane %q: %w", lane, ErrUnknownLane)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.strict[lane]
	s.strict[lane] = m == fallback.Strict
	p, err := s.buildPolicyLocked()
	if err != nil {
		s.strict[lane] = prev
		return err
	}
	s.policy.Store(p)
	s.log.Info("lane mode", "lane", lane, "mode", m)
	return nil
}

// ErrUnknownLane is the error of a lane no deployment of the demo belongs
// to.
var ErrUnknownLane = errors.New("no such lane: no deployment of the demo belongs to it")

// knownLane reports whether a deployment of the demo is of lane.
func (s *System) knownLane(lane string) bool {
	if s.cfg.Lane != "" && s.cfg.Lane == lane {
		return true
	}
	for _, d := range Deployments() {
		if d.LaneName() == lane {
			return true
		}
	}
	return false
}

// StrictLanes returns the lanes in strict mode, sorted.
func (s *System) StrictLanes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for lane, on := range s.strict {
		if on {
			out = append(out, lane)
		}
	}
	slices.Sort(out)
	return out
}

func (s *System) buildPolicy() (*fallback.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buildPolicyLocked()
}

// buildPolicyLocked names every lane of the demo in the policy, each in
// its mode: a lane the policy names is counted under its own name in the
// decision metrics even for a service that has no instance of it (other
// tags count as routing.UnknownTag).
func (s *System) buildPolicyLocked() (*fallback.Policy, error) {
	var opts []fallback.Option
	seen := map[string]bool{tag.Base: true}
	lanes := []string{s.cfg.Lane}
	for _, d := range Deployments() {
		lanes = append(lanes, d.LaneName())
	}
	for _, lane := range lanes {
		if lane == "" {
			continue
		}
		if seen[lane] {
			continue
		}
		seen[lane] = true
		mode := fallback.Loose
		if s.strict[lane] {
			mode = fallback.Strict
		}
		opts = append(opts, fallback.WithLaneMode(lane, mode))
	}
	return fallback.NewPolicy(opts...)
}

// closeIdle closes the idle connections of this process's HTTP clients.
func (s *System) closeIdle() {
	if s.detailsClient != nil {
		s.detailsClient.CloseIdleConnections()
	}
	s.mu.Lock()
	gw := s.gateway
	s.mu.Unlock()
	if gw != nil {
		gw.transport.CloseIdleConnections()
	}
}

// Close stops everything: the gateway and admin page, then every instance
// (deregistered first), then the clients.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	deps := make([]*deployment, 0, len(s.deps))
	for _, d := range s.deps {
		deps = append(deps, d)
	}
	s.mu.Unlock()

	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	if s.gateway != nil {
		s.gateway.close()
	}
	s.closeIdle()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
	)
	for _, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.scaleTo(ctx, d, 0); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.reviewsConn != nil {
		s.reviewsConn.Close()
	}
	if s.ratingsConn != nil {
		s.ratingsConn.Close()
	}
	if s.detailsClient != nil {
		s.detailsClient.CloseIdleConnections()
	}
	if s.router != nil {
		s.router.Close()
	}
	if s.events != nil {
		s.events.close()
	}
	if s.memReg != nil {
		s.memReg.Close()
	}

	for _, lis := range s.fixedLis {
		lis.Close() // those of deployments started at 0 were never served
	}
	return errors.Join(errs...)
}
