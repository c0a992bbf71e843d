package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// RoleMetadata is the metadata key, and ConsumerRole its value, that mark
// the registry instances of queue consumers.
const (
	RoleMetadata = "graylane.role"
	ConsumerRole = "consumer"
)

// Option configures a Lanes.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	lane       *string
	policy     *fallback.Policy
	dynamic    *fallback.Dynamic
	deadLetter bool
	mp         metric.MeterProvider
	logger     *slog.Logger
	addr, name string
}

// WithLane sets the lane of the consumers, "" for the base lane. The
// default is the service's own tag: the GRAYLANE_TAG environment variable,
// as package propagation reads it.
func WithLane(lane string) Option {
	return optionFunc(func(c *config) { c.lane = &lane })
}

// WithPolicy sets the fallback policy (default fallback.Default()). The
// group's name is the service name its per-service settings are looked up
// under.
func WithPolicy(p *fallback.Policy) Option {
	return optionFunc(func(c *config) { c.policy = p })
}

// WithDynamicPolicy makes the Lanes follow the policy held by d instead of
// a fixed one: a new policy rebuilds the table at once.
func WithDynamicPolicy(d *fallback.Dynamic) Option {
	return optionFunc(func(c *config) { c.dynamic = d })
}

// WithDeadLetter makes the base lane's consumers hand the messages of a
// strict lane with no live consumer to a dead-letter destination (Action
// DeadLetter) instead of leaving them for the lane (Action Hold, the
// default). The adapter says what the destination is.
func WithDeadLetter() Option {
	return optionFunc(func(c *config) { c.deadLetter = true })
}

// WithMeterProvider sets the meter provider of the decision and takeover
// counters (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger sets the logger of table changes and takeovers, at debug and
// info level (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithInstance sets the address and name under which Register registers
// the consumer. The address only tells instances apart (nothing connects
// to it); by default it is the host name and a random port, and the name
// is the address.
func WithInstance(addr, name string) Option {
	return optionFunc(func(c *config) { c.addr, c.name = addr, name })
}

// Lanes follows the live consumers of one consumer group in a registry and
// keeps, for the consumers of one lane, the Table of decisions: which
// messages they process and which they leave to other lanes. It is safe for
// concurrent use; Close stops it.
type Lanes struct {
	reg        registry.Registry
	group      string
	lane       string // "" until built: the base lane
	deadLetter bool
	static     *fallback.Policy
	dynamic    *fallback.Dynamic
	tel        *telemetry
	logger     *slog.Logger
	addr, name string

	table   atomic.Pointer[Table]
	mu      sync.Mutex
	changed chan struct{} // closed at the next table
	cancel  context.CancelFunc
	done    chan struct{}
	watcher registry.Watcher
}

// New starts following the consumers of group in reg and returns once it
// has the first set (within ctx). group is the consumer group's name: the
// service name its consumers register under (see Register). It must be a
// valid service name (registry.ValidateService); pick one that no RPC
// service of the same registry uses, such as "notifications-events",
// since RPC clients would otherwise route calls to consumers.
func New(ctx context.Context, reg registry.Registry, group string, opts ...Option) (*Lanes, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if err := registry.ValidateService(group); err != nil {
		return nil, fmt.Errorf("queue: group: %w", err)
	}
	lane := ""
	if c.lane != nil {
		lane = *c.lane
	} else {
		lane = os.Getenv(propagation.OwnTagEnv)
	}
	if lane != "" && !tag.Valid(lane) {
		return nil, fmt.Errorf("queue: lane %q: %w", lane, tag.ErrInvalid)
	}
	l := &Lanes{
		reg: reg, group: group, lane: lane, deadLetter: c.deadLetter, static: c.policy, dynamic: c.dynamic,
		tel: sharedTelemetry(c.mp), logger: c.logger, addr: c.addr, name: c.name, done: make(chan struct{}),
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.static == nil {
		l.static = fallback.Default()
	}
	w, err := reg.Watch(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("queue: watching %q: %w", group, err)
	}
	insts, err := w.Next(ctx)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("queue: watching %q: %w", group, err)
	}
	l.watcher = w
	var policyChanged <-chan struct{}
	if l.dynamic != nil {
		policyChanged = l.dynamic.Changed() // before reading the policy: no change is missed
	}
	l.rebuild(insts)
	var runCtx context.Context
	runCtx, l.cancel = context.WithCancel(context.Background())
	go l.run(runCtx, insts, policyChanged)
	return l, nil
}

func (l *Lanes) policy() *fallback.Policy {
	if l.dynamic != nil {
		return l.dynamic.Load()
	}
	return l.static
}

// run rebuilds the table on every new instance set and every new policy.
func (l *Lanes) run(ctx context.Context, insts []registry.Instance, policyChanged <-chan struct{}) {
	defer close(l.done)
	sets := make(chan []registry.Instance, 1)
	go func() {
		for {
			next, err := l.watcher.Next(ctx)
			if err != nil {
				close(sets)
				return
			}
			select { // keep only the latest set
			case <-sets:
			default:
			}
			sets <- next
		}
	}()
	for {
		select {
		case next, ok := <-sets:
			if !ok {
				return
			}
			insts = next
		case <-policyChanged:
			policyChanged = l.dynamic.Changed()
		case <-ctx.Done():
			for range sets { // wait for the watching goroutine
			}
			return
		}
		l.rebuild(insts)
	}
}

func (l *Lanes) rebuild(insts []registry.Instance) {
	var version uint64 = 1
	prev := l.table.Load()
	if prev != nil {
		version = prev.version + 1
	}
	sp := l.policy().Service(l.group)
	t := build(l.group, l.lane, version, buildInput{sp: sp, insts: insts, deadLetter: l.deadLetter, tel: l.tel})
	l.table.Store(t)
	l.mu.Lock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	l.mu.Unlock()
	if l.logger.Enabled(context.Background(), slog.LevelDebug) {
		live := make([]string, 0, len(t.states))
		for lane, st := range t.states {
			if st == fallback.Ready {
				live = append(live, lane)
			}
		}
		l.logger.Debug("graylane: queue lanes changed", "group", l.group, "lane", t.own, "version", version, "live", live)
	}
}

// Table returns the current table. It never blocks.
func (l *Lanes) Table() *Table { return l.table.Load() }

// Changed returns a channel that is closed when the table after the
// current one is in place.
func (l *Lanes) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// Group returns the consumer group's name.
func (l *Lanes) Group() string { return l.group }

// Lane returns the consumers' lane.
func (l *Lanes) Lane() string { return l.Table().own }

// Base returns the base lane of the policy in force.
func (l *Lanes) Base() string { return l.Table().base }

// TookOver counts n messages that the consumers' lane processed on behalf
// of lane from (see Takeover).
func (l *Lanes) TookOver(from string, n int) {
	if n > 0 {
		l.tel.takeover(l.group, from, l.Lane()).n.Add(uint64(n))
	}
}

// Logger returns the logger of the Lanes.
func (l *Lanes) Logger() *slog.Logger { return l.logger }

// Register registers one consumer of the group in the registry: an
// instance of the service named after the group, in the consumers' lane,
// with the metadata RoleMetadata: ConsumerRole. Every Lanes of the group,
// in every process, then counts the lane as live. Deregister it before the
// consumer stops taking messages only when another consumer of the lane is
// left; otherwise stop taking messages (commit, leave the consumer group)
// first, then deregister, so that the fallback lane takes over from where
// the lane stopped.
//
// On a read-only registry (registry.ErrReadOnly, such as Kubernetes'),
// consumers cannot register themselves: their liveness is what the
// platform sees, e.g. the ready Pods behind a Service named after the
// group. Register then returns a Registration that does nothing, and the
// consumer runs as on any other registry.
func (l *Lanes) Register(ctx context.Context) (registry.Registration, error) {
	r, err := l.register(ctx)
	if errors.Is(err, registry.ErrReadOnly) {
		l.logger.Debug("graylane queue: read-only registry; consumers are live while the platform lists them",
			"group", l.group, "lane", l.Lane())
		return platformRegistration{}, nil
	}
	return r, err
}

// platformRegistration stands for a consumer that a read-only registry
// knows without being told.
type platformRegistration struct{}

func (platformRegistration) Instance() registry.Instance                     { return registry.Instance{} }
func (platformRegistration) Update(context.Context, registry.Instance) error { return nil }
func (platformRegistration) Deregister(context.Context) error                { return nil }

func (l *Lanes) register(ctx context.Context) (registry.Registration, error) {
	inst := registry.Instance{
		Service:  l.group,
		Addr:     l.addr,
		Name:     l.name,
		Metadata: map[string]string{RoleMetadata: ConsumerRole},
	}
	if t, ok := tag.Of(l.lane); ok && l.lane != l.Base() {
		inst.Tag = t
	}
	if inst.Addr != "" {
		return l.reg.Register(ctx, inst)
	}
	host, err := os.Hostname()
	if err != nil || (registry.Instance{Service: "x", Addr: host + ":1"}).Validate() != nil {
		host = "localhost"
	}
	for range 16 {
		inst.Addr = host + ":" + strconv.Itoa(1+rand.IntN(65535))
		r, err := l.reg.Register(ctx, inst)
		if !errors.Is(err, registry.ErrDuplicate) {
			return r, err
		}
	}
	return nil, fmt.Errorf("queue: no free instance address for group %q on host %q", l.group, host)
}

// Close stops following the registry. Tables already handed out stay
// usable.
func (l *Lanes) Close() error {
	l.mu.Lock()
	cancel := l.cancel
	l.cancel = nil
	l.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	err := l.watcher.Close()
	<-l.done
	return err
}
