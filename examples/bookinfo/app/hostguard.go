package app

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// hostGuard refuses requests whose Host names a server other than this
// one: a defence against DNS rebinding, where a hostile page makes its own
// name resolve to 127.0.0.1 and then calls the admin API as a same-origin
// page (Origin and Host agree, so cross-origin protection lets it pass).
// It accepts loopback names (localhost and its subdomains, 127.0.0.0/8,
// ::1), the host the server listens on when it is not a wildcard, and the
// names configured. The port is not compared: the name is what rebinding
// forges.
type hostGuard struct {
	names map[string]bool // lower case, no port, no brackets
}

func newHostGuard(listen string, extra []string) (*hostGuard, error) {
	g := &hostGuard{names: map[string]bool{}}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			g.names[strings.ToLower(host)] = true
		}
	}
	for _, name := range extra {
		h := strings.ToLower(strings.TrimSpace(name))
		if hp, _, err := net.SplitHostPort(h); err == nil {
			h = hp
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("admin host %q: want a host name or address", name)
		}
		g.names[h] = true
	}
	return g, nil
}

// allows reports whether a request's Host names this server.
func (g *hostGuard) allows(hostport string) bool {
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(host, ".")
	switch {
	case host == "":
		return false
	case g.names[host]:
		return true
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (g *hostGuard) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allows(r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{
				"error": fmt.Sprintf("host %q is not a name of this admin server: add it with -admin-host", r.Host),
			})
			return
		}
		h.ServeHTTP(w, r)
	})
}
