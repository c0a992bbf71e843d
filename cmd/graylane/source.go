package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
)

// source is a registry the command reads: it lists services and watches
// them.
type source interface {
	Services(ctx context.Context) ([]string, error)
	Watch(ctx context.Context, service string) (registry.Watcher, error)
	Close() error
}

// registryFlags are the flags that say which registry to read.
type registryFlags struct {
	spec    string
	prefix  string
	timeout time.Duration
}

func addRegistryFlags(fs *flag.FlagSet) *registryFlags {
	f := &registryFlags{}
	fs.StringVar(&f.spec, "registry", os.Getenv("GRAYLANE_REGISTRY"),
		"registry to read: etcd://host:port[,host:port...] or kubernetes (default $GRAYLANE_REGISTRY)")
	fs.StringVar(&f.prefix, "prefix", etcd.DefaultPrefix, "etcd: the key prefix instances are registered under")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the registry to answer")
	return f
}

// open returns the source the flags name. It does not contact the
// registry: the first read does, within the timeout.
func (f *registryFlags) open() (source, error) {
	if f.timeout <= 0 {
		return nil, usagef("--timeout %v: want a positive duration", f.timeout)
	}
	scheme, rest, _ := strings.Cut(f.spec, "://")
	switch {
	case f.spec == "":
		return nil, usagef("no registry: set --registry etcd://host:port or $GRAYLANE_REGISTRY")
	case scheme == "etcd":
		var endpoints []string
		for ep := range strings.SplitSeq(rest, ",") {
			if ep = strings.TrimSpace(ep); ep == "" {
				continue
			}
			if strings.ContainsAny(ep, "/?#@ ") || !strings.Contains(ep, ":") {
				return nil, usagef("--registry %q: endpoint %q is not host:port", f.spec, ep)
			}
			endpoints = append(endpoints, ep)
		}
		if len(endpoints) == 0 {
			return nil, usagef("--registry %q: no etcd endpoint; want etcd://host:port[,host:port...]", f.spec)
		}
		reg, err := etcd.Dial(endpoints, etcd.WithPrefix(f.prefix),
			etcd.WithLogger(slog.New(slog.DiscardHandler))) // the command says itself what went wrong
		if err != nil {
			return nil, usageError{err}
		}
		return reg, nil
	case f.spec == "kubernetes" || scheme == "kubernetes":
		// The Kubernetes registry (module registry/kubernetes) goes here:
		// build it from the kubeconfig (or the in-cluster config), with the
		// namespace as an option, and return it; it lists services and
		// watches them like the etcd one.
		return nil, errors.New("--registry kubernetes: this build of graylane has no Kubernetes registry yet")
	}
	return nil, usagef("--registry %q: unknown registry; want etcd://host:port[,host:port...] or kubernetes", f.spec)
}

// unreachable wraps an error of a read from the registry that did not
// answer in time.
func (f *registryFlags) unreachable(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("registry %s did not answer within %v (--timeout)", f.spec, f.timeout)
	}
	return fmt.Errorf("registry %s: %w", f.spec, err)
}

// snapshot reads the current instances of service, within the timeout.
func (f *registryFlags) snapshot(ctx context.Context, src source, service string) ([]registry.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	w, err := src.Watch(ctx, service)
	if err != nil {
		return nil, usagef("service %q: %v", service, err)
	}
	defer w.Close()
	insts, err := w.Next(ctx)
	if err != nil {
		return nil, f.unreachable(ctx, err)
	}
	return insts, nil
}

// readPolicy reads a fallback policy in its JSON form (package fallback);
// "" means the default policy.
func readPolicy(path string) (*fallback.Policy, error) {
	if path == "" {
		return fallback.Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--policy: %v", err)
	}
	p, err := fallback.ParseJSON(b)
	if err != nil {
		return nil, usagef("--policy %s: %v", path, err)
	}
	return p, nil
}

// splitList reads a comma-separated list of service names.
func splitList(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if err := registry.ValidateService(name); err != nil {
			return nil, usagef("--service: %v", err)
		}
		out = append(out, name)
	}
	return out, nil
}
