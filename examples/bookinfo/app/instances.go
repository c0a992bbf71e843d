package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// instance is one running copy of a deployment.
type instance struct {
	name    string
	addr    string
	started time.Time
	reg     registry.Registration // nil for a consumer: it registers itself
	stop    func(ctx context.Context) error
	// consumer is the instance of a notifications deployment.
	consumer *registered
}

// registration returns the instance's registration, nil until it has one.
func (in *instance) registration() registry.Registration {
	if in.consumer != nil {
		return in.consumer.registration()
	}
	return in.reg
}

// ErrPlatformScaled is the error of Scale on a read-only registry
// (Kubernetes): the instances are Pods, which the platform starts and
// lists, so this process cannot add or remove any.
var ErrPlatformScaled = errors.New("instances here are Pods listed by Kubernetes (read-only registry): " +
	"scale the Deployment instead, e.g. kubectl scale deployment <name> --replicas=N")

// Scale sets the number of instances of a deployment: new instances start
// and register; on the way down, instances are deregistered first, keep
// serving for the drain period while clients move away, then stop
// gracefully, so that no request in flight is lost.
func (s *System) Scale(ctx context.Context, name string, replicas int) error {
	if replicas < 0 || replicas > MaxReplicas {
		return fmt.Errorf("scale %s: %d replicas: want 0 to %d", name, replicas, MaxReplicas)
	}
	s.mu.Lock()
	d := s.deps[name]
	closed := s.closed
	s.mu.Unlock()
	if d == nil {
		return fmt.Errorf("scale: this process runs no deployment %q", name)
	}
	if closed {
		return errors.New("scale: the system is stopping")
	}
	if s.platformListed.Load() {
		return fmt.Errorf("scale %s: %w", name, ErrPlatformScaled)
	}
	return s.scaleTo(ctx, d, replicas)
}

func (s *System) scaleTo(ctx context.Context, d *deployment, replicas int) error {
	d.scaleMu.Lock()
	defer d.scaleMu.Unlock()
	d.mu.Lock()
	have := len(d.instances)
	d.mu.Unlock()
	for ; have < replicas; have++ {
		in, err := s.startInstance(ctx, d)
		if err != nil {
			return fmt.Errorf("scale %s: %w", d.Name, err)
		}
		d.mu.Lock()
		d.instances = append(d.instances, in)
		d.mu.Unlock()
		s.log.Info("instance started", "instance", in.name, "addr", in.addr, "lane", d.LaneName())
	}
	if have <= replicas {
		return nil
	}
	d.mu.Lock()
	gone := append([]*instance(nil), d.instances[replicas:]...)
	d.instances = d.instances[:replicas]
	d.mu.Unlock()

	var errs []error
	for _, in := range gone {
		if in.reg == nil {
			continue // a consumer deregisters once it has stopped taking messages
		}
		if err := in.reg.Deregister(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	select { // clients move away while the instances still serve
	case <-time.After(s.cfg.Drain):
	case <-ctx.Done():
	}
	// Connections opened ahead of need and never used would hold a
	// graceful shutdown for seconds: close the clients' idle ones.
	s.closeIdle()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, in := range gone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.stop(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop %s: %w", in.name, err))
				mu.Unlock()
			}
			s.log.Info("instance stopped", "instance", in.name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startInstance runs one instance of d on a loopback port and registers it.
func (s *System) startInstance(ctx context.Context, d *deployment) (*instance, error) {
	d.mu.Lock()
	id := d.nextID
	name := fmt.Sprintf("%s-%d", d.Name, id)
	if s.cfg.InstanceName != "" && id == 0 {
		name = s.cfg.InstanceName
	}
	d.nextID++
	d.mu.Unlock()

	if d.Service == "notifications" { // a consumer: it listens nowhere
		in := &instance{name: name, started: time.Now()}
		if err := s.startConsumer(ctx, d, in); err != nil {
			return nil, err
		}
		return in, nil
	}

	var lis net.Listener
	if fixed := s.fixedLis[d.Service]; fixed != nil && d.Lane == "" && id == 0 {
		lis = fixed // with routing off, clients call this one
	} else {
		var err error
		addr := net.JoinHostPort(s.cfg.ListenHost, strconv.Itoa(s.cfg.InstancePort))
		if lis, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	in := &instance{name: name, addr: net.JoinHostPort(s.cfg.AdvertiseHost, port), started: time.Now()}
	self := receipt.Self{Service: d.Service, Instance: name, Lane: d.LaneName()}
	// An instance of a lane tags the requests that reach it untagged with
	// its lane, as GRAYLANE_TAG does for a process.
	prop, err := s.newPropagator(d.Lane)
	if err != nil {
		lis.Close()
		return nil, err
	}
	switch d.Service {
	case "productpage", "details":
		h, err := s.httpService(d, name, self, prop)
		if err != nil {
			lis.Close()
			return nil, err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(lis)
		in.stop = func(ctx context.Context) error {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				return err
			}
			return nil
		}
	case "reviews", "ratings":
		srv, err := s.grpcService(d, name, self, prop)
		if err != nil {
			lis.Close()
			return nil, err
		}
		go srv.Serve(lis)
		in.stop = func(ctx context.Context) error { return gracefulStop(ctx, srv) }
	default:
		lis.Close()
		return nil, fmt.Errorf("unknown service %q", d.Service)
	}

	inst := registry.Instance{
		Service: d.Service, Addr: in.addr, Name: name,
		Metadata: map[string]string{"deployment": d.Name, "version": d.Version},
	}
	if d.Lane != "" {
		inst.Tag = tag.MustParse(d.Lane)
	}
	switch in.reg, err = s.reg.Register(ctx, inst); {
	case errors.Is(err, registry.ErrReadOnly):
		// Kubernetes: the Pod behind its Service is the instance, listed
		// by the platform while it is ready.
		in.reg = nil
		if s.platformListed.CompareAndSwap(false, true) {
			s.log.Info("read-only registry: instances do not register; the platform lists them", "instance", name)
		}
	case err != nil:
		in.stop(ctx)
		return nil, err
	}
	return in, nil
}

// gracefulStop lets calls in flight finish, within ctx.
func gracefulStop(ctx context.Context, srv *grpc.Server) error {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.Stop()
		<-done
		return ctx.Err()
	}
}
