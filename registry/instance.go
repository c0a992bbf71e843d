package registry

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/graylane/graylane/tag"
)

// Health is what a registry says about an instance's readiness.
type Health uint8

const (
	// Serving instances may receive traffic. It is the zero value.
	Serving Health = iota
	// NotServing instances stay registered (their lane is not empty, and
	// gRPC clients keep their connections) but receive no traffic: a lane
	// whose instances all say NotServing is unavailable.
	NotServing
)

// String returns "serving" or "notserving".
func (h Health) String() string {
	switch h {
	case Serving:
		return "serving"
	case NotServing:
		return "notserving"
	}
	return "Health(" + strconv.Itoa(int(h)) + ")"
}

// MaxWeight is the largest instance weight.
const MaxWeight = 10000

// Instance is one running copy of a service.
type Instance struct {
	// Service is the name of the service, e.g. "reviews".
	Service string
	// Addr is where the instance listens, as host:port.
	Addr string
	// Name tells the instance apart for people: route receipts, logs, the
	// admin page (e.g. "reviews-v2-0"). It defaults to Addr.
	Name string
	// Tag is the instance's lane. The zero Tag puts the instance in the
	// base lane.
	Tag tag.Tag
	// Weight is the share of its lane's traffic the instance receives,
	// relative to the other instances of the lane. 0 means 1.
	Weight uint32
	// Health says whether the instance may receive traffic.
	Health Health
	// Metadata is free-form. Registries keep it as they keep the rest.
	Metadata map[string]string
}

// Lane returns the lane of the instance: its tag, or base when it has none.
func (i Instance) Lane(base string) string {
	if i.Tag.IsZero() {
		return base
	}
	return i.Tag.String()
}

// EffectiveWeight returns Weight, or 1 when Weight is 0.
func (i Instance) EffectiveWeight() uint32 {
	if i.Weight == 0 {
		return 1
	}
	return i.Weight
}

// DisplayName returns Name, or Addr when Name is empty.
func (i Instance) DisplayName() string {
	if i.Name == "" {
		return i.Addr
	}
	return i.Name
}

// validHost accepts an IP address or a DNS-style host name.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// ErrInvalidInstance is wrapped by the errors Validate returns.
var ErrInvalidInstance = errors.New("invalid instance")

// ValidateService checks that name can name a service: 1-63 letters,
// digits, '.', '_' or '-', starting and ending with a letter or digit. The
// error wraps ErrInvalidInstance.
func ValidateService(name string) error {
	if !tag.Valid(name) {
		return fmt.Errorf("%w: service name %q: want 1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", ErrInvalidInstance, name)
	}
	return nil
}

// Validate checks that i can be registered: a service name that is a valid
// tag-like name (letters, digits, '.', '_', '-'), a host:port address, a
// weight no larger than MaxWeight and a known Health.
func (i Instance) Validate() error {
	if err := ValidateService(i.Service); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(i.Addr)
	if p, perr := strconv.Atoi(port); err != nil || !validHost(host) || perr != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: service %q: address %q is not host:port (an IP address or host name, and a port from 1 to 65535)", ErrInvalidInstance, i.Service, i.Addr)
	}
	if i.Weight > MaxWeight {
		return fmt.Errorf("%w: service %q, address %q: weight %d is over %d", ErrInvalidInstance, i.Service, i.Addr, i.Weight, MaxWeight)
	}
	if i.Health > NotServing {
		return fmt.Errorf("%w: service %q, address %q: unknown health %d", ErrInvalidInstance, i.Service, i.Addr, i.Health)
	}
	return nil
}
