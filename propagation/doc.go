// Package propagation reads the traffic tag from inbound requests and writes
// it on outbound ones: HTTP headers, gRPC metadata and W3C baggage.
//
// A Propagator is built once, from options, and is then immutable and safe
// for concurrent use. Middleware in the httpmw and grpcmw packages uses one;
// it also implements OpenTelemetry's propagation.TextMapPropagator, so it can
// sit in a composite propagator next to propagation.TraceContext{} and
// propagation.Baggage{}.
//
// # Sources
//
// On the way in, sources are tried in order and the first that yields a valid
// tag wins. The default order is:
//
//  1. SourceHeader: the tag header, "x-traffic-tag" (the gRPC metadata key is
//     the same name, lower-case);
//  2. SourceBaggage: the W3C baggage list-member "traffic-tag", read from the
//     carrier's "baggage" header or, failing that, from the OpenTelemetry
//     baggage already in the context (put there by propagation.Baggage{} or
//     otelhttp/otelgrpc);
//  3. SourceOwn: the service's own tag, from WithOwnTag or the GRAYLANE_TAG
//     environment variable. A request that reaches a gray instance untagged
//     leaves it tagged gray.
//
// Names and order are options (WithHeader, WithBaggageMember, WithOwnTag,
// WithSources).
//
// # Dialects
//
// Other traffic-lane systems carry the tag in formats of their own. With
// WithDialects, a Propagator also reads them, as one more source,
// SourceDialect, which by default comes after the baggage member and before
// the service's own tag:
//
//	tag header > baggage member > dialects, in the order given > own tag
//
// With WithWriteDialects, it also writes them on outbound requests, besides
// the tag header. Reading and writing are separate so that a service can,
// for instance, accept a foreign header at the edge of a migration without
// spreading it further. The presets:
//
//	DialectASM        header x-asm-prefer-tag         Alibaba Cloud Service Mesh
//	DialectOpenSergo  header x-opensergo-traffic      OpenSergo traffic lanes
//	DialectMSE        header x-mse-tag                Alibaba Cloud MSE
//	DialectPolaris    header service-lane             Polaris lanes ("group/rule" read as the group, or "lane")
//	DialectSignadot   baggage member sd-routing-key   Signadot
//	DialectKitex      header rpc-persist-traffic-tag  CloudWeGo Kitex persistent metainfo TRAFFIC_TAG
//
// HeaderDialect, BaggageDialect and KitexDialect build others; PolarisDialect
// maps Polaris's "group/rule" values to lanes of other names. A dialect's
// value is the lane name and follows the rules below; its rejections are
// counted with graylane.source set to the dialect's name. With no dialect
// configured, reading and writing cost exactly what they did without them.
//
// # Stripping
//
// Strip, StripMetadata and StripContext remove every place a Propagator
// reads a tag from or writes one to (the tag header, the baggage member,
// every dialect), keeping other baggage members. They match loosely, so
// that no reader downstream finds a tag they missed: header names in any
// case and punctuation, baggage keys trimmed of any Unicode white space or
// control character, percent-decoded, in any case (see Strip). The edge (package ingress)
// uses them so that a tag sent by an untrusted client does not reach the
// services behind it.
//
// # Bad input
//
// Inbound values are untrusted. Nothing here panics on them, returns an error
// for them, or drops a request because of them; a source whose value is bad
// is skipped as if it were absent, the next source is tried, and the
// rejection is counted on the OpenTelemetry counter graylane.tag.rejected
// (attributes graylane.source and graylane.reason) and logged at debug level.
// The rules:
//
//   - a value that is not a valid tag (see package tag): reason "invalid";
//   - several values of one source that disagree (two tag headers, or two
//     baggage members with the tag key, with different valid values): reason
//     "ambiguous". Repeats of the same value are fine; invalid values among
//     them are counted and ignored;
//   - a baggage header longer than 8192 bytes in all (W3C limit, all
//     "baggage" headers joined by commas): the whole baggage is ignored,
//     reason "oversize", as OpenTelemetry's own baggage propagator does;
//   - only the first 64 list-members of the baggage are looked at (W3C
//     limit); a tag member after them is not seen;
//   - keys and values are trimmed of white space as OpenTelemetry's parser
//     trims them (strings.TrimSpace: space, tab and every other Unicode
//     white space), so that a service reads the same member whether or not
//     otelhttp parsed the baggage first; keys are case-sensitive;
//   - baggage values are percent-decoded; a broken escape ("%g1", "%4")
//     makes the member invalid; decoded bytes outside the tag alphabet
//     (including any non-ASCII or non-UTF-8 byte) make the tag invalid.
//
// Reading the baggage member is a bounded scan for that one key, not a parse
// of the whole header: it does not allocate unless the value is
// percent-encoded, and it costs a few nanoseconds per list-member.
//
// HTTP header names are matched as net/http stores them (canonical form, as
// every net/http server and the http.Header methods produce them). Tag values
// are case-sensitive.
//
// # Writing
//
// On the way out, the tag header is set to the tag (replacing any earlier
// value). With WithBaggageInjection, the baggage member is also added to, or
// replaced in, the "baggage" header, leaving every other list-member as it
// was; if the member would break the W3C limits (64 members, 8192 bytes), the
// baggage is left without it (and without any stale tag member), and the tag
// header alone carries the tag.
package propagation
