package freeport

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddr: the address is on loopback, below the ephemeral range, and
// free to listen on.
func TestAddr(t *testing.T) {
	for range 20 {
		addr, err := Addr()
		require.NoError(t, err)
		p, err := Port()
		require.NoError(t, err)
		require.True(t, p >= low && p < high, "port %d", p)
		lis, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, lis.Close())
	}
}
