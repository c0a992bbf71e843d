package ingress

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/graylane/graylane/tag"
)

// Rules is a compiled rule set: the rules, the default lane and the trust
// settings. Build it with Compile, Parse or Load. It is immutable and safe
// for concurrent use; *Rules is a Source that never changes.
type Rules struct {
	rules []rule
	dflt  tag.Tag
	trust trust
	known []string // sorted known lanes

	// Counter attributes, precomputed so that counting does not allocate.
	dfltOpts  [numStripped][]metric.AddOption
	keptOpts  map[string][]metric.AddOption // by known lane
	keptOther []metric.AddOption

	name, digest string
}

// rule is a compiled Rule.
type rule struct {
	name       string
	lane       tag.Tag
	methods    []string
	pathPrefix string
	headers    []cond // names canonical
	cookies    []cond
	query      []cond
	bps        int // share in hundredths of a percent; -1: no percentage
	sticky     sticky
	salt       uint64 // hash state after the lane, see StickyBucket
	opts       [numStripped][]metric.AddOption
}

// cond is a compiled Condition on a named header, cookie or parameter.
type cond struct {
	name  string
	op    Op
	value string
	re    *regexp.Regexp
	// For OpRegex: a literal every match starts with, and whether the
	// expression is that literal and nothing else.
	literal  string
	complete bool
}

type sticky struct {
	on     bool
	header string // canonical
	cookie string
	random bool // missing key: draw at random
}

// Rules returns rs itself: a *Rules is a Source that never changes.
func (rs *Rules) Rules() *Rules { return rs }

// Len returns the number of rules.
func (rs *Rules) Len() int { return len(rs.rules) }

// Default returns the default lane (the zero Tag: untagged).
func (rs *Rules) Default() tag.Tag { return rs.dflt }

// Lanes returns the known lanes, sorted: those of Config.Lanes, the rules,
// the default and the exact names of the trust allowlist.
func (rs *Rules) Lanes() []string { return slices.Clone(rs.known) }

// Digest returns a short hex digest of the file the rules were parsed from,
// for logs; "" for rules built with Compile.
func (rs *Rules) Digest() string { return rs.digest }

// Evaluate applies the rules, and only the rules, to r: the first rule that
// matches assigns its lane (Outcome OutcomeRule), otherwise the default
// applies (OutcomeDefault). It neither reads nor strips client tags; the
// middleware does that first. Evaluate does not allocate unless a query
// parameter name or value is percent-encoded. A nil r.Header or r.URL is
// read as empty.
func (rs *Rules) Evaluate(r *http.Request) Decision {
	d := Decision{Rule: -1}
	rs.evaluate(r, &d)
	return d
}

func (rs *Rules) evaluate(r *http.Request, d *Decision) {
	for i := range rs.rules {
		ru := &rs.rules[i]
		if ru.matches(r) {
			d.Outcome, d.Rule, d.RuleName, d.Tag = OutcomeRule, i, ru.name, ru.lane
			return
		}
	}
	d.Outcome, d.Tag = OutcomeDefault, rs.dflt
}

func (ru *rule) matches(r *http.Request) bool {
	if len(ru.methods) > 0 && !slices.Contains(ru.methods, r.Method) {
		return false
	}
	if ru.pathPrefix != "" && (r.URL == nil || !strings.HasPrefix(r.URL.Path, ru.pathPrefix)) {
		return false
	}
	for i := range ru.headers {
		if !ru.headers[i].holdsFor(r.Header[ru.headers[i].name]) {
			return false
		}
	}
	if len(ru.query) > 0 {
		raw := ""
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for i := range ru.query {
			if !ru.query[i].holdsForQuery(raw) {
				return false
			}
		}
	}
	for i := range ru.cookies {
		if !ru.cookies[i].holdsForCookies(r.Header["Cookie"]) {
			return false
		}
	}
	return ru.bps < 0 || ru.draw(r)
}

// draw decides the rule's percentage for r.
func (ru *rule) draw(r *http.Request) bool {
	if ru.sticky.on {
		key := ru.sticky.key(r)
		if key != "" {
			return bucket(ru.salt, key) < ru.bps
		}
		if !ru.sticky.random {
			return false
		}
	}
	switch ru.bps {
	case 0:
		return false
	case buckets:
		return true
	}
	return rand.IntN(buckets) < ru.bps
}

// key returns the first value of the sticky header or cookie, or "".
func (s *sticky) key(r *http.Request) string {
	if s.header != "" {
		if v := r.Header[s.header]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var name, value string
			name, value, line = nextCookie(line)
			if name == s.cookie {
				return value
			}
		}
	}
	return ""
}

// holds reports whether the condition holds for the values of its name.
func (c *cond) holdsFor(vals []string) bool {
	if c.isPresence() {
		return len(vals) > 0 == (c.op == OpPresent)
	}
	for _, v := range vals {
		if c.test(v) {
			return true
		}
	}
	return false
}

func (c *cond) test(v string) bool {
	switch c.op {
	case OpExact:
		return v == c.value
	case OpPrefix:
		return strings.HasPrefix(v, c.value)
	case OpRegex:
		if !strings.HasPrefix(v, c.literal) {
			return false
		}
		if c.complete {
			return len(v) == len(c.literal)
		}
		return c.re.MatchString(v)
	}
	return false
}

// holdsForCookies tests the cookies named c.name in the Cookie header
// lines.
func (c *cond) holdsForCookies(lines []string) bool {
	for _, line := range lines {
		if !strings.Contains(line, c.name) {
			continue // names are not escaped: it is not in this line
		}
		for line != "" {
			var name, value string
			name, value, line = nextCookie(line)
			if name != c.name {
				continue
			}
			if c.isPresence() {
				return c.op == OpPresent
			}
			if c.test(value) {
				return true
			}
		}
	}
	return c.op == OpAbsent
}

// isPresence reports whether c tests only whether its name is there. The
// holdsFor methods return c.op == OpPresent as soon as they find the name,
// and c.op == OpAbsent when it is nowhere (false for every value test).
func (c *cond) isPresence() bool { return c.op == OpPresent || c.op == OpAbsent }

// nextCookie splits the first cookie off a Cookie header line: "a=1; b=2"
// gives "a", "1", "b=2". A quoted value loses its quotes.
func nextCookie(line string) (name, value, rest string) {
	pair, rest, _ := strings.Cut(line, ";")
	name, value, _ = strings.Cut(trimOWS(pair), "=")
	name = trimOWS(name)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return name, value, rest
}

// holdsForQuery tests the parameters named c.name in a raw query string.
// Pairs are split on '&', names and values percent-decoded ('+' is a
// space); a pair that does not decode, or holds a ';', is skipped, as
// net/url does.
func (c *cond) holdsForQuery(raw string) bool {
	if !strings.Contains(raw, c.name) && strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		raw = "" // no escapes, and the name is nowhere
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		name, value, _ := strings.Cut(pair, "=")
		if name != c.name && strings.IndexByte(name, '%') < 0 && strings.IndexByte(name, '+') < 0 {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		name, ok := queryUnescape(name)
		if !ok || name != c.name {
			continue
		}
		if c.isPresence() {
			return c.op == OpPresent
		}
		if value, ok = queryUnescape(value); ok && c.test(value) {
			return true
		}
	}
	return c.op == OpAbsent
}

// queryUnescape decodes s, allocating only when it holds an escape.
func queryUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	v, err := url.QueryUnescape(s)
	return v, err == nil
}

// Compile validates c and compiles it. It returns every problem found, each
// a *FieldError naming the field, such as "rules[2].lane", joined with
// errors.Join.
func Compile(c Config) (*Rules, error) {
	return compile(c, &errorList{})
}

// compile compiles c, adding its problems to those in l.
func compile(c Config, l *errorList) (*Rules, error) {
	rs := &Rules{}
	known := map[string]bool{}

	for i, lane := range c.Lanes {
		p := indexPath("lanes", i)
		if _, err := tag.Parse(lane); err != nil {
			l.add(0, p, "%v", err)
			continue
		}
		if known[lane] {
			l.add(0, p, "lane %q listed twice", lane)
		}
		known[lane] = true
	}
	if c.Default != "" {
		t, err := tag.Parse(c.Default)
		if err != nil {
			l.add(0, "default", "%v", err)
		}
		rs.dflt = t
		known[c.Default] = true
	}
	rs.trust = compileTrust(c.Trust, l, known)

	names := map[string]int{}
	rs.rules = make([]rule, 0, len(c.Rules))
	for i, r := range c.Rules {
		p := indexPath("rules", i)
		ru := compileRule(r, p, l)
		if r.Name != "" {
			if j, ok := names[r.Name]; ok {
				l.add(0, joinPath(p, "name"), "%q is also the name of rules[%d]; names must be unique", r.Name, j)
			}
			names[r.Name] = i
		}
		if !ru.lane.IsZero() {
			known[ru.lane.String()] = true
		}
		rs.rules = append(rs.rules, ru)
	}
	if err := l.err(); err != nil {
		return nil, err
	}

	for lane := range known {
		rs.known = append(rs.known, lane)
	}
	sort.Strings(rs.known)
	if len(c.Trust.Lanes) == 0 {
		rs.trust.lanes = known
	}
	rs.setMetricOptions()
	return rs, nil
}

func compileRule(r Rule, path string, l *errorList) rule {
	ru := rule{name: r.Name, bps: -1}
	switch {
	case r.Name == "":
		l.add(0, joinPath(path, "name"), "missing; every rule needs a unique name")
	case !tag.Valid(r.Name):
		l.add(0, joinPath(path, "name"), "%q: use 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", r.Name)
	}
	if r.Lane == "" {
		l.add(0, joinPath(path, "lane"), "missing; every rule assigns a lane")
	} else if t, err := tag.Parse(r.Lane); err != nil {
		l.add(0, joinPath(path, "lane"), "%v", err)
	} else {
		ru.lane = t
		ru.salt = laneSalt(r.Lane)
	}

	mp := joinPath(path, "match")
	m := r.Match
	for i, meth := range m.Method {
		if !isToken(meth) {
			l.add(0, indexPath(joinPath(mp, "method"), i), "%q is not an HTTP method", meth)
			continue
		}
		ru.methods = append(ru.methods, strings.ToUpper(meth))
	}
	if m.PathPrefix != "" && m.PathPrefix[0] != '/' {
		l.add(0, joinPath(mp, "pathPrefix"), "%q must start with '/'", m.PathPrefix)
	}
	ru.pathPrefix = m.PathPrefix
	ru.headers = compileConds(m.Header, joinPath(mp, "header"), l, func(name string) (string, bool) {
		return textproto.CanonicalMIMEHeaderKey(name), isToken(name)
	})
	ru.cookies = compileConds(m.Cookie, joinPath(mp, "cookie"), l, func(name string) (string, bool) {
		return name, isToken(name)
	})
	ru.query = compileConds(m.Query, joinPath(mp, "query"), l, func(name string) (string, bool) {
		return name, name != ""
	})

	if r.Percent != nil {
		p := *r.Percent
		bps := math.Round(p * 100)
		switch {
		case math.IsNaN(p) || p < 0 || p > 100:
			l.add(0, joinPath(path, "percent"), "%v: must be from 0 to 100", p)
		case math.Abs(p*100-bps) > 1e-6:
			l.add(0, joinPath(path, "percent"), "%v: at most two decimals (steps of 0.01%%)", p)
		default:
			ru.bps = int(bps)
		}
	}
	if s := r.Sticky; s != nil {
		sp := joinPath(path, "sticky")
		ru.sticky = sticky{on: true, random: s.Missing == MissingRandom}
		switch {
		case (s.Header == "") == (s.Cookie == ""):
			l.add(0, sp, "needs exactly one of header and cookie")
		case s.Header != "" && !isToken(s.Header):
			l.add(0, joinPath(sp, "header"), "%q is not a header name", s.Header)
		case s.Cookie != "" && !isToken(s.Cookie):
			l.add(0, joinPath(sp, "cookie"), "%q is not a cookie name", s.Cookie)
		case s.Header != "":
			ru.sticky.header = textproto.CanonicalMIMEHeaderKey(s.Header)
		default:
			ru.sticky.cookie = s.Cookie
		}
		if s.Missing > MissingRandom {
			l.add(0, joinPath(sp, "missing"), "unknown value %v; use none or random", s.Missing)
		}
		if r.Percent == nil {
			l.add(0, sp, "needs percent: it keys the percentage of the rule")
		}
	}
	return ru
}

// compileConds compiles the conditions of m, sorted by name; canon checks a
// name and returns the form it is looked up by.
func compileConds(m map[string]Condition, path string, l *errorList, canon func(string) (string, bool)) []cond {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]cond, 0, len(m))
	for _, name := range names {
		c := m[name]
		p := joinPath(path, name)
		key, ok := canon(name)
		if !ok {
			l.add(0, p, "%q is not a valid name", name)
			continue
		}
		cc := cond{name: key, op: c.Op, value: c.Value}
		switch c.Op {
		case OpExact, OpPrefix, OpPresent, OpAbsent:
		case OpRegex:
			re, err := compileRegex(c.Value, l)
			if err != nil {
				l.add(0, joinPath(p, "regex"), "%s", err)
				continue
			}
			cc.re = re
			cc.literal, cc.complete = re.LiteralPrefix()
		default:
			l.add(0, p, "no condition; use one of exact, prefix, regex and present")
			continue
		}
		out = append(out, cc)
	}
	return out
}

// Limits on the regular expressions of a rule set. The size of an
// expression is an upper bound of the instructions of its compiled program,
// worked out from its syntax before it is compiled: a literal counts one per
// character, a class or an operator one, and a repeat multiplies the size of
// what it repeats by its count. A program costs a few hundred bytes per
// instruction, so the limits keep a rule file's expressions within a few
// tens of MiB, and their compilation within milliseconds.
const (
	// MaxRegexSize bounds the size of one expression.
	MaxRegexSize = 10000
	// MaxRegexTotalSize bounds the size of every expression of a rule
	// set together.
	MaxRegexTotalSize = 50000
)

// compileRegex compiles re to match whole values, counting its size
// against the budget of l.
func compileRegex(re string, l *errorList) (*regexp.Regexp, error) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: `%s`", se.Code, se.Expr)
		}
		return nil, err
	}
	size := regexSize(parsed, MaxRegexSize+1)
	if size > MaxRegexSize {
		return nil, fmt.Errorf("expression too large: over %d instructions, at most %d per expression (a repeat such as {1000} multiplies the size of what it repeats)", MaxRegexSize, MaxRegexSize)
	}
	if l.regexSize+size > MaxRegexTotalSize {
		return nil, fmt.Errorf("expressions too large in total: over %d instructions in the rule set, at most %d", MaxRegexTotalSize, MaxRegexTotalSize)
	}
	l.regexSize += size
	return regexp.Compile(`^(?:` + re + `)$`)
}

// regexSize returns an upper bound of the instructions of re's program, or
// a number over limit as soon as it exceeds limit.
func regexSize(re *syntax.Regexp, limit int) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return 2 + regexSize(re.Sub[0], limit)
	case syntax.OpRepeat:
		n := re.Max
		if n < 0 {
			n = re.Min + 1
		}
		sub := regexSize(re.Sub[0], limit) + 1
		if n > 0 && sub > limit/n {
			return limit + 1
		}
		return n*sub + 1
	case syntax.OpConcat, syntax.OpAlternate:
		total := 1
		for _, sub := range re.Sub {
			total += regexSize(sub, limit) + 1
			if total > limit {
				return limit + 1
			}
		}
		return total
	}
	return 1 // classes, any character, empty-width assertions, no match
}

// trimOWS trims spaces and tabs at both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is an RFC 9110 token: a valid header name,
// cookie name or method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}
