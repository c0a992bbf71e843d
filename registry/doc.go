// Package registry says where instances come from: the Instance of a
// service and its lane, the Registry and Watcher contract that graylane's
// gRPC resolver, HTTP router and queue consumers read, and Memory, the
// in-memory registry that is the embedded default for services that run in
// one process.
//
// Registries that span machines live in modules of their own, so that a
// program pays only for the one it uses: github.com/graylane/graylane/registry/etcd
// (instances register themselves with a lease) and
// github.com/graylane/graylane/registry/kubernetes (instances are read,
// read-only, from Pods and EndpointSlices).
//
// # Writing a registry
//
// A registry follows its source and keeps, per watched service, a Latest:
// it calls Latest.Publish with each new set, and its Watch returns
// Latest.Watch. Latest gives every Watcher the contract's semantics (the
// current set at once, then each new set, a slow Watcher skipping to the
// latest, ErrClosed after Close), so a registry writes only what is its
// own: reading the source. Package registrytest checks the whole contract:
//
//	func TestContract(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Registry {
//			reg := myregistry.New(...)
//			t.Cleanup(func() { reg.Close() })
//			return reg
//		})
//	}
//
// A registry outage keeps the last known set: Watchers simply see no
// change until the source is back. Routing never drops to zero because
// discovery is down.
package registry
