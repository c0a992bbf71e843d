// Package ingress is graylane's edge: it decides which lane each request
// entering the system belongs to, and keeps clients from choosing a lane
// they may not choose.
//
// A gateway is Middleware, configured by a rule set (a Source: *Rules, or a
// *Watcher that follows a rule file), in front of any handler; in front of
// NewReverseProxy it is a lane-aware reverse proxy:
//
//	rules, err := ingress.Load("rules.yaml")   // or ingress.Watch(ctx, "rules.yaml")
//	...
//	proxy := ingress.NewReverseProxy(target, routingTransport)
//	http.ListenAndServe(addr, ingress.Middleware(rules)(proxy))
//
// # Rules
//
// Rules are evaluated in order, and the first that matches assigns its lane;
// when none matches, the default lane applies (none: the request stays
// untagged and goes to the base lane). A rule matches when all of its
// conditions hold:
//
//   - method: the request method is one of a list;
//   - pathPrefix: the URL path (percent-decoded, as r.URL.Path) starts with
//     a prefix;
//   - header, cookie, query: a condition on the values of a header (name in
//     any case), a cookie or a query parameter (names case-sensitive, query
//     names and values percent-decoded): exact (equal), prefix, regex (RE2
//     syntax, matching the whole value) or present (true: there, with any
//     value, even empty; false: not there). With several values (two
//     headers, two cookies of one name, a repeated parameter), the
//     condition holds if one value passes;
//   - percent: only that share of the requests that pass the conditions
//     above, from 0 to 100 in steps of 0.01.
//
// Without sticky, percent draws each request at random. With sticky, it is
// keyed on the first value of a header or cookie, such as a user id: the key
// is hashed, with the lane as salt, to a bucket from 0 to 9999
// (StickyBucket), and the request matches when the bucket is below
// percent×100. A key therefore always gets the same answer, and raising the
// percentage from 10 to 20 keeps every key of the first 10% in the lane. A
// request without the key (or with an empty one) follows the rule's missing
// setting: "none" (the default: the rule does not match) or "random" (a
// random bucket for this request).
//
// Rule sets are compiled once: names are canonicalised and regular
// expressions compiled when the rules are loaded. Evaluating rules does not
// allocate (unless a query parameter is percent-encoded); 20 rules cost well
// under a microsecond (see the benchmarks).
//
// # Trust
//
// By default, every tag a client sends is removed before the rules run:
// every place the Propagator reads a tag from (the tag header, the baggage
// member, every dialect it reads or writes, and the same members of
// OpenTelemetry baggage already in the context), read as loosely as any
// server behind might read them (see propagation.Propagator.Strip), and the
// route receipt request header (x-graylane-route, and the header named with
// WithReceiptHeader). So a client cannot pick a lane, nor ask for route
// receipts, by sending headers. Tokens of the Connection header that name
// these headers are removed too, so that a proxy behind does not drop the
// tag the gateway sets.
//
// A trusted client keeps its tag, and the rules are not evaluated for it. A
// client is trusted when
//
//   - its address is in trust.peers, IP addresses or CIDR prefixes. The
//     address is the request's RemoteAddr, unless RemoteAddr is in
//     trust.proxies: then X-Forwarded-For is read from right to left,
//     skipping addresses in trust.proxies, and the first other address is
//     the client (all of them proxies: the leftmost; no header: the proxy
//     itself; a malformed entry: not trusted). X-Forwarded-For is never read
//     from a peer outside trust.proxies, since anyone can write it;
//   - or the function given with WithTrustFunc says so (for instance after
//     an authentication middleware has checked a credential).
//
// Even a trusted client keeps its tag only for an allowed lane: trust.lanes,
// lane names or prefix patterns ("dev-*"; "*" for any), or, when it is
// empty, the known lanes: those of lanes, of the rules and of the default.
// The tag of another lane is stripped, and the rules decide. A trusted
// client keeps the route receipt header.
//
// The outcome is a Decision (kept, assigned by a rule, or the default, and
// why a client tag was stripped), put into the request's context
// (DecisionFromContext), counted on the OpenTelemetry counter
// graylane.ingress.decisions (attributes graylane.outcome, graylane.rule,
// graylane.lane, graylane.stripped; bounded: graylane.lane is a known lane,
// "" or "other"), set as attributes on the active span when it is recording,
// and logged at debug level.
//
// # Rule file
//
// Parse, Load and Watch read YAML or JSON (JSON by the ".json" extension, or
// a first character '{'). The schema, every field optional unless marked:
//
//	version: 1                # the only version
//	lanes: [gray, blue]       # lanes known besides those of the rules and the default
//	default: ""               # lane of requests no rule matches; "" = untagged
//	trust:
//	  peers: [10.0.0.0/8]     # trusted clients: IP addresses or CIDR prefixes
//	  proxies: [10.1.0.0/16]  # proxies in front of the gateway, whose X-Forwarded-For is read
//	  lanes: [gray, dev-*]    # lanes trusted clients may choose; default: the known lanes
//	rules:
//	  - name: testers         # required, unique: letters, digits, '.', '_', '-'
//	    lane: gray            # required
//	    match:                # all must hold; none: every request
//	      method: [GET, POST]
//	      pathPrefix: /api/
//	      header:
//	        x-user-group: {exact: testers}   # or prefix, regex, present: true|false
//	        x-canary: "on"                   # a bare string is short for exact
//	      cookie:
//	        beta: {present: true}
//	      query:
//	        lane: {regex: "gr(a|e)y"}
//	    percent: 10           # 0 to 100, steps of 0.01; absent: 100
//	    sticky:               # needs percent
//	      header: x-user-id   # or cookie: uid
//	      missing: none       # or random
//
// Lane names are tags (see package tag). Header, cookie and method names are
// HTTP tokens; path prefixes start with '/'.
//
// # Bad input
//
// A rule file is checked entirely before it is used. Every problem is
// reported, as a *FieldError with the file, the line and the path of the
// field, such as
//
//	rules.yaml:12: rules[2].match.header.x-user.regex: missing closing ): `(gray`
//
// Unknown fields, repeated fields, values of the wrong type, invalid lanes,
// names, addresses, regular expressions and percentages, a sticky rule
// without percent, an empty file, several YAML documents, anchors and
// aliases, files over 1 MiB, and regular expressions whose programs would be
// too large (MaxRegexSize each, MaxRegexTotalSize together; a repeat such
// as {1000} multiplies the size of what it repeats) are errors. Load, Parse and Compile return
// them; Watch returns them for the first load and, for later changes, keeps
// the rules in force and reports the error (see Watcher).
//
// At run time nothing a client sends makes the gateway fail a request:
// invalid, ambiguous or oversized tags are stripped like valid ones (from a
// trusted client too, Stripped "invalid"); malformed cookies, query strings
// and X-Forwarded-For headers make the conditions on them not hold; a
// request without a sticky key follows the rule's missing setting.
package ingress
