package propagation

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// scanResult is the outcome of looking for one member in a baggage header.
type scanResult uint8

const (
	scanAbsent    scanResult = iota // no member with the key
	scanFound                       // one value (or repeats of it)
	scanInvalid                     // the member's value is malformed
	scanAmbiguous                   // several members with different values
	scanOversize                    // the header breaks the byte limit
)

// findMember looks for the list-member key in the baggage header values
// vals (several header lines form one list). It examines at most
// MaxBaggageMembers members and gives up on a header over MaxBaggageBytes.
// The returned value is raw: not yet percent-decoded.
func findMember(vals []string, key string) (raw string, res scanResult) {
	total := len(vals) - 1 // commas joining the lines
	for _, v := range vals {
		total += len(v)
	}
	if total > MaxBaggageBytes {
		return "", scanOversize
	}
	members := 0
	for _, line := range vals {
		for len(line) > 0 && members < MaxBaggageMembers {
			var m string
			if i := strings.IndexByte(line, ','); i >= 0 {
				m, line = line[:i], line[i+1:]
			} else {
				m, line = line, ""
			}
			if trimOWSLeft(m) == "" {
				continue // empty list-member: skipped, not counted
			}
			members++
			v, ok := memberValue(m, key)
			if !ok {
				continue
			}
			switch {
			case res == scanAbsent:
				raw, res = v, scanFound
			case res == scanFound && v != raw:
				return "", scanAmbiguous
			}
		}
	}
	if res == scanFound && raw == "" {
		return "", scanInvalid
	}
	return raw, res
}

// memberValue returns the raw value of list-member m if its key is key.
// Grammar: OWS key OWS "=" OWS value OWS *( ";" property ).
func memberValue(m, key string) (string, bool) {
	m = trimOWSLeft(m)
	if len(m) < len(key) || m[:len(key)] != key {
		return "", false
	}
	m = trimOWSLeft(m[len(key):])
	if len(m) == 0 || m[0] != '=' {
		return "", false
	}
	m = m[1:]
	if i := strings.IndexByte(m, ';'); i >= 0 {
		m = m[:i]
	}
	return trimOWS(m), true
}

// The reader trims around keys and values what strings.TrimSpace trims, as
// OpenTelemetry's baggage parser does: the W3C optional white space (space
// and tab) and every other Unicode white space. Reading the same member as
// OpenTelemetry means a service reads the same tag whether or not otelhttp
// has already parsed the baggage into the context.

// trimOWSLeft trims leading white space (see above) off s.
func trimOWSLeft(s string) string {
	if len(s) > 0 && ' ' < s[0] && s[0] < utf8.RuneSelf {
		return s // the common case, inlined: no white space
	}
	return trimSpaceLeft(s)
}

func trimSpaceLeft(s string) string {
	for len(s) > 0 {
		c := s[0]
		if c == ' ' || c == '\t' {
			s = s[1:]
			continue
		}
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				s = s[1:]
				continue
			}
			return s
		}
		r, n := utf8.DecodeRuneInString(s)
		if !unicode.IsSpace(r) {
			return s
		}
		s = s[n:]
	}
	return s
}

// trimOWSRight trims trailing white space (see above) off s.
func trimOWSRight(s string) string {
	if n := len(s); n > 0 && ' ' < s[n-1] && s[n-1] < utf8.RuneSelf {
		return s // the common case, inlined: no white space
	}
	return trimSpaceRight(s)
}

func trimSpaceRight(s string) string {
	for len(s) > 0 {
		c := s[len(s)-1]
		if c == ' ' || c == '\t' {
			s = s[:len(s)-1]
			continue
		}
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				s = s[:len(s)-1]
				continue
			}
			return s
		}
		r, n := utf8.DecodeLastRuneInString(s)
		if !unicode.IsSpace(r) {
			return s
		}
		s = s[:len(s)-n]
	}
	return s
}

func trimOWS(s string) string { return trimOWSRight(trimOWSLeft(s)) }

// asciiSpace holds the ASCII bytes unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// unescape percent-decodes a baggage value. It allocates only when s holds
// an escape, and reports false for a broken escape.
func unescape(s string) (string, bool) {
	n := strings.IndexByte(s, '%')
	if n < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:n]...)
	for i := n; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return string(b), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// setMember returns the baggage header values with the list-member key set
// to value (value must need no escaping). Other members are kept as they
// were, byte for byte: an existing member with the key is replaced in place
// (repeats of it are removed), a new one is appended to the last line. If the
// result would break the W3C limits, the key is removed instead and fits is
// false. changed is false when vals already hold exactly that member.
func setMember(vals []string, key, value string) (out []string, changed, fits bool) {
	var (
		members, bytes int
		found          int // members with the key
		same           bool
	)
	for _, line := range vals {
		for m := range strings.SplitSeq(line, ",") {
			if v, ok := memberValue(m, key); ok {
				found++
				same = v == value
				continue
			}
			if trimOWS(m) != "" {
				members++
				bytes += len(m) + 1
			}
		}
	}
	if found == 1 && same {
		return vals, false, true
	}
	newMember := key + "=" + value
	fits = members+1 <= MaxBaggageMembers && bytes+len(newMember) <= MaxBaggageBytes
	if found == 0 && !fits {
		return vals, false, false
	}
	out = make([]string, 0, len(vals))
	placed := !fits
	for _, line := range vals {
		var b strings.Builder
		first := true
		for m := range strings.SplitSeq(line, ",") {
			if _, ok := memberValue(m, key); ok {
				if placed {
					continue
				}
				placed = true
				m = newMember
			} else if trimOWS(m) == "" {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			b.WriteString(m)
			first = false
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
	}
	if !placed {
		if len(out) == 0 {
			out = append(out, newMember)
		} else {
			out[len(out)-1] += "," + newMember
		}
	}
	return out, true, fits
}
