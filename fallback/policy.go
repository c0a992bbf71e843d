package fallback

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/tag"
)

// Option configures a Policy. Options only record what they are given:
// invalid values are reported by NewPolicy, which checks the whole
// configuration at once, after every option has been applied. A nil Option
// is ignored.
type Option interface{ apply(*settings) }

type optionFunc func(*settings)

func (f optionFunc) apply(s *settings) { f(s) }

// settings is what the options record: the top-level configuration, or the
// overrides of one service.
type settings struct {
	service   string // the service these settings override; "" at top level
	inService bool

	mode       Mode
	modeSet    bool
	base       string
	baseSet    bool
	reasons    []Reason
	reasonsSet bool
	timeout    time.Duration
	timeoutSet bool

	chains   map[string][]string // lane → lanes tried after it
	lanes    map[string]Mode     // lane → mode of requests tagged with it
	services map[string]*settings

	errs []error // problems found while applying options
}

func (s *settings) fail(format string, args ...any) {
	s.errs = append(s.errs, s.errorf(format, args...))
}

func (s *settings) errorf(format string, args ...any) error {
	if s.inService {
		format = "service %q: " + format
		args = append([]any{clip(s.service)}, args...)
	}
	return fmt.Errorf("fallback: "+format, args...)
}

// WithMode sets the mode of every request: Loose (the default) or Strict.
// WithLaneMode overrides it for one lane.
func WithMode(m Mode) Option {
	return optionFunc(func(s *settings) { s.mode, s.modeSet = m, true })
}

// WithBase sets the name of the base lane, tag.Base ("prod") by default. It
// must be a valid tag. The base lane serves untagged requests and ends every
// fallback chain. It is set once for the whole policy: inside WithService it
// is an error. Chains are checked against the final base lane, whatever the
// order of the options.
func WithBase(lane string) Option {
	return optionFunc(func(s *settings) {
		if s.inService {
			s.fail("the base lane is set for every service at once, not for one service (base %q)", lane)
			return
		}
		s.base, s.baseSet = lane, true
	})
}

// WithChain sets the lanes tried, in order, after lane when lane cannot
// serve a hop. The chain must end with the base lane, must not contain lane
// itself and must not list a lane twice; the base lane has no chain. A lane
// without a chain falls back straight to the base lane. A later WithChain
// for the same lane replaces an earlier one.
func WithChain(lane string, fallbacks ...string) Option {
	chain := slices.Clone(fallbacks)
	return optionFunc(func(s *settings) {
		if s.chains == nil {
			s.chains = make(map[string][]string)
		}
		s.chains[lane] = chain
	})
}

// WithReasons sets which reasons allow falling back: by default both
// NoInstances and Unavailable. Only those two are accepted. With no argument
// the policy never falls back (every miss is rejected, as in strict mode,
// but the error says which reason was not allowed).
func WithReasons(rs ...Reason) Option {
	reasons := append([]Reason{}, rs...)
	return optionFunc(func(s *settings) { s.reasons, s.reasonsSet = reasons, true })
}

// WithFailoverTimeout sets how long a lane whose instances are still
// connecting may be waited for before falling back. The policy only carries
// the value (ServicePolicy.FailoverTimeout): the caller measures the time
// and reports Connecting until it has passed, NotReady after. The default, 0,
// means fall back at once. A negative duration is an error.
func WithFailoverTimeout(d time.Duration) Option {
	return optionFunc(func(s *settings) { s.timeout, s.timeoutSet = d, true })
}

// WithLaneMode sets the mode of requests tagged lane, overriding WithMode:
// for instance one strict lane in a loose policy. A later WithLaneMode for
// the same lane replaces an earlier one. Setting the mode of the base lane is
// allowed but changes nothing, since the base lane never falls back.
func WithLaneMode(lane string, m Mode) Option {
	return optionFunc(func(s *settings) {
		if s.lanes == nil {
			s.lanes = make(map[string]Mode)
		}
		s.lanes[lane] = m
	})
}

// WithService overrides settings for one service. The service starts from
// the top-level settings (whatever the order of the options) and opts are
// applied on top: WithMode, WithReasons and WithFailoverTimeout replace the
// top-level value, WithChain and WithLaneMode replace the entry of their lane
// and leave the other lanes as configured at top level. Several WithService
// for the same service add up. The name must not be empty; WithService and
// WithBase inside WithService are errors.
func WithService(service string, opts ...Option) Option {
	opts = slices.Clone(opts)
	return optionFunc(func(s *settings) {
		if s.inService {
			s.fail("services cannot be nested (WithService(%q) inside it)", service)
			return
		}
		if service == "" {
			s.fail("service name is empty")
			return
		}
		if s.services == nil {
			s.services = make(map[string]*settings)
		}
		svc := s.services[service]
		if svc == nil {
			svc = &settings{service: service, inService: true}
			s.services[service] = svc
		}
		for _, o := range opts {
			if o != nil {
				o.apply(svc)
			}
		}
	})
}

// Policy is a validated fallback configuration: the top-level settings and
// the overrides of named services. A Policy is immutable and safe for
// concurrent use; build one with NewPolicy, Default or ParseJSON. The zero
// Policy, and a nil *Policy, behave like Default().
type Policy struct {
	cfg      settings // validated and normalised; the source of MarshalJSON
	def      ServicePolicy
	services map[string]*ServicePolicy
}

var defaultPolicy = func() *Policy {
	p, err := NewPolicy()
	if err != nil {
		panic(err)
	}
	return p
}()

// Default returns the default policy: loose, base lane "prod", fallback on
// both NoInstances and Unavailable, every lane's chain is [prod], failover
// timeout 0.
func Default() *Policy {
	p := *defaultPolicy
	return &p
}

// NewPolicy builds a Policy from opts and checks it: every lane name is a
// valid tag, every chain ends with the base lane and has no cycle, modes and
// reasons are known values, the failover timeout is not negative and service
// names are not empty. All problems found are reported together, joined with
// errors.Join, one line each, in a stable order; errors about invalid lane
// names wrap tag.ErrInvalid. With no options NewPolicy returns the default
// policy.
func NewPolicy(opts ...Option) (*Policy, error) {
	top := &settings{}
	for _, o := range opts {
		if o != nil {
			o.apply(top)
		}
	}
	return build(top)
}

func build(top *settings) (*Policy, error) {
	if !top.baseSet {
		top.base = tag.Base
	}
	if !top.modeSet {
		top.mode = Loose
	}
	if !top.reasonsSet {
		top.reasons = slices.Clone(FallbackReasons)
	}
	errs := slices.Clone(top.errs)
	if _, err := tag.Parse(top.base); err != nil {
		errs = append(errs, fmt.Errorf("fallback: base lane: %w", err))
	}
	errs = top.check(top.base, errs)
	if n := len(top.services); n > MaxServices {
		errs = append(errs, fmt.Errorf("fallback: %d services configured, at most %d", n, MaxServices))
	} else {
		for _, name := range slices.Sorted(maps.Keys(top.services)) {
			svc := top.services[name]
			errs = append(errs, svc.errs...)
			errs = svc.check(top.base, errs)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}

	p := &Policy{cfg: *top}
	p.cfg.errs = nil
	p.cfg.reasons = normReasons(top.reasons)
	p.def = *view(top, nil)
	if len(top.services) > 0 {
		p.services = make(map[string]*ServicePolicy, len(top.services))
		for name, svc := range top.services {
			svc.errs = nil
			if svc.reasonsSet {
				svc.reasons = normReasons(svc.reasons)
			}
			p.services[name] = view(top, svc)
		}
	}
	return p, nil
}

// check appends the problems of s's own values to errs; base is the final
// base lane.
func (s *settings) check(base string, errs []error) []error {
	if s.modeSet && !s.mode.valid() {
		errs = append(errs, s.errorf("unknown mode %s; allowed are %s", s.mode, quoteList(modeNames[:])))
	}
	if s.reasonsSet {
		for _, r := range s.reasons {
			if !r.IsFallback() {
				errs = append(errs, s.errorf("reason %s cannot allow fallback; allowed are %s", r, fallbackReasonList()))
			}
		}
	}
	if s.timeoutSet && s.timeout < 0 {
		errs = append(errs, s.errorf("failover timeout %s is negative", s.timeout))
	}
	if n := len(s.chains); n > MaxLanes {
		errs = append(errs, s.errorf("%d lanes with a chain, at most %d", n, MaxLanes))
	} else {
		for _, lane := range slices.Sorted(maps.Keys(s.chains)) {
			errs = s.checkChain(base, lane, s.chains[lane], errs)
		}
	}
	if n := len(s.lanes); n > MaxLanes {
		return append(errs, s.errorf("%d lanes with a mode, at most %d", n, MaxLanes))
	}
	for _, lane := range slices.Sorted(maps.Keys(s.lanes)) {
		if _, err := tag.Parse(lane); err != nil {
			errs = append(errs, s.errorf("mode of lane %q: %w", clip(lane), err))
		}
		if m := s.lanes[lane]; !m.valid() {
			errs = append(errs, s.errorf("mode of lane %q: unknown mode %s; allowed are %s", clip(lane), m, quoteList(modeNames[:])))
		}
	}
	return errs
}

func (s *settings) checkChain(base, lane string, chain []string, errs []error) []error {
	if _, err := tag.Parse(lane); err != nil {
		return append(errs, s.errorf("chain of lane %q: %w", clip(lane), err))
	}
	if lane == base {
		return append(errs, s.errorf("chain of lane %q: the base lane has no fallback chain", lane))
	}
	if len(chain) == 0 {
		return append(errs, s.errorf("chain of lane %q is empty; it must end with the base lane %q", lane, base))
	}
	if len(chain) > MaxChainLength {
		return append(errs, s.errorf("chain of lane %q has %d lanes, at most %d", lane, len(chain), MaxChainLength))
	}
	n := len(errs)
	for i, c := range chain {
		if _, err := tag.Parse(c); err != nil {
			errs = append(errs, s.errorf("chain of lane %q, entry %d: %w", lane, i+1, err))
			continue
		}
		if c == lane {
			errs = append(errs, s.errorf("chain of lane %q %s contains the lane itself", lane, quoteChain(chain)))
		} else if slices.Index(chain[:i], c) >= 0 { // at most MaxChainLength² steps
			errs = append(errs, s.errorf("chain of lane %q %s lists %q twice", lane, quoteChain(chain), c))
		}
	}
	if len(errs) == n && chain[len(chain)-1] != base {
		errs = append(errs, s.errorf("chain of lane %q %s must end with the base lane %q", lane, quoteChain(chain), base))
	}
	return errs
}

// Limits on a policy. A policy reaches every gRPC client through the
// service config, so its validation must stay cheap whatever it holds:
// NewPolicy and ParseJSON refuse a policy over these limits, in time and
// memory linear in its size.
const (
	// MaxChainLength bounds the lanes of one fallback chain.
	MaxChainLength = 32
	// MaxLanes bounds the lanes with a chain, and the lanes with a mode, at
	// top level and in each service.
	MaxLanes = 1024
	// MaxServices bounds the services with settings of their own.
	MaxServices = 1024
	// maxErrors bounds the problems an error lists; the rest are counted.
	maxErrors = 20
	// maxQuoted bounds a name quoted in an error.
	maxQuoted = 80
)

// joinErrors joins errs, listing at most maxErrors of them and the number
// of the others.
func joinErrors(errs []error) error {
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], fmt.Errorf("fallback: %d more problems not shown", more))
	}
	return errors.Join(errs...)
}

// clip cuts s to maxQuoted bytes for an error message.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}

// quoteChain renders a chain for an error message, each lane clipped.
func quoteChain(chain []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range chain {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(clip(c)))
	}
	b.WriteByte(']')
	return b.String()
}

// normReasons returns the reasons in a stable order, without duplicates,
// never nil.
func normReasons(rs []Reason) []Reason {
	out := []Reason{}
	for _, r := range FallbackReasons {
		if slices.Contains(rs, r) {
			out = append(out, r)
		}
	}
	return out
}

// view resolves the settings of one service: top, with svc's overrides on
// top of it (svc may be nil).
func view(top, svc *settings) *ServicePolicy {
	v := &ServicePolicy{
		base:      top.base,
		mode:      top.mode,
		timeout:   top.timeout,
		baseChain: []string{top.base},
	}
	reasons := top.reasons
	layers := []*settings{top}
	if svc != nil {
		layers = append(layers, svc)
		if svc.modeSet {
			v.mode = svc.mode
		}
		if svc.reasonsSet {
			reasons = svc.reasons
		}
		if svc.timeoutSet {
			v.timeout = svc.timeout
		}
	}
	for _, r := range reasons {
		v.reasons |= 1 << r
	}
	for _, l := range layers {
		for lane, chain := range l.chains {
			v.lane(lane).chain = slices.Clip(slices.Clone(chain))
		}
		for lane, m := range l.lanes {
			lv := v.lane(lane)
			lv.mode, lv.modeSet = m, true
		}
	}
	return v
}

func (s *ServicePolicy) lane(name string) *laneView {
	if s.lanes == nil {
		s.lanes = make(map[string]*laneView)
	}
	lv := s.lanes[name]
	if lv == nil {
		lv = &laneView{}
		s.lanes[name] = lv
	}
	return lv
}

func (p *Policy) orDefault() *Policy {
	if p == nil || p.def.base == "" {
		return defaultPolicy
	}
	return p
}

// Base returns the name of the base lane.
func (p *Policy) Base() string { return p.orDefault().cfg.base }

// Service returns the resolved settings for one service: the top-level
// settings with the service's overrides applied. It never returns nil and
// does not allocate: the views of services named in WithService are built by
// NewPolicy, and every other service shares the view of the top-level
// settings. Because views are shared, a ServicePolicy does not know the
// service's name; Decide takes it as an argument for its error messages.
func (p *Policy) Service(name string) *ServicePolicy {
	p = p.orDefault()
	if s, ok := p.services[name]; ok {
		return s
	}
	return &p.def
}

// ServicePolicy is the resolved policy for one service, obtained from
// Policy.Service. It is immutable and safe for concurrent use. A nil
// *ServicePolicy behaves like Default().Service(name) for any name.
type ServicePolicy struct {
	base      string
	mode      Mode
	reasons   uint8 // bit 1<<r set when reason r allows fallback
	timeout   time.Duration
	baseChain []string // the default chain: just the base lane
	lanes     map[string]*laneView
}

type laneView struct {
	mode    Mode
	modeSet bool
	chain   []string // nil: the default chain
}

func (s *ServicePolicy) orDefault() *ServicePolicy {
	if s == nil || s.base == "" {
		return &defaultPolicy.def
	}
	return s
}

// Base returns the name of the base lane.
func (s *ServicePolicy) Base() string { return s.orDefault().base }

// Mode returns the mode of requests tagged lane: the lane's own mode if
// WithLaneMode set one, the service's (or top-level) mode otherwise.
func (s *ServicePolicy) Mode(lane string) Mode {
	s = s.orDefault()
	if lv := s.lanes[lane]; lv != nil && lv.modeSet {
		return lv.mode
	}
	return s.mode
}

// Chain returns the lanes tried, in order, after lane when lane cannot serve
// a hop. The last one is the base lane. It returns nil for the base lane
// itself, and the default chain, [base], for any lane without a configured
// chain (including names that are not valid tags). The slice is shared:
// callers must not modify it.
func (s *ServicePolicy) Chain(lane string) []string {
	s = s.orDefault()
	if lane == s.base {
		return nil
	}
	if lv := s.lanes[lane]; lv != nil && lv.chain != nil {
		return lv.chain
	}
	return s.baseChain
}

// FailoverTimeout returns how long a lane whose instances are connecting may
// be waited for before falling back. The caller applies it: Decide only sees
// the State the caller reports.
func (s *ServicePolicy) FailoverTimeout() time.Duration { return s.orDefault().timeout }

// Falls reports whether reason r allows falling back to the next lane of a
// chain. Only NoInstances and Unavailable can.
func (s *ServicePolicy) Falls(r Reason) bool {
	return r.IsFallback() && s.orDefault().reasons&(1<<r) != 0
}

// Lanes returns, sorted, every lane the policy names for the service: lanes
// with a chain or a mode of their own, and the lanes of every chain, base
// included. A router needs to decide for these lanes even when they have no
// instance, since their decision differs from an unknown tag's.
func (s *ServicePolicy) Lanes() []string {
	s = s.orDefault()
	set := map[string]bool{s.base: true}
	for name, lv := range s.lanes {
		set[name] = true
		for _, l := range lv.chain {
			set[l] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
