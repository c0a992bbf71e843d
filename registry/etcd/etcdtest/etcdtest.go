// Package etcdtest runs a single-member etcd on loopback for tests, which a
// test can stop and start again on the same data directory and ports.
// Clients reach it through a tcpproxy, so that stopping it looks to them
// like the death of an etcd process: their connections break at once
// (embed's own Close drains client streams for several seconds first).
package etcdtest

import (
	"errors"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/graylane/graylane/internal/freeport"
	"github.com/graylane/graylane/internal/tcpproxy"
)

// readyTimeout bounds how long etcd may take to start.
const readyTimeout = 10 * time.Second

// Server is an embedded etcd behind a proxy.
type Server struct {
	tb     testing.TB
	dir    string
	client url.URL
	peer   url.URL
	front  *tcpproxy.Proxy
	e      *embed.Etcd
}

// Start starts etcd with a fresh data directory and free ports. It is
// closed when the test ends, if the test has not closed it already.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tb.TempDir()}
	// A free port may be taken, before etcd binds it, by a connection
	// another test opens (the kernel picks its local port from the same
	// range): then try other ports.
	var err error
	for range 5 {
		s.client = url.URL{Scheme: "http", Host: FreeAddr(tb)}
		s.peer = url.URL{Scheme: "http", Host: FreeAddr(tb)}
		if err = s.start(); !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	require.NoError(tb, err)
	front, err := tcpproxy.New(s.client.Host)
	require.NoError(tb, err)
	s.front = front
	tb.Cleanup(s.Close)
	return s
}

// Restart starts etcd again after Stop, on the same directory and ports.
func (s *Server) Restart() {
	s.tb.Helper()
	require.NoError(s.tb, s.start())
}

// start starts etcd on the server's directory and ports.
func (s *Server) start() error {
	s.tb.Helper()
	require.Nil(s.tb, s.e, "etcd is running")
	cfg := embed.NewConfig()
	cfg.Name = "graylane-test"
	cfg.Dir = s.dir
	// Errors only, into the test's log: shown when a test fails or with -v.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zaptest.NewLogger(s.tb, zaptest.Level(zap.ErrorLevel)))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{s.client}, []url.URL{s.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{s.peer}, []url.URL{s.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(readyTimeout):
		e.Close()
		return errors.New("etcd did not become ready")
	}
	s.e = e
	return nil
}

// Stop stops etcd, breaking its clients' connections first.
func (s *Server) Stop() {
	if s.front != nil {
		s.front.Reset()
	}
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// Close stops etcd and its proxy. Closing twice is harmless.
func (s *Server) Close() {
	s.Stop()
	if s.front != nil {
		s.front.Close()
	}
}

// Endpoint is where clients reach etcd.
func (s *Server) Endpoint() string { return s.front.Addr() }

// NewClient returns an etcd client of endpoint that reconnects quickly once
// etcd is back, as a production client tuned for discovery would.
func NewClient(endpoint string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
}

// FreeAddr returns a loopback address with a port nobody listens on, below
// the range of ports the kernel gives outgoing connections (see package
// internal/freeport).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := freeport.Addr()
	require.NoError(tb, err)
	return addr
}
