// Package freeport finds loopback ports for test servers that must be told
// their port before they listen (an etcd, an API server, a process).
package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
)

// Below Linux's ephemeral range (32768-60999), from which the kernel picks
// the local ports of outgoing connections and of listeners on port 0: a
// connection opened between Addr and the server's bind cannot take the
// port.
const (
	low  = 20000
	high = 32000
)

// Addr returns "127.0.0.1:port" with a port that nothing listens on now.
func Addr() (string, error) {
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(low+rand.IntN(high-low)))
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken: another
		}
		return addr, lis.Close()
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0") // the whole range is busy: the kernel's choice
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// Port is Addr's port.
func Port() (int, error) {
	addr, err := Addr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(addr)
	return strconv.Atoi(p)
}
