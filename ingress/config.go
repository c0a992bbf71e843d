package ingress

import (
	"fmt"
	"strconv"
)

// Config is a rule set in source form: what a rule file holds, field for
// field (see the package documentation for the file schema). Build one in
// code and turn it into Rules with Compile, or let Parse, Load or Watch read
// it from a file.
type Config struct {
	// Lanes lists lanes known to the gateway besides those its rules and
	// default assign. Known lanes are the default allowlist of trusted tags
	// and the values of the graylane.lane metric attribute.
	Lanes []string
	// Default is the lane of a request no rule matches; "" leaves it
	// untagged (it goes to the base lane).
	Default string
	// Trust says whose tags are honoured.
	Trust Trust
	// Rules are evaluated in order; the first that matches assigns its
	// lane.
	Rules []Rule
}

// Trust says which clients may choose their own lane by sending a tag.
// Every other client's tag is stripped.
type Trust struct {
	// Peers are IP addresses or CIDR prefixes (such as "10.0.0.0/8") of
	// trusted clients, checked against the request's RemoteAddr, or the
	// client address found through Proxies.
	Peers []string
	// Proxies are IP addresses or CIDR prefixes of the proxies in front of
	// the gateway (a load balancer). When the direct peer is one of them,
	// the client address is read from X-Forwarded-For, right to left,
	// skipping the addresses of Proxies.
	Proxies []string
	// Lanes is the allowlist of lanes a trusted client may choose: lane
	// names, or prefixes ending in "*" ("dev-*"; "*" alone allows any
	// lane). Empty means the known lanes (see Config.Lanes).
	Lanes []string
}

// Rule assigns a lane to the requests it matches.
type Rule struct {
	// Name identifies the rule in decisions, metrics and logs: 1 to 63
	// letters, digits, '.', '_' or '-', unique in the rule set.
	Name string
	// Lane is the tag the rule assigns.
	Lane string
	// Match lists conditions that must all hold. The zero Match matches
	// every request.
	Match Match
	// Percent, when not nil, limits the rule to that share of the matching
	// requests, from 0 to 100 in steps of 0.01. See Sticky for which ones.
	Percent *float64
	// Sticky, when not nil, keys the percentage on a header or cookie so
	// that a key always gets the same answer. Without it, each request is
	// drawn at random. It needs Percent.
	Sticky *Sticky
}

// Match is the set of conditions of a rule. They must all hold.
type Match struct {
	// Header maps a header name (any case) to a condition on its values.
	Header map[string]Condition
	// Cookie maps a cookie name (case-sensitive) to a condition on its
	// values.
	Cookie map[string]Condition
	// Query maps a query parameter name (case-sensitive, after
	// percent-decoding) to a condition on its values.
	Query map[string]Condition
	// PathPrefix, when not "", must be a prefix of the request's URL path,
	// percent-decoded (r.URL.Path); it must start with '/'.
	PathPrefix string
	// Method, when not empty, lists the HTTP methods that match (written in
	// any case, compared in upper case).
	Method []string
}

// Op is the comparison of a Condition.
type Op uint8

// The comparisons.
const (
	OpExact   Op = iota + 1 // a value equals Condition.Value
	OpPrefix                // a value starts with Condition.Value
	OpRegex                 // a value matches the regular expression Condition.Value, in full
	OpPresent               // the header, cookie or parameter is there, with any value
	OpAbsent                // the header, cookie or parameter is not there
)

var opNames = [...]string{OpExact: "exact", OpPrefix: "prefix", OpRegex: "regex", OpPresent: "present", OpAbsent: "absent"}

// String returns "exact", "prefix", "regex", "present" or "absent".
func (o Op) String() string {
	if o >= OpExact && int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Condition is a test on the values of one header, cookie or query
// parameter. When the name has several values, the condition holds if one
// of them passes. Build one with Exact, Prefix, Regex, Present or Absent.
type Condition struct {
	Op    Op
	Value string // unused by OpPresent and OpAbsent
}

// Exact is the condition that a value equals v.
func Exact(v string) Condition { return Condition{Op: OpExact, Value: v} }

// Prefix is the condition that a value starts with v.
func Prefix(v string) Condition { return Condition{Op: OpPrefix, Value: v} }

// Regex is the condition that a value matches the regular expression re
// (RE2 syntax, as package regexp) in full: it is anchored at both ends.
func Regex(re string) Condition { return Condition{Op: OpRegex, Value: re} }

// Present is the condition that the name is there, with any value.
func Present() Condition { return Condition{Op: OpPresent} }

// Absent is the condition that the name is not there.
func Absent() Condition { return Condition{Op: OpAbsent} }

// String returns the condition as the rule file writes it, such as
// `exact: "gray"`.
func (c Condition) String() string {
	switch c.Op {
	case OpPresent:
		return "present: true"
	case OpAbsent:
		return "present: false"
	}
	return fmt.Sprintf("%v: %q", c.Op, c.Value)
}

// Sticky keys a rule's percentage on the value of a header or a cookie: a
// request is in if the bucket of its key, StickyBucket(lane, key), is below
// the percentage times 100. A key stays in when the percentage is raised.
type Sticky struct {
	// Header names the header whose first value is the key.
	Header string
	// Cookie names the cookie whose first value is the key. Exactly one of
	// Header and Cookie is set.
	Cookie string
	// Missing says what to do with a request that has no key (or an empty
	// one). The default is MissingNone.
	Missing Missing
}

// Missing is what a sticky rule does with a request without a key.
type Missing uint8

const (
	// MissingNone: the rule does not match the request.
	MissingNone Missing = iota
	// MissingRandom: the request is drawn at random, with the rule's
	// percentage.
	MissingRandom
)

var missingNames = [...]string{MissingNone: "none", MissingRandom: "random"}

// String returns "none" or "random".
func (m Missing) String() string {
	if int(m) < len(missingNames) {
		return missingNames[m]
	}
	return "Missing(" + strconv.Itoa(int(m)) + ")"
}

// Percent returns a pointer to p, for Rule.Percent.
func Percent(p float64) *float64 { return &p }
