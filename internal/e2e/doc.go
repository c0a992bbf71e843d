// Package e2e holds end-to-end tests that run several graylane-wrapped
// services, over HTTP and gRPC, on loopback. It has no API.
package e2e
