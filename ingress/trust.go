package ingress

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/graylane/graylane/tag"
)

// trust is a compiled Trust.
type trust struct {
	peers, proxies []netip.Prefix
	anyLane        bool
	lanes          map[string]bool // allowed lane names
	prefixes       []string        // allowed lane prefixes
}

func compileTrust(t Trust, l *errorList, known map[string]bool) trust {
	tr := trust{
		peers:   compilePrefixes(t.Peers, "trust.peers", l),
		proxies: compilePrefixes(t.Proxies, "trust.proxies", l),
	}
	if len(t.Lanes) > 0 {
		tr.lanes = map[string]bool{}
	}
	for i, s := range t.Lanes {
		p := indexPath("trust.lanes", i)
		switch {
		case s == "*":
			tr.anyLane = true
		case strings.HasSuffix(s, "*"):
			pre := s[:len(s)-1]
			if !validLanePrefix(pre) {
				l.add(0, p, "%q: a prefix pattern is the start of a lane name followed by '*', such as \"dev-*\"", s)
				continue
			}
			tr.prefixes = append(tr.prefixes, pre)
		default:
			if _, err := tag.Parse(s); err != nil {
				l.add(0, p, "%v", err)
				continue
			}
			tr.lanes[s] = true
			known[s] = true
		}
	}
	return tr
}

// validLanePrefix reports whether s can start a valid tag.
func validLanePrefix(s string) bool {
	if s == "" || len(s) >= tag.MaxLen {
		return false
	}
	// s+"0" is a valid tag exactly when s can start one.
	return tag.Valid(s + "0")
}

func compilePrefixes(list []string, path string, l *errorList) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		p, ok := parsePrefix(s)
		if !ok {
			l.add(0, indexPath(path, i), "%q is not an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parsePrefix parses "10.0.0.0/8", "10.1.2.3" or "::1"; IPv4-mapped IPv6
// forms become IPv4.
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// allows reports whether a trusted client may choose lane t.
func (t *trust) allows(tg tag.Tag) bool {
	if t.anyLane || t.lanes[tg.String()] {
		return true
	}
	for _, p := range t.prefixes {
		if strings.HasPrefix(tg.String(), p) {
			return true
		}
	}
	return false
}

// judge reports whether r comes from a trusted peer, and whether its direct
// peer is a trusted proxy.
func (t *trust) judge(r *http.Request) (trusted, proxied bool) {
	if len(t.peers) == 0 && len(t.proxies) == 0 {
		return false, false
	}
	addr, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return false, false
	}
	if len(t.proxies) > 0 && containsAddr(t.proxies, addr) {
		proxied = true
		if addr, ok = t.client(r.Header["X-Forwarded-For"], addr); !ok {
			return false, true
		}
	}
	return containsAddr(t.peers, addr), proxied
}

// client walks X-Forwarded-For from right to left, past the trusted
// proxies, and returns the first address that is not one: the client. When
// every address is a trusted proxy, the leftmost is the client; when the
// header is absent, the direct peer is. A malformed entry ends the walk
// with false: the client is unknown, and not trusted.
func (t *trust) client(lines []string, peer netip.Addr) (netip.Addr, bool) {
	client := peer
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			entry := line
			j := strings.LastIndexByte(line, ',')
			if j >= 0 {
				entry, line = line[j+1:], line[:j]
			}
			a, ok := parseHostAddr(strings.Trim(entry, " \t"))
			if !ok {
				return netip.Addr{}, false
			}
			client = a
			if !containsAddr(t.proxies, a) {
				return a, true
			}
			if j < 0 {
				break
			}
		}
	}
	return client, true
}

// parseHostAddr parses "1.2.3.4", "1.2.3.4:80", "::1" or "[::1]:80".
func parseHostAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
