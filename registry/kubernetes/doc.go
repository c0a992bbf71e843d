// Package kubernetes is a registry.Registry that reads services from the
// Kubernetes API: the instances of a service are the endpoints of its
// EndpointSlices, and each instance's lane is read from the Pod the
// endpoint points at. Nothing registers: a Deployment per version, its
// Pods labelled with their lane, and a Service in front are all it takes,
// with read-only access to the API (no etcd of graylane's own, no Pod
// writing its own annotations).
//
//	cfg, ns, err := kubernetes.LoadConfig("") // in a cluster, or ~/.kube/config
//	...
//	reg, err := kubernetes.New(cfg, kubernetes.WithNamespace(ns), kubernetes.WithPortName("grpc"))
//	...
//	defer reg.Close()
//	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(reg, nil), ...)...)
//
// # Services
//
// A service is named "name" (a Service of the Registry's namespace,
// WithNamespace, default "default") or "name.namespace". Its instances are
// the endpoints of every EndpointSlice labelled
// kubernetes.io/service-name=name, all slices merged (a Service of 1,000
// Pods has ten or more). An instance's address is the endpoint's first
// address and the slice's port: the only port of the slice, or the one
// WithPortName names. Its Name is the name of its Pod. A dual-stack
// Service has an IPv4 and an IPv6 slice, so each of its Pods is two
// instances, one per address family.
//
// # Lanes
//
// An endpoint's targetRef names its Pod; the Pod's lane comes in one of
// two ways:
//
//   - a lane label: the value of the Pod label DefaultLaneLabel
//     ("ASM_TRAFFIC_TAG", as the ASM walkthrough labels its pods), or of
//     the key WithLaneLabel sets. A Pod without the label is in the base
//     lane.
//   - lane selectors, the way Istio DestinationRule subsets define lanes:
//     WithLaneSelectors(map[string]string{"gray": "version=v2", "prod":
//     "version=v1"}) for every service, or WithServiceLaneSelectors for one.
//     A Pod that matches no selector is in the base lane; a Pod that
//     matches two is a configuration error, reported (counted and logged at
//     warn level) and left out, never guessed.
//
// Changing a Pod's label moves its instance to the new lane without a
// reconnection of gRPC clients.
//
// # Health and weight
//
// The endpoint's conditions give the instance's health: Serving when it is
// ready and not terminating, NotServing otherwise. NotServing instances
// stay in their lane (the lane is "unavailable", not empty, so fallback
// says so) but get no new calls. A terminating endpoint that still serves
// (its Pod passes its readiness probe while it shuts down) is NotServing
// too: new calls go to the other instances of the lane, or fall back when
// there are none, while the calls already under way on its connections
// finish. The optional Pod annotation DefaultWeightAnnotation
// ("graylane.io/weight", or the key WithWeightAnnotation sets) holds the
// instance's weight, from 1 to registry.MaxWeight.
//
// # Bad input
//
// Input that cannot be read is left out, counted (IgnoredMetric, with one
// of the Reason constants) and logged at debug level, never a panic and
// never a dropped service: an endpoint without a targetRef, a Pod whose
// lane label is not a valid tag (the empty value included), a slice
// without the named port, an invalid weight (the Pod keeps weight 1).
//
// # Access
//
// The Registry needs get, list and watch on pods and
// discovery.k8s.io/endpointslices in the namespaces it reads, nothing more:
// rbac.yaml, beside this file, is the Role and RoleBinding for a
// ServiceAccount. Register returns ErrReadOnly.
//
// # Memory and watches
//
// The Registry follows each namespace it has been asked about, from the
// first Watch of one of its services until Close, with two informers
// (k8s.io/client-go): one over the metadata of the namespace's Pods (their
// specs and statuses are never fetched) and one over the EndpointSlices of
// its Services. Transforms keep of each Pod only its name, the labels the
// lanes read and the weight annotation, and of each slice only the
// addresses, ports, conditions and targets; about 1 KiB per Pod in all
// (see BENCHMARKS.md). A watch that expires (410 Gone) is relisted by the
// informer, and the instances stay as they were until the new list says
// otherwise. While the API server is out of reach, watchers keep the last
// set they returned, and the Registry reconnects by itself.
//
// # Metrics
//
// Through the meter provider of WithMeterProvider: IgnoredMetric and
// WatchErrorsMetric, with the attributes AttrRegistry ("kubernetes"),
// AttrService, AttrResource and AttrReason.
package kubernetes
