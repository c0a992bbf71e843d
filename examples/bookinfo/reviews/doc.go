// Package reviews is the Bookinfo reviews service, as a gRPC service
// (bookinfopb.ReviewsServer).
//
// Every version answers the same two reviews, by Reviewer1 and Reviewer2,
// with the name of the instance that served the call (podname) and of its
// cluster (clustername, "null" when unset). They differ in ratings:
//
//   - V1 shows no ratings and never calls the ratings service.
//   - V2 asks the ratings service, with a 10 s timeout, and shows black
//     stars.
//   - V3 asks the ratings service, with a 2.5 s timeout, and shows red
//     stars.
//
// The ratings call is made once, never retried. When it fails or times
// out, or when the answer has no rating for a reviewer, that review gets
// the rating error "Ratings service is currently unavailable" and the call
// still succeeds.
//
// The ratings call is made from the context of the incoming call, so
// whatever travels in it (graylane's traffic tag, a deadline) goes on, and
// it carries, as outgoing metadata, the request headers the Bookinfo
// services forward: the end-user, x-request-id, the W3C and B3 trace
// headers, cookie and authorization, as received. The user-agent is not
// among them: gRPC sets its own.
//
// A product id that strconv.ParseInt rejects in base 10 fails with
// codes.InvalidArgument "please provide numeric product id". The fault
// switch given with WithFaults applies to every call before it is served.
// The Server carries no interceptors: register it on a grpc.Server built
// with the ones the deployment needs, and give it a ratings client built
// with the ones it needs.
package reviews
