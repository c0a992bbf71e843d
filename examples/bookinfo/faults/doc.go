// Package faults is the fault switch of the Bookinfo services: a delay to
// add to requests and a failure to answer them with, set and cleared at
// run time, by a test or by the demo's admin page, while the service
// serves.
//
// A Switch is safe for concurrent use, and its zero value (and a nil
// *Switch) injects nothing. A Fault can be limited to the next N requests
// (Times); after them the switch turns itself off.
//
// HTTP services wrap their routes with Middleware; gRPC services call
// Switch.ApplyGRPC at the start of each method. Abort is always an HTTP
// status; gRPC services fail with the code that Code maps it to.
package faults
