package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/kubernetes"
)

// RegistryConfig says which registry a process uses.
type RegistryConfig struct {
	// Spec is "memory" (the default: one process), "embedded-etcd" (start a
	// single-node etcd in this process and use it),
	// "etcd://host:port[,host:port...]" or "kubernetes" (read the Pods and
	// EndpointSlices of the Kubernetes API: instances do not register, the
	// Pods behind each Service are the instances).
	Spec string
	// For kubernetes: the kubeconfig file ("" for $KUBECONFIG,
	// ~/.kube/config, or the Pod's service account in a cluster), the
	// namespace of the services ("" for the kubeconfig's, or the Pod's own)
	// and the Pod label that holds the lane ("" for
	// kubernetes.DefaultLaneLabel, ASM_TRAFFIC_TAG).
	Kubeconfig, Namespace, LaneLabel string
	// For embedded-etcd: where it listens for clients and peers, and its
	// data directory ("" for a temporary one, removed at exit).
	EtcdClientAddr string // default 127.0.0.1:2379
	EtcdPeerAddr   string // default 127.0.0.1:2380
	EtcdDir        string
	// LeaseTTL is the etcd lease TTL of this process's instances (default
	// 10s): after a crash, its instances disappear within it.
	LeaseTTL time.Duration
	// MeterProvider receives the etcd registry's metrics (connected,
	// outages, reregistrations). nil: the global one.
	MeterProvider metric.MeterProvider
}

// OpenRegistry opens the registry the config names. close releases it (and
// stops an embedded etcd). For "memory" it returns a nil Registry: the
// System makes its own.
func OpenRegistry(c RegistryConfig) (reg registry.Registry, closeFn func() error, err error) {
	spec := c.Spec
	switch {
	case spec == "" || spec == "memory":
		return nil, func() error { return nil }, nil
	case spec == "embedded-etcd":
		e, cleanup, err := startEmbeddedEtcd(c)
		if err != nil {
			return nil, nil, err
		}
		r, err := dialEtcd([]string{e.Clients[0].Addr().String()}, c)
		if err != nil {
			e.Close()
			cleanup()
			return nil, nil, err
		}
		return r, func() error {
			err := r.Close()
			e.Close()
			cleanup()
			return err
		}, nil
	case strings.HasPrefix(spec, "etcd://"):
		var endpoints []string
		for ep := range strings.SplitSeq(strings.TrimPrefix(spec, "etcd://"), ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				endpoints = append(endpoints, ep)
			}
		}
		if len(endpoints) == 0 {
			return nil, nil, fmt.Errorf("registry %q: no etcd endpoint", spec)
		}
		r, err := dialEtcd(endpoints, c)
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	case spec == "kubernetes":
		r, err := openKubernetes(c)
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	return nil, nil, fmt.Errorf("registry %q: want memory, embedded-etcd, etcd://host:port[,host:port] or kubernetes", spec)
}

// openKubernetes opens the read-only registry of the Kubernetes API.
func openKubernetes(c RegistryConfig) (*kubernetes.Registry, error) {
	cfg, ns, err := kubernetes.LoadConfig(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if c.Namespace != "" {
		ns = c.Namespace
	}
	opts := []kubernetes.Option{kubernetes.WithNamespace(ns)}
	if c.LaneLabel != "" {
		opts = append(opts, kubernetes.WithLaneLabel(c.LaneLabel))
	}
	if c.MeterProvider != nil {
		opts = append(opts, kubernetes.WithMeterProvider(c.MeterProvider))
	}
	return kubernetes.New(cfg, opts...)
}

func dialEtcd(endpoints []string, c RegistryConfig) (*etcd.Registry, error) {
	var opts []etcd.Option
	if c.LeaseTTL > 0 {
		opts = append(opts, etcd.WithTTL(c.LeaseTTL))
	}
	if c.MeterProvider != nil {
		opts = append(opts, etcd.WithMeterProvider(c.MeterProvider))
	}
	return etcd.Dial(endpoints, opts...)
}

// startEmbeddedEtcd starts a single-node etcd on loopback.
func startEmbeddedEtcd(c RegistryConfig) (*embed.Etcd, func(), error) {
	client, peer := c.EtcdClientAddr, c.EtcdPeerAddr
	if client == "" {
		client = "127.0.0.1:2379"
	}
	if peer == "" {
		peer = "127.0.0.1:2380"
	}
	dir, cleanup := c.EtcdDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "bookinfo-etcd-")
		if err != nil {
			return nil, nil, err
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	cfg := embed.NewConfig()
	cfg.Name = "bookinfo"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu, pu := url.URL{Scheme: "http", Host: client}, url.URL{Scheme: "http", Host: peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("embedded etcd: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-e.Server.ReadyNotify():
		return e, cleanup, nil
	case <-ctx.Done():
		e.Close()
		cleanup()
		return nil, nil, errors.New("embedded etcd did not become ready in 30s")
	}
}
