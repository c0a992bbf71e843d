package fallback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// jsonConfig is the JSON form of the top-level settings and of one
// service's overrides. Pointers and nil slices mark absent fields. Modes
// and reasons are read as strings so that their errors can name the field.
type jsonConfig struct {
	Mode            *string                `json:"mode,omitempty"`
	Base            *string                `json:"base,omitempty"`
	Reasons         []string               `json:"reasons,omitzero"`
	FailoverTimeout *string                `json:"failoverTimeout,omitempty"`
	Chains          map[string][]string    `json:"chains,omitempty"`
	Lanes           map[string]jsonLane    `json:"lanes,omitempty"`
	Services        map[string]*jsonConfig `json:"services,omitempty"`
}

type jsonLane struct {
	Mode *string `json:"mode"`
}

// ParseJSON builds a Policy from its JSON form (see the package
// documentation for the schema). b must hold exactly one JSON object; `{}`
// yields the default policy. Unknown fields, values of the wrong type,
// unknown mode or reason names, bad durations and every problem NewPolicy
// reports are errors; once the JSON is syntactically valid and well typed,
// all problems are reported together, joined with errors.Join.
func ParseJSON(b []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c *jsonConfig
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(err)
	}
	if c == nil {
		return nil, errors.New("fallback: policy JSON is null; use {} for the default policy")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fallback: policy JSON: unexpected data after the top-level object, at byte %d", dec.InputOffset())
	}
	opts, errs := c.options("")
	p, err := NewPolicy(opts...)
	if len(errs) > 0 {
		// Report the fields that could not be read together with the
		// problems of the rest of the configuration.
		return nil, joinErrors(append(errs, err))
	}
	return p, err
}

// decodeError rewords the errors of encoding/json for a person editing a
// policy, keeping the original error reachable with errors.As.
func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		msg    string
	)
	switch {
	case errors.Is(err, io.EOF):
		msg = "policy JSON is empty; use {} for the default policy"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "policy JSON: unexpected end of input"
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("policy JSON: %s, at byte %d", syntax, syntax.Offset)
	case errors.As(err, &typ):
		where := "for the policy"
		if typ.Field != "" {
			where = "in field " + typ.Field
		}
		msg = fmt.Sprintf("policy JSON: wrong type %s: want %s, found a JSON %s at byte %d", where, describe(typ.Type), typ.Value, typ.Offset)
	default:
		msg = "policy JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	return &wrapError{msg: "fallback: " + msg, err: err}
}

// describe names the JSON form of a Go type used in jsonConfig.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// options turns c into options, and reports the values it could not turn
// into one; service is "" at top level.
func (c *jsonConfig) options(service string) ([]Option, []error) {
	var opts []Option
	var errs []error
	fail := func(format string, args ...any) {
		if service != "" {
			format = "service %q: " + format
			args = append([]any{clip(service)}, args...)
		}
		errs = append(errs, fmt.Errorf("fallback: "+format, args...))
	}
	if c.Mode != nil {
		if m, err := parseMode(*c.Mode); err != nil {
			fail("mode: %w", err)
		} else {
			opts = append(opts, WithMode(m))
		}
	}
	if c.Base != nil {
		opts = append(opts, WithBase(*c.Base))
	}
	if c.Reasons != nil {
		reasons := []Reason{}
		for _, name := range c.Reasons {
			if r, err := parseReason(name); err != nil {
				fail("reasons: unknown reason %q; allowed are %s", clip(name), fallbackReasonList())
			} else {
				reasons = append(reasons, r)
			}
		}
		opts = append(opts, WithReasons(reasons...))
	}
	if c.FailoverTimeout != nil {
		if d, err := time.ParseDuration(*c.FailoverTimeout); err != nil {
			fail("failoverTimeout: %w", err)
		} else {
			opts = append(opts, WithFailoverTimeout(d))
		}
	}
	for lane, chain := range c.Chains {
		opts = append(opts, WithChain(lane, chain...))
	}
	for _, lane := range slices.Sorted(maps.Keys(c.Lanes)) {
		l := c.Lanes[lane]
		if l.Mode == nil {
			fail("lanes: lane %q: field \"mode\" is required", clip(lane))
			continue
		}
		if m, err := parseMode(*l.Mode); err != nil {
			fail("lanes: lane %q: mode: %w", clip(lane), err)
		} else {
			opts = append(opts, WithLaneMode(lane, m))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		sc := c.Services[name]
		if sc == nil {
			sc = &jsonConfig{}
		}
		sopts, serrs := sc.options(name)
		errs = append(errs, serrs...)
		opts = append(opts, WithService(name, sopts...))
	}
	return opts, errs
}

// MarshalJSON returns the JSON form of p (see the package documentation).
// The top-level mode, base, reasons and failoverTimeout are always present;
// chains, lanes and services only when configured, and a service lists only
// the settings it overrides. The output is stable: ParseJSON accepts it and
// yields a Policy that behaves the same and marshals to the same bytes.
func (p *Policy) MarshalJSON() ([]byte, error) {
	p = p.orDefault()
	top := &p.cfg
	c := marshalSettings(top)
	c.Base = &top.base
	if len(top.services) > 0 {
		c.Services = make(map[string]*jsonConfig, len(top.services))
		for name, svc := range top.services {
			c.Services[name] = marshalSettings(svc)
		}
	}
	return json.Marshal(c)
}

// marshalSettings returns the JSON form of s without base and services: at
// top level every field, in a service only those it sets.
func marshalSettings(s *settings) *jsonConfig {
	c := &jsonConfig{}
	if s.modeSet || !s.inService {
		m := s.mode.String()
		c.Mode = &m
	}
	if s.reasonsSet || !s.inService {
		c.Reasons = []string{}
		for _, r := range s.reasons {
			c.Reasons = append(c.Reasons, r.String())
		}
	}
	if s.timeoutSet || !s.inService {
		d := s.timeout.String()
		c.FailoverTimeout = &d
	}
	if len(s.chains) > 0 {
		c.Chains = maps.Clone(s.chains)
	}
	if len(s.lanes) > 0 {
		c.Lanes = make(map[string]jsonLane, len(s.lanes))
		for lane, m := range s.lanes {
			name := m.String()
			c.Lanes[lane] = jsonLane{Mode: &name}
		}
	}
	return c
}

// UnmarshalJSON implements json.Unmarshaler with the rules of ParseJSON. It
// replaces the whole of *p, so use it only on a Policy that no other
// goroutine is using, such as a field being decoded. A JSON null leaves p
// unchanged.
func (p *Policy) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	q, err := ParseJSON(b)
	if err != nil {
		return err
	}
	*p = *q
	return nil
}
