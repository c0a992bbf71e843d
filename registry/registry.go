package registry

import (
	"context"
	"errors"
)

// Registry is where instances come from. Implementations are safe for
// concurrent use. Network-backed ones may block in Register, Update and
// Deregister, within the call's context.
type Registry interface {
	// Register adds inst to the registry and returns a handle to change or
	// remove it. inst must pass Validate; registering the same service and
	// address twice is an error (ErrDuplicate) until the first registration
	// is removed.
	Register(ctx context.Context, inst Instance) (Registration, error)
	// Watch follows one service. The Watcher's first Next returns the
	// current set (possibly empty); later calls return each new set. A
	// registry that delivers changes asynchronously may start a Watcher of
	// a service it already follows from the set known so far, the changes
	// on their way following. ctx bounds this call only: the watch lasts
	// until Watcher.Close. Package registrytest checks an implementation.
	Watch(ctx context.Context, service string) (Watcher, error)
}

// Registration is one registered instance.
type Registration interface {
	// Instance returns the instance as last registered or updated (also
	// after Deregister).
	Instance() Instance
	// Update replaces the registered instance's name, tag, weight, health
	// and metadata; Service and Addr must stay the same. Watchers see the
	// change; a retag does not make gRPC clients reconnect.
	Update(ctx context.Context, inst Instance) error
	// Deregister removes the instance. Watchers see it gone at once. It is
	// idempotent. Even when it returns an error (a registry out of reach),
	// the instance counts as deregistered: it is never registered again,
	// and a network-backed registry removes it as soon as it can.
	Deregister(ctx context.Context) error
}

// Watcher follows the instances of one service.
type Watcher interface {
	// Next returns the service's instances, sorted by address: at once on
	// the first call, then as soon as the set differs from the one last
	// returned. A slow caller does not hold anyone up; it skips to the
	// latest set, never missing the last one. The slice and the instances'
	// Metadata maps are shared: treat them as read-only. Next returns an
	// error only when ctx is done or the Watcher or registry is closed
	// (ErrClosed).
	Next(ctx context.Context) ([]Instance, error)
	// Close stops the watch and releases its resources. Next then returns
	// ErrClosed.
	Close() error
}

// Errors returned by registries.
var (
	// ErrDuplicate means an instance with the same service and address is
	// already registered.
	ErrDuplicate = errors.New("instance already registered")
	// ErrClosed means the Watcher or the Registry has been closed.
	ErrClosed = errors.New("closed")
	// ErrNotRegistered means the Registration has been removed.
	ErrNotRegistered = errors.New("instance not registered")
	// ErrReadOnly is wrapped by the error of Register on a registry that
	// reads its instances from a platform that knows them (Kubernetes'
	// EndpointSlices, say) and never writes: there, an instance is known
	// by running where the platform sees it, not by registering.
	ErrReadOnly = errors.New("read-only registry")
)
