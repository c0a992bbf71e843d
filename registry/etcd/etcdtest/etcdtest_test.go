package etcdtest

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"
)

// TestPortTaken: etcd's error for a port already taken is EADDRINUSE, which
// Start relies on to try other ports.
func TestPortTaken(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	s := &Server{tb: t, dir: t.TempDir(), client: url.URL{Scheme: "http", Host: lis.Addr().String()}, peer: url.URL{Scheme: "http", Host: FreeAddr(t)}}
	err = s.start()
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("starting on a taken port: %v, want EADDRINUSE", err)
	}
}
