package propagation

import (
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/tag"
)

// Default names.
const (
	// DefaultHeader is the tag header, and the gRPC metadata key.
	DefaultHeader = "x-traffic-tag"
	// DefaultBaggageMember is the key of the W3C baggage list-member that
	// carries the tag.
	DefaultBaggageMember = "traffic-tag"
	// OwnTagEnv is the environment variable that names the service's own
	// lane when WithOwnTag is not given.
	OwnTagEnv = "GRAYLANE_TAG"
	// BaggageHeader is the W3C baggage header.
	BaggageHeader = "baggage"
)

// W3C baggage limits.
const (
	MaxBaggageBytes   = 8192
	MaxBaggageMembers = 64
)

// Source says where a tag was found.
type Source uint8

// The sources of a tag.
const (
	SourceNone    Source = iota // no tag was found
	SourceHeader                // the tag header or gRPC metadata key
	SourceBaggage               // the W3C baggage member
	SourceOwn                   // the service's own tag
	SourceDialect               // a foreign format (see Dialect)
)

var sourceNames = [...]string{"none", "header", "baggage", "own", "dialect"}

// String returns "none", "header", "baggage", "own" or "dialect".
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("Source(%d)", uint8(s))
}

// Propagator extracts the tag from, and injects it into, carriers. Build it
// with New; it is immutable and safe for concurrent use.
type Propagator struct {
	header      string // lower-case, for gRPC metadata and TextMapCarrier
	headerCanon string // canonical, for http.Header
	member      string // baggage member key; "" disables the baggage source
	own         tag.Tag
	order       []Source
	injectBag   bool
	fields      []string
	stats       *stats

	// Carrier keys: canonical for http.Header, lower-case for metadata.
	httpKeys, mdKeys carrierKeys
	// Foreign formats read (in order) and written; nil when none.
	dialects, writeDialects []dialectState
	// Baggage members Strip removes.
	stripMembers []string
	// The lengths of the header names Strip looks for in other spellings:
	// bit n for a length n under 64, foldLong for any longer one.
	foldLens uint64
	foldLong bool
}

type config struct {
	header    string
	member    string
	own       *string
	order     []Source
	orderSet  bool
	injectBag bool
	meter     metric.MeterProvider
	logger    *slog.Logger
	dialects  []Dialect
	writeDia  []Dialect
}

// Option configures a Propagator.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithHeader sets the tag header name (default "x-traffic-tag"). The same
// name, lower-case, is the gRPC metadata key, so it must be a valid metadata
// key: letters, digits, '-', '_' and '.', not starting with "grpc-" and not
// ending with "-bin".
func WithHeader(name string) Option {
	return optionFunc(func(c *config) { c.header = name })
}

// WithBaggageMember sets the key of the baggage list-member that carries the
// tag (default "traffic-tag"). The empty string turns the baggage source and
// baggage injection off.
func WithBaggageMember(key string) Option {
	return optionFunc(func(c *config) { c.member = key })
}

// WithOwnTag sets the service's own tag, used by SourceOwn. It overrides the
// GRAYLANE_TAG environment variable; the empty string means none.
func WithOwnTag(t string) Option {
	return optionFunc(func(c *config) { c.own = &t })
}

// WithSources sets which sources are read, in precedence order. The default
// is SourceHeader, SourceBaggage, SourceOwn, with SourceDialect before
// SourceOwn when WithDialects is given. Each source may appear once; an order
// without SourceDialect is an error when WithDialects is given.
func WithSources(s ...Source) Option {
	s = append([]Source(nil), s...)
	return optionFunc(func(c *config) { c.order, c.orderSet = s, true })
}

// WithBaggageInjection makes outbound requests carry the tag in the W3C
// baggage header too, besides the tag header. Off by default.
func WithBaggageInjection() Option {
	return optionFunc(func(c *config) { c.injectBag = true })
}

// WithMeterProvider sets the meter provider of the rejection counter. The
// default is the global one (otel.GetMeterProvider()); with no provider
// configured, counting costs nothing.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meter = mp })
}

// WithLogger sets the logger rejections are reported to, at debug level. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// New builds a Propagator. It returns an error for an invalid header name,
// baggage key, own tag (including an invalid GRAYLANE_TAG), source list or
// dialect list.
func New(opts ...Option) (*Propagator, error) {
	c := config{
		header: DefaultHeader,
		member: DefaultBaggageMember,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if !c.orderSet {
		c.order = []Source{SourceHeader, SourceBaggage, SourceOwn}
		if len(c.dialects) > 0 {
			c.order = []Source{SourceHeader, SourceBaggage, SourceDialect, SourceOwn}
		}
	}
	var errs []error
	if err := validMetadataKey(c.header); err != nil {
		errs = append(errs, fmt.Errorf("header: %w", err))
	}
	if c.member != "" && !validToken(c.member) {
		errs = append(errs, fmt.Errorf("baggage member %q: not a valid baggage key", c.member))
	}
	var own tag.Tag
	if c.own != nil {
		if *c.own != "" {
			t, err := tag.Parse(*c.own)
			if err != nil {
				errs = append(errs, fmt.Errorf("own tag: %w", err))
			}
			own = t
		}
	} else if v, ok := os.LookupEnv(OwnTagEnv); ok && v != "" {
		t, err := tag.Parse(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", OwnTagEnv, err))
		}
		own = t
	}
	seen := map[Source]bool{}
	for _, s := range c.order {
		if s == SourceNone || int(s) >= len(sourceNames) {
			errs = append(errs, fmt.Errorf("sources: unknown source %v", s))
			continue
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("sources: %v listed twice", s))
		}
		seen[s] = true
	}
	if len(c.dialects) > 0 && !seen[SourceDialect] {
		errs = append(errs, errors.New("sources: WithDialects is given but SourceDialect is not listed"))
	}
	errs = append(errs, checkDialects(c)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("propagation: %w", errors.Join(errs...))
	}
	p := &Propagator{
		header:      strings.ToLower(c.header),
		headerCanon: textproto.CanonicalMIMEHeaderKey(c.header),
		member:      c.member,
		own:         own,
		order:       c.order,
		injectBag:   c.injectBag && c.member != "",
	}
	p.httpKeys = carrierKeys{header: p.headerCanon, baggage: "Baggage", canonical: true}
	p.mdKeys = carrierKeys{header: p.header, baggage: BaggageHeader}
	p.fields = []string{p.header}
	if p.injectBag {
		p.fields = append(p.fields, BaggageHeader)
	}
	mp := c.meter
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	logger := c.logger
	if logger == nil {
		logger = slog.Default()
	}
	p.stats = newStats(mp, logger)
	p.setDialects(c.dialects, c.writeDia)
	return p, nil
}

// Header returns the tag header name in lower case (also the gRPC metadata
// key).
func (p *Propagator) Header() string { return p.header }

// BaggageMember returns the baggage member key, or "" when baggage is off.
func (p *Propagator) BaggageMember() string { return p.member }

// OwnTag returns the service's own tag (the zero Tag when there is none).
func (p *Propagator) OwnTag() tag.Tag { return p.own }

// InjectsBaggage reports whether outbound requests carry the tag in baggage.
func (p *Propagator) InjectsBaggage() bool { return p.injectBag }

func validMetadataKey(k string) error {
	if k == "" {
		return errors.New("empty name")
	}
	lk := strings.ToLower(k)
	if strings.HasPrefix(lk, "grpc-") {
		return fmt.Errorf("%q: names starting with \"grpc-\" are reserved by gRPC", k)
	}
	if strings.HasSuffix(lk, "-bin") {
		return fmt.Errorf("%q: names ending with \"-bin\" are binary in gRPC", k)
	}
	for i := 0; i < len(lk); i++ {
		c := lk[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: byte %q at offset %d; allowed are letters, digits, '-', '_' and '.'", k, c, i)
		}
	}
	return nil
}

// validToken reports whether s is an RFC 7230 token, the syntax of a W3C
// baggage key.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
