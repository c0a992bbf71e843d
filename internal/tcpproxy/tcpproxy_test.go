package tcpproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/internal/tcpproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves lines back until the listener closes.
func echo(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { lis.Close(); <-done })
	return lis.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) error {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err == nil {
		assert.Equal(t, "ping\n", line)
	}
	return err
}

func dial(t *testing.T, p *tcpproxy.Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestForwardResetCutCrash(t *testing.T) {
	p, err := tcpproxy.New(echo(t))
	require.NoError(t, err)
	defer p.Close()

	c, r := dial(t, p)
	require.NoError(t, roundTrip(t, c, r))

	p.Reset()
	assert.Error(t, roundTrip(t, c, r), "a reset connection still works")
	c, r = dial(t, p)
	require.NoError(t, roundTrip(t, c, r), "new connections are forwarded after a reset")

	p.SetCut(true)
	assert.Error(t, roundTrip(t, c, r), "a connection survived the cut")
	c, r = dial(t, p) // accepted, then closed at once
	assert.Error(t, roundTrip(t, c, r), "a new connection was forwarded across the cut")
	p.SetCut(false)
	c, r = dial(t, p)
	require.NoError(t, roundTrip(t, c, r), "the link did not come back")
	assert.Equal(t, int64(4), p.Accepted())

	p.Crash()
	assert.Error(t, roundTrip(t, c, r), "a connection survived the crash")
	_, err = net.Dial("tcp", p.Addr())
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "after a crash a dial must be refused, got %v", err)
}
