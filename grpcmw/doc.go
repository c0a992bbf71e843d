// Package grpcmw carries the traffic tag through gRPC servers and clients.
//
// The server interceptors (UnaryServerInterceptor, StreamServerInterceptor)
// read the tag from the incoming metadata, with the sources and rules of a
// propagation.Propagator, and put it into the handler's context; a stream
// handler sees it in ServerStream.Context(). The client interceptors
// (UnaryClientInterceptor, StreamClientInterceptor) write the tag of the
// call's context into the outgoing metadata.
//
// The metadata key is the tag header name in lower case ("x-traffic-tag").
// On the client side the key is never duplicated: if the outgoing metadata
// already holds the tag, nothing is added; if it holds another value, that
// value is replaced, not appended to; every other key set upstream is kept.
//
// # Bad input
//
// A missing, invalid, ambiguous or oversized tag never fails a call: the
// source is skipped as if absent, the rejection is counted (see package
// propagation), and the call is served.
//
// # Configuration errors
//
// The default Propagator reads the GRAYLANE_TAG environment variable; if it
// holds an invalid tag, the interceptor constructors panic with the error,
// at start-up. Build the Propagator with propagation.New and pass it with
// WithPropagator to handle the error yourself.
package grpcmw
