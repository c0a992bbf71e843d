package app

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// DialMapEnv names the environment variable that, for tests, maps a range
// of instance addresses to one host: "10.244.0.0/16=127.0.0.1" makes the
// clients of the process dial 127.0.0.1, on the same port, for every
// address in 10.244.0.0/16. A test that plays Kubernetes gives its loopback
// instances made-up Pod IPs (the API server refuses loopback addresses in
// EndpointSlices) and reaches them this way. Not for production use.
const DialMapEnv = "BOOKINFO_DIAL_MAP"

// MapDialer returns a dialer for Config.Dial from a DialMapEnv value, nil
// for "".
func MapDialer(spec string) (func(ctx context.Context, addr string) (net.Conn, error), error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	cidr, host, ok := strings.Cut(spec, "=")
	_, ipnet, err := net.ParseCIDR(cidr)
	if !ok || err != nil || host == "" {
		return nil, fmt.Errorf("%s=%q: want CIDR=host, e.g. 10.244.0.0/16=127.0.0.1", DialMapEnv, spec)
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		h, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(h); ip != nil && ipnet.Contains(ip) {
			addr = net.JoinHostPort(host, port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, nil
}
