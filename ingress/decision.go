package ingress

import (
	"context"
	"strconv"
	"strings"

	"github.com/graylane/graylane/tag"
)

// Outcome says how the gateway chose a request's lane.
type Outcome uint8

const (
	// OutcomeDefault: no rule matched; the default lane applies (the
	// request may be untagged).
	OutcomeDefault Outcome = iota
	// OutcomeRule: a rule assigned the lane.
	OutcomeRule
	// OutcomeKept: a trusted client sent the tag of an allowed lane, and it
	// was kept; the rules were not evaluated.
	OutcomeKept
)

var outcomeNames = [...]string{OutcomeDefault: "default", OutcomeRule: "rule", OutcomeKept: "kept"}

// String returns "default", "rule" or "kept".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Stripped says why the tag a client sent was removed.
type Stripped uint8

const (
	// StrippedNone: the client sent no tag, or a trusted client's tag was
	// kept.
	StrippedNone Stripped = iota
	// StrippedUntrusted: the client is not trusted.
	StrippedUntrusted
	// StrippedNotAllowed: the client is trusted, but its lane is not in the
	// allowlist.
	StrippedNotAllowed
	// StrippedInvalid: the client is trusted, but sent no valid tag (only
	// invalid or ambiguous values).
	StrippedInvalid
	numStripped
)

var strippedNames = [numStripped]string{"none", "untrusted", "not_allowed", "invalid"}

// String returns "none", "untrusted", "not_allowed" or "invalid".
func (s Stripped) String() string {
	if s < numStripped {
		return strippedNames[s]
	}
	return "Stripped(" + strconv.Itoa(int(s)) + ")"
}

// Decision is what the gateway decided for one request. The middleware
// puts it into the request's context (see DecisionFromContext).
type Decision struct {
	// Outcome says how the lane was chosen.
	Outcome Outcome
	// Tag is the tag the request carries on; the zero Tag for an untagged
	// request.
	Tag tag.Tag
	// Rule is the index of the rule that assigned the lane, from 0, as in
	// the rule file's rules[N]; -1 unless Outcome is OutcomeRule.
	Rule int
	// RuleName is the name of that rule; "" unless Outcome is OutcomeRule.
	RuleName string
	// Stripped says why a tag the client sent was removed.
	Stripped Stripped
	// Trusted reports whether the client was trusted (by Trust.Peers or
	// WithTrustFunc).
	Trusted bool
	// Proxied reports whether the direct peer is one of Trust.Proxies, so
	// that the inbound X-Forwarded-For was written by trusted proxies.
	Proxied bool
}

// String describes d in one line, such as
//
//	rule 2 (testers) -> gray; client tag stripped: untrusted
func (d Decision) String() string {
	var b strings.Builder
	switch d.Outcome {
	case OutcomeRule:
		b.WriteString("rule ")
		b.WriteString(strconv.Itoa(d.Rule))
		b.WriteString(" (")
		b.WriteString(d.RuleName)
		b.WriteString(")")
	default:
		b.WriteString(d.Outcome.String())
	}
	b.WriteString(" -> ")
	if d.Tag.IsZero() {
		b.WriteString("untagged")
	} else {
		b.WriteString(d.Tag.String())
	}
	if d.Stripped != StrippedNone {
		b.WriteString("; client tag stripped: ")
		b.WriteString(d.Stripped.String())
	}
	return b.String()
}

// decisionKey is the key under which a decisionContext answers Value with
// itself.
type decisionKey struct{}

// decisionContext carries a Decision: a context of its own, so that storing
// one costs a single allocation.
type decisionContext struct {
	context.Context
	d Decision
}

func (c *decisionContext) Value(key any) any {
	if key == (decisionKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// NewContext returns a copy of parent that carries d. The middleware calls
// it; it is exported for tests and for other front ends.
func NewContext(parent context.Context, d Decision) context.Context {
	return &decisionContext{Context: parent, d: d}
}

// DecisionFromContext returns the Decision the gateway recorded for the
// request whose context is ctx, and whether there is one.
func DecisionFromContext(ctx context.Context) (Decision, bool) {
	c, _ := ctx.Value(decisionKey{}).(*decisionContext)
	if c == nil {
		return Decision{Rule: -1}, false
	}
	return c.d, true
}
