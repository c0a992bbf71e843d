// Package tcpproxy forwards TCP connections on loopback to a target and
// lets a test break them. Put between clients and a server, it makes the
// server look, from the network, crashed (connections cut, new ones
// refused), partitioned (connections cut, new ones closed at once) or
// merely restarted (connections cut), while the server itself runs on.
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards every connection it accepts to its target.
type Proxy struct {
	lis      net.Listener
	target   string
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// New listens on a free loopback port and forwards to target.
func New(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address clients dial instead of the target's.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		out, err := net.Dial("tcp", p.target)
		p.mu.Lock()
		if err != nil || p.cut {
			p.mu.Unlock()
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Reset closes every connection; new ones are forwarded as before.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
}

func (p *Proxy) resetLocked() {
	for c := range p.conns {
		c.Close()
	}
}

// SetCut partitions the link (true): every connection is closed, and new
// ones are accepted and closed at once. SetCut(false) restores it.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		p.resetLocked()
	}
}

// Crash closes the listener, so that new connections are refused, and
// every connection, as the death of the target's process would. It cannot
// be undone.
func (p *Proxy) Crash() {
	p.lis.Close()
	p.SetCut(true)
}

// Close crashes the proxy and waits for its goroutines to end.
func (p *Proxy) Close() {
	p.Crash()
	p.wg.Wait()
}
