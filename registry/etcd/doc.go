// Package etcd is a registry.Registry on etcd (go.etcd.io/etcd/client/v3),
// for services whose instances run on several machines: each process
// registers its own instances, and every client watches the services it
// calls, through the graylane gRPC resolver (resolver.DialOptions) or a
// routing.Router.
//
//	reg, err := etcd.Dial([]string{"etcd-0:2379", "etcd-1:2379", "etcd-2:2379"})
//	...
//	defer reg.Close()
//	_, err = reg.Register(ctx, registry.Instance{Service: "reviews", Addr: "10.0.0.7:9080", Tag: tag.MustParse("gray")})
//	cc, err := grpc.NewClient("graylane:///ratings", append(resolver.DialOptions(reg, nil), ...)...)
//
// # Key layout
//
// Each instance is one key, <prefix><service>/<address>, with the prefix
// "/graylane/services/" unless WithPrefix says otherwise:
//
//	/graylane/services/reviews/10.0.0.7:9080
//
// Its value is a JSON object that holds everything the Instance holds, so
// the tag and the metadata survive the round trip:
//
//	{"addr":"10.0.0.7:9080","name":"reviews-v2-0","tag":"gray","weight":3,
//	 "health":"serving","metadata":{"version":"v2"}}
//
// "addr" repeats the key's address; "name", "tag" (empty: base lane),
// "weight" (0: 1) and "metadata" are left out when empty; "health" is
// "serving" or "notserving" (missing: serving). Readers ignore fields they
// do not know. A key under a service's prefix whose value does not decode,
// names another address than its key, has an invalid tag, an unknown
// health, or otherwise fails Instance.Validate is not an instance: watchers
// skip it and log it at warn level (bad input is never a panic, and never
// puts an instance in the wrong lane). Tools other than graylane may write
// keys in this layout to register instances.
//
// # Leases
//
// A Registry registers all its instances under one lease of its own (TTL
// 10s by default, WithTTL), granted on the first Register and kept alive
// from then on: when the process dies, its instances disappear within the
// TTL (Abandon simulates that death in tests). Deregister deletes the key
// at once; Close revokes the lease, which deletes every key of the Registry
// at once. Update rewrites the value under the same lease.
//
// If the lease is lost (it expired while etcd could not be reached, or
// someone revoked it), the Registry grants a new lease and puts all its live
// instances again as soon as etcd answers, without action of the caller;
// see the metric ReregistrationsMetric.
//
// # Outages
//
// Discovery being down must not take routing down. While etcd cannot be
// reached, watchers keep the last set they returned (never an empty set
// because of the outage), writes wait within their context, and the
// Registry keeps trying in the background. The Watchers of one service in
// one Registry share one etcd watch, so a Watcher created during an outage
// for a service the process already follows gets the last known set at
// once. When etcd answers again, watches resume (or read their service
// again, after a compaction or a leader change), and lost registrations
// are put again.
//
// Outages are reported through OpenTelemetry (WithMeterProvider): the gauge
// ConnectedMetric (1 while etcd answers, 0 during an outage), the counter
// OutagesMetric and the histogram OutageDurationMetric, all with the
// attributes AttrRegistry ("etcd") and AttrPrefix. They are logged
// (WithLogger) at warn level when they start and at info level when they
// end. An outage starts when a read of etcd fails or takes more than 2s,
// or when gRPC reports that no endpoint accepts a connection; the Registry
// checks whenever its client's connection changes state or one of its
// operations fails, and every second during an outage.
//
// # Concurrency
//
// Registry, its Registrations and its Watchers are safe for concurrent use.
// Writes of one key are applied in turn. A Watcher that is not read holds
// up nobody: it keeps only the latest set.
package etcd
