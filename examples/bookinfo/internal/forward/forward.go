// Package forward picks the request headers the Bookinfo services pass on
// to the services they call, and writes them on outbound HTTP requests and
// gRPC calls.
//
// Headers are carried as a flat list of pairs (key, value, key, value…)
// with lower-case keys, in the order of Headers, each value of a repeated
// header as a pair of its own.
//
// The traffic tag is not among them: graylane's transport and interceptors
// carry it through the request context.
package forward

import (
	"context"
	"net/http"

	"google.golang.org/grpc/metadata"
)

// EndUser is the header that names the logged-in user. productpage sets it
// from its own session and never forwards an inbound one; the services
// behind it forward what they received.
const EndUser = "end-user"

// UserAgent is forwarded on HTTP hops only: gRPC owns the user-agent of its
// calls and drops the key from outgoing metadata.
const UserAgent = "user-agent"

// Headers are the headers forwarded, when present, on every hop, besides
// EndUser.
var Headers = []string{
	"x-request-id",
	"traceparent",
	"tracestate",
	"x-b3-traceid",
	"x-b3-spanid",
	"x-b3-parentspanid",
	"x-b3-sampled",
	"x-b3-flags",
	"b3",
	UserAgent,
	"cookie",
	"authorization",
}

// FromHTTP returns the Headers present in h, as pairs. EndUser is not
// among them.
func FromHTTP(h http.Header) []string {
	var pairs []string
	for _, k := range Headers {
		for _, v := range h.Values(k) {
			pairs = append(pairs, k, v)
		}
	}
	return pairs
}

// FromIncomingMetadata returns the Headers and the EndUser present in the
// incoming metadata of ctx, as pairs. The user-agent is left out: in gRPC
// metadata it names the gRPC client library, not the user's agent.
func FromIncomingMetadata(ctx context.Context) []string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil
	}
	var pairs []string
	for _, k := range Headers {
		if k == UserAgent {
			continue
		}
		for _, v := range md.Get(k) {
			pairs = append(pairs, k, v)
		}
	}
	for _, v := range md.Get(EndUser) {
		pairs = append(pairs, EndUser, v)
	}
	return pairs
}

// ToHTTP adds the pairs to h.
func ToHTTP(h http.Header, pairs []string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
}

// ToOutgoingMetadata returns ctx with the pairs appended to its outgoing
// metadata, every key set before kept. The user-agent pairs are left out
// (see UserAgent).
func ToOutgoingMetadata(ctx context.Context, pairs []string) context.Context {
	kv := make([]string, 0, len(pairs))
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == UserAgent {
			continue
		}
		kv = append(kv, pairs[i], pairs[i+1])
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}
