package propagation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/tag"
)

// Dialect is a format in which another traffic-lane system carries the tag:
// a header (the same name, lower-case, is the gRPC metadata key) or a W3C
// baggage list-member. With WithDialects a Propagator also reads the tag in
// these formats; with WithWriteDialects it also writes it in them, so that a
// graylane service can sit in a fleet where the sidecars, agents or SDKs of
// another system route on their own header.
//
// Use the presets (DialectASM, DialectOpenSergo, DialectMSE, DialectPolaris,
// DialectSignadot, DialectKitex) or build one with HeaderDialect,
// BaggageDialect or KitexDialect. The zero Dialect is not usable: New
// rejects it. Dialects are small comparable values.
type Dialect struct {
	name    string
	header  string // lower-case header and metadata key; "" for none
	member  string // baggage list-member key; "" for none
	form    dialectForm
	polaris *polarisLanes // formPolaris: the mapping of PolarisDialect; nil for the default
}

// dialectForm says how a dialect's value maps to a tag.
type dialectForm uint8

const (
	formPlain   dialectForm = iota // the value is the tag
	formPolaris                    // "group/rule" or "lane", see DialectPolaris
)

// The presets. Each reads and writes the tag as the named system does; the
// value is the lane name, validated like any other tag.
var (
	// DialectASM is Alibaba Cloud Service Mesh's lane routing header,
	// "x-asm-prefer-tag".
	DialectASM = Dialect{name: "asm", header: "x-asm-prefer-tag"}
	// DialectOpenSergo is the OpenSergo traffic-lane header,
	// "x-opensergo-traffic".
	DialectOpenSergo = Dialect{name: "opensergo", header: "x-opensergo-traffic"}
	// DialectMSE is Alibaba Cloud MSE's tag-routing header, "x-mse-tag".
	DialectMSE = Dialect{name: "mse", header: "x-mse-tag"}
	// DialectPolaris is Polaris' lane stain header, "service-lane". Polaris
	// stains a request with "group/rule", the lane group and the name of the
	// lane rule, such as "gray/rule1" in its own example, where the instances
	// of the lane carry the label lane=gray: graylane reads such a value as
	// the lane of the group ("gray"). A value without a slash is the lane
	// itself. It writes the lane name ("gray"). When the lanes of a Polaris
	// group are not named after the group, map each "group/rule" to its lane
	// with PolarisDialect.
	DialectPolaris = Dialect{name: "polaris", header: "service-lane", form: formPolaris}
	// DialectSignadot is Signadot's routing key, the W3C baggage member
	// "sd-routing-key".
	DialectSignadot = Dialect{name: "signadot", member: "sd-routing-key"}
	// DialectKitex is CloudWeGo Kitex persistent metainfo under the key
	// "TRAFFIC_TAG", which Kitex carries in the HTTP header and gRPC metadata
	// key "rpc-persist-traffic-tag". A Kitex service reads it with
	// metainfo.GetPersistentValue(ctx, "TRAFFIC_TAG"). KitexDialect builds
	// the dialect of another key.
	DialectKitex = Dialect{name: "kitex", header: "rpc-persist-traffic-tag"}
)

// polarisLanes maps Polaris stain values to lanes, and back.
type polarisLanes struct {
	lanes map[string]string // "group/rule" -> lane
	stain map[string]string // lane -> the "group/rule" written for it
}

// PolarisDialect returns the Polaris dialect ("service-lane", named
// "polaris") with a mapping from Polaris stain values, "group/rule", to
// graylane lanes, for lane rules whose instances are not labelled with the
// group's name: PolarisDialect(map[string]string{"gray/rule1": "canary"})
// reads "gray/rule1" as the lane "canary", and writes the lane "canary" as
// "gray/rule1" (when several values map to one lane, the first in sorted
// order is written). Values not in the mapping are read and written as
// DialectPolaris reads and writes them. Every key must be "group/rule",
// both parts non-empty and without another slash, and every lane a valid
// tag.
func PolarisDialect(lanes map[string]string) (Dialect, error) {
	m := &polarisLanes{lanes: make(map[string]string, len(lanes)), stain: make(map[string]string, len(lanes))}
	keys := make([]string, 0, len(lanes))
	for k := range lanes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		lane := lanes[k]
		group, rule, ok := strings.Cut(k, "/")
		if !ok || group == "" || rule == "" || strings.IndexByte(rule, '/') >= 0 {
			errs = append(errs, fmt.Errorf("%q: a Polaris stain value is \"group/rule\"", k))
			continue
		}
		if !tag.Valid(lane) {
			errs = append(errs, fmt.Errorf("%q: lane %q is not a valid tag", k, lane))
			continue
		}
		m.lanes[k] = lane
		if _, ok := m.stain[lane]; !ok {
			m.stain[lane] = k
		}
	}
	if len(errs) > 0 {
		return Dialect{}, fmt.Errorf("propagation: polaris dialect: %w", errors.Join(errs...))
	}
	d := DialectPolaris
	d.polaris = m
	return d, nil
}

// kitexPersistPrefix is the prefix under which Kitex's metainfo library
// carries persistent values in HTTP headers and gRPC metadata.
const kitexPersistPrefix = "rpc-persist-"

// HeaderDialect returns a dialect named name that carries the tag in header
// (and in the gRPC metadata key of the same name, lower-case). name is used
// in the graylane.source attribute of rejected values; it must be a valid
// tag (letters, digits, '.', '_', '-') other than "header", "baggage",
// "own", "none" and "dialect". header must be a valid gRPC metadata key, not
// "baggage".
func HeaderDialect(name, header string) (Dialect, error) {
	if err := checkDialectName(name); err != nil {
		return Dialect{}, err
	}
	if err := validMetadataKey(header); err != nil {
		return Dialect{}, fmt.Errorf("propagation: dialect %q: header: %w", name, err)
	}
	if strings.EqualFold(header, BaggageHeader) {
		return Dialect{}, fmt.Errorf("propagation: dialect %q: header: %q is the W3C baggage header; use BaggageDialect", name, header)
	}
	return Dialect{name: name, header: strings.ToLower(header)}, nil
}

// BaggageDialect returns a dialect named name that carries the tag in the
// W3C baggage list-member key. name follows the rules of HeaderDialect; key
// must be a valid baggage key (an RFC 7230 token).
func BaggageDialect(name, key string) (Dialect, error) {
	if err := checkDialectName(name); err != nil {
		return Dialect{}, err
	}
	if !validToken(key) {
		return Dialect{}, fmt.Errorf("propagation: dialect %q: baggage member %q: not a valid baggage key", name, key)
	}
	return Dialect{name: name, member: key}, nil
}

// KitexDialect returns the dialect named "kitex" that carries the tag in
// CloudWeGo Kitex persistent metainfo under key, such as "TRAFFIC_TAG" (the
// key of DialectKitex). Kitex maps the key to the header "rpc-persist-"
// followed by the key in lower case with '_' turned into '-', and back to
// upper case with '-' turned into '_' on the receiving side; so only keys
// written in upper case with '_' survive a Kitex hop unchanged. key must hold
// only letters, digits, '_' and '-'.
func KitexDialect(key string) (Dialect, error) {
	if key == "" {
		return Dialect{}, errors.New("propagation: kitex dialect: empty metainfo key")
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return Dialect{}, fmt.Errorf("propagation: kitex dialect: metainfo key %q: byte %q at offset %d; allowed are letters, digits, '_' and '-'", key, c, i)
		}
	}
	header := kitexPersistPrefix + strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	if err := validMetadataKey(header); err != nil {
		return Dialect{}, fmt.Errorf("propagation: kitex dialect: %w", err)
	}
	return Dialect{name: "kitex", header: header}, nil
}

var reservedDialectNames = []string{"none", "header", "baggage", "own", "dialect"}

func checkDialectName(name string) error {
	if !tag.Valid(name) {
		return fmt.Errorf("propagation: dialect name %q: use letters, digits, '.', '_' and '-', at most 63 bytes", name)
	}
	for _, r := range reservedDialectNames {
		if name == r {
			return fmt.Errorf("propagation: dialect name %q is reserved for graylane's own sources", name)
		}
	}
	return nil
}

// Name returns the dialect's name, such as "asm". It is the graylane.source
// attribute of the values the dialect rejects.
func (d Dialect) Name() string { return d.name }

// Header returns the lower-case header (and gRPC metadata key) the dialect
// uses, or "" when it uses a baggage member.
func (d Dialect) Header() string { return d.header }

// BaggageMember returns the baggage list-member key the dialect uses, or ""
// when it uses a header.
func (d Dialect) BaggageMember() string { return d.member }

// String returns the name and the place, such as "asm (header
// x-asm-prefer-tag)".
func (d Dialect) String() string {
	switch {
	case d.header != "":
		return d.name + " (header " + d.header + ")"
	case d.member != "":
		return d.name + " (baggage member " + d.member + ")"
	}
	return "Dialect{}"
}

// WithDialects makes the Propagator also read the tag in the given dialects,
// in the order given. They are tried together as SourceDialect, which by
// default comes after the tag header and the baggage member and before the
// service's own tag; WithSources can place it elsewhere. Within it, the first
// dialect that yields a valid tag wins. A dialect's value follows the rules
// of the tag header (invalid or ambiguous values are skipped and counted,
// with graylane.source set to the dialect's name); a baggage dialect follows
// the rules of the baggage member, limits included.
//
// Reading a dialect does not make the Propagator write it: see
// WithWriteDialects. Each call replaces the list of the previous one.
func WithDialects(d ...Dialect) Option {
	d = append([]Dialect(nil), d...)
	return optionFunc(func(c *config) { c.dialects = d })
}

// WithWriteDialects makes the Propagator also write the tag in the given
// dialects on outbound requests, besides the tag header (and the baggage
// member with WithBaggageInjection): each dialect header is set to the tag,
// each dialect baggage member added or replaced, keeping the other members
// and the W3C limits. Each call replaces the list of the previous one.
func WithWriteDialects(d ...Dialect) Option {
	d = append([]Dialect(nil), d...)
	return optionFunc(func(c *config) { c.writeDia = d })
}

// WritesOnlyHeader reports whether InjectHeader and InjectMetadata write
// nothing but the tag header: no baggage injection and no write dialect. A
// caller may then append the tag header to a carrier instead of rewriting
// it; otherwise it must call InjectMetadata (or InjectHeader).
func (p *Propagator) WritesOnlyHeader() bool { return !p.injectBag && len(p.writeDialects) == 0 }

// Dialects returns the dialects the Propagator reads, in precedence order.
func (p *Propagator) Dialects() []Dialect { return dialectList(p.dialects) }

// WriteDialects returns the dialects the Propagator writes.
func (p *Propagator) WriteDialects() []Dialect { return dialectList(p.writeDialects) }

func dialectList(ds []dialectState) []Dialect {
	if len(ds) == 0 {
		return nil
	}
	out := make([]Dialect, len(ds))
	for i := range ds {
		out[i] = ds[i].Dialect
	}
	return out
}

// checkDialects validates the dialect lists of c.
func checkDialects(c config) []error {
	var errs []error
	own := strings.ToLower(c.header)
	check := func(list string, ds []Dialect) {
		names := map[string]bool{}
		places := map[string]string{}
		for _, d := range ds {
			if d.header == "" && d.member == "" {
				errs = append(errs, fmt.Errorf("%s: the zero Dialect; use a preset or HeaderDialect, BaggageDialect, KitexDialect", list))
				continue
			}
			if names[d.name] {
				errs = append(errs, fmt.Errorf("%s: dialect %q listed twice", list, d.name))
				continue
			}
			names[d.name] = true
			place := "header " + d.header
			if d.header == "" {
				place = "baggage member " + d.member
			}
			if other, ok := places[place]; ok {
				errs = append(errs, fmt.Errorf("%s: dialects %q and %q both use the %s", list, other, d.name, place))
			}
			places[place] = d.name
			if d.header != "" && d.header == own {
				errs = append(errs, fmt.Errorf("%s: dialect %q uses the tag header %q", list, d.name, d.header))
			}
			if d.member != "" && d.member == c.member {
				errs = append(errs, fmt.Errorf("%s: dialect %q uses the baggage member %q", list, d.name, d.member))
			}
		}
	}
	check("dialects", c.dialects)
	check("write dialects", c.writeDia)
	return errs
}

// dialectState is a dialect as a Propagator uses it.
type dialectState struct {
	Dialect
	canon   string                               // canonical header for http.Header
	rejects [numRejectReasons][]metric.AddOption // counter attributes, by reason
}

// key returns the dialect header's name in the carrier kind of k.
func (d *dialectState) key(k *carrierKeys) string {
	if k.canonical {
		return d.canon
	}
	return d.header
}

// setDialects installs the dialects of a new Propagator, and the keys that
// Strip removes.
func (p *Propagator) setDialects(read, write []Dialect) {
	mk := func(ds []Dialect) []dialectState {
		if len(ds) == 0 {
			return nil
		}
		out := make([]dialectState, len(ds))
		for i, d := range ds {
			out[i] = dialectState{Dialect: d}
			if d.header != "" {
				out[i].canon = textproto.CanonicalMIMEHeaderKey(d.header)
			}
			for r := range out[i].rejects {
				set := attribute.NewSet(AttrSource.String(d.name), AttrReason.String(rejectNames[r]))
				out[i].rejects[r] = []metric.AddOption{metric.WithAttributeSet(set)}
			}
		}
		return out
	}
	p.dialects = mk(read)
	p.writeDialects = mk(write)

	// Everything p reads or writes, for Strip.
	p.httpKeys.strip = []string{p.headerCanon}
	p.mdKeys.strip = []string{p.header}
	if p.member != "" {
		p.stripMembers = []string{p.member}
	}
	seen := map[string]bool{}
	for _, ds := range [][]dialectState{p.dialects, p.writeDialects} {
		for i := range ds {
			d := &ds[i]
			switch {
			case d.header != "" && !seen["h:"+d.header]:
				seen["h:"+d.header] = true
				p.httpKeys.strip = append(p.httpKeys.strip, d.canon)
				p.mdKeys.strip = append(p.mdKeys.strip, d.header)
			case d.member != "" && !seen["m:"+d.member]:
				seen["m:"+d.member] = true
				p.stripMembers = append(p.stripMembers, d.member)
			}
		}
	}

	for _, name := range append([]string{BaggageHeader}, p.mdKeys.strip...) {
		if len(name) < 64 {
			p.foldLens |= 1 << len(name)
		} else {
			p.foldLong = true
		}
	}

	// What Inject writes.
	for i := range p.writeDialects {
		d := &p.writeDialects[i]
		switch {
		case d.header != "":
			p.fields = append(p.fields, d.header)
		case !containsString(p.fields, BaggageHeader):
			p.fields = append(p.fields, BaggageHeader)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fromDialects tries the dialects in order and returns the first valid tag.
func (p *Propagator) fromDialects(ctx context.Context, values valuesFunc, k *carrierKeys) tag.Tag {
	for i := range p.dialects {
		d := &p.dialects[i]
		var t tag.Tag
		if d.header != "" {
			t = p.fromDialectHeader(ctx, d, values(d.key(k)))
		} else {
			t = p.fromDialectMember(ctx, d, values(k.baggage))
		}
		if !t.IsZero() {
			return t
		}
	}
	return tag.Tag{}
}

// fromDialectHeader picks the tag out of the values of a dialect header,
// with the rules of the tag header.
func (p *Propagator) fromDialectHeader(ctx context.Context, d *dialectState, vals []string) tag.Tag {
	var lane func(string) string
	if d.form == formPolaris {
		lane = d.polaris.lane
	}
	return pickTag(vals, lane, func(r rejectReason, v string) { p.stats.rejectDialect(ctx, d, r, v) })
}

// lane returns the lane of a Polaris stain value: the mapped lane of a
// value in m, the group of "group/rule", or a value without a slash as it
// is. Anything else yields "", an invalid tag.
func (m *polarisLanes) lane(v string) string {
	if m != nil {
		if lane, ok := m.lanes[v]; ok {
			return lane
		}
	}
	group, rule, ok := strings.Cut(v, "/")
	if !ok {
		return v
	}
	if group == "" || rule == "" || strings.IndexByte(rule, '/') >= 0 {
		return ""
	}
	return group
}

// value returns what d writes for t.
func (d *dialectState) value(t tag.Tag) string {
	if d.polaris != nil {
		if v, ok := d.polaris.stain[t.String()]; ok {
			return v
		}
	}
	return t.String()
}

// fromDialectMember picks the tag out of a dialect's baggage member, with
// the rules of the baggage source.
func (p *Propagator) fromDialectMember(ctx context.Context, d *dialectState, vals []string) tag.Tag {
	return memberTag(ctx, vals, d.member, func(r rejectReason, v string) { p.stats.rejectDialect(ctx, d, r, v) })
}

// injectDialects writes t in every write dialect of p.
func (p *Propagator) injectDialects(m map[string][]string, t tag.Tag, k *carrierKeys) {
	for i := range p.writeDialects {
		d := &p.writeDialects[i]
		if d.header != "" {
			key, v := d.key(k), d.value(t)
			if cur := m[key]; len(cur) != 1 || cur[0] != v {
				m[key] = []string{v}
			}
			continue
		}
		if out, changed, _ := setMember(m[k.baggage], d.member, t.String()); changed {
			if len(out) == 0 {
				delete(m, k.baggage)
			} else {
				m[k.baggage] = out
			}
		}
	}
}

// dialectsCarry reports whether every write dialect already carries t as
// injectDialects would write it.
func (p *Propagator) dialectsCarry(values valuesFunc, t tag.Tag, k *carrierKeys) bool {
	for i := range p.writeDialects {
		d := &p.writeDialects[i]
		if d.header != "" {
			if cur := values(d.key(k)); len(cur) != 1 || cur[0] != d.value(t) {
				return false
			}
			continue
		}
		if _, changed, _ := setMember(values(k.baggage), d.member, t.String()); changed {
			return false
		}
	}
	return true
}

// injectCarrierDialects is injectDialects for a carrier that reads with
// values and writes with set (see injectCarrier).
func (p *Propagator) injectCarrierDialects(values valuesFunc, set func(key, value string), t tag.Tag) {
	for i := range p.writeDialects {
		d := &p.writeDialects[i]
		if d.header != "" {
			if v, cur := d.value(t), values(d.header); len(cur) != 1 || cur[0] != v {
				set(d.header, v)
			}
			continue
		}
		if out, changed, _ := setMember(values(BaggageHeader), d.member, t.String()); changed {
			set(BaggageHeader, strings.Join(out, ","))
		}
	}
}

// rejectDialect counts and logs one value rejected by a dialect; the
// graylane.source attribute is the dialect's name.
func (s *stats) rejectDialect(ctx context.Context, d *dialectState, r rejectReason, value string) {
	if s.counter != nil {
		s.counter.Add(ctx, 1, d.rejects[r]...)
	}
	if s.logger.Enabled(ctx, slog.LevelDebug) {
		if len(value) > 80 {
			value = value[:80] + "…"
		}
		s.logger.DebugContext(ctx, "graylane: inbound tag ignored",
			slog.String("source", d.name), slog.String("reason", rejectNames[r]), slog.String("value", value))
	}
}
