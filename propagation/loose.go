package propagation

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Strip has to remove every baggage list-member that some reader downstream
// could take for a tag member, not only the members graylane's own reader
// takes. Readers differ: OpenTelemetry trims keys with strings.TrimSpace
// (every Unicode white space), Java's String.trim trims every control
// character, JavaScript's trim also U+FEFF; OpenTelemetry for JavaScript
// percent-decodes keys; a reader may compare keys in any case, with Unicode
// case mappings (the Kelvin sign is a 'k' to some of them, the dotless i an
// 'i' to others), or fold '_' into '-' as many do for header names. So Strip
// reads a member's key loosely (see looseKeyIs) and removes the member when
// that reading names a tag key.

// maxKeyDecodes bounds how many times a key is percent-decoded: a reader
// that decodes twice is already odd.
const maxKeyDecodes = 3

// looseMemberKey returns the key of list-member m as the loosest reader
// would see it: the text before the first '=' or ';', trimmed of white
// space and invisible characters, percent-decoded. ok is false when m has no
// '=' at all, which no reader takes for a member with a value.
func looseMemberKey(m string) (key string, ok bool) {
	i := strings.IndexAny(m, "=;")
	if i < 0 || m[i] == ';' && strings.IndexByte(m[i:], '=') < 0 {
		return "", false
	}
	key = trimLoose(m[:i])
	for n := 0; n < maxKeyDecodes && strings.IndexByte(key, '%') >= 0; n++ {
		d := looseUnescape(key)
		if d == key {
			break
		}
		key = trimLoose(d)
	}
	return key, true
}

// looseKeyIs reports whether key, as returned by looseMemberKey, is want
// (an ASCII token) in any case under any of the usual case mappings, with
// '_' and '-' taken as the same.
func looseKeyIs(key, want string) bool {
	if key == want {
		return true
	}
	j := 0
	for i := 0; i < len(key); {
		if j == len(want) {
			return false
		}
		c := key[i]
		if c < utf8.RuneSelf {
			if !sameLooseByte(c, want[j]) {
				return false
			}
			i++
			j++
			continue
		}
		r, n := utf8.DecodeRuneInString(key[i:])
		if !sameLooseRune(r, want[j]) {
			return false
		}
		i += n
		j++
	}
	return j == len(want)
}

func sameLooseByte(c, w byte) bool {
	return lowerASCII(c) == lowerASCII(w) || (c == '_' || c == '-') && (w == '_' || w == '-')
}

// sameLooseRune reports whether the non-ASCII rune r reads as the ASCII
// byte w under a simple case folding or a case mapping.
func sameLooseRune(r rune, w byte) bool {
	w = lowerASCII(w)
	for _, m := range [...]rune{unicode.ToLower(r), unicode.ToLower(unicode.ToUpper(r))} {
		if m < utf8.RuneSelf && lowerASCII(byte(m)) == w {
			return true
		}
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf && lowerASCII(byte(f)) == w {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isLooseSpace reports whether some reader trims r off a key: every
// control character and space (Java's String.trim), every Unicode white
// space (strings.TrimSpace, Python's str.strip), and the invisible
// characters some trims or normalisations drop (U+180E, U+200B to U+200D,
// U+2060, U+FEFF).
func isLooseSpace(r rune) bool {
	switch {
	case r <= ' ', r == 0x7f:
		return true
	case r < utf8.RuneSelf:
		return false
	case unicode.IsSpace(r), unicode.Is(unicode.Zs, r):
		return true
	}
	switch r {
	case 0x180e, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff:
		return true
	}
	return false
}

// trimLoose trims isLooseSpace runes off both ends of s.
func trimLoose(s string) string {
	if n := len(s); n > 0 && ' ' < s[0] && s[0] < 0x7f && ' ' < s[n-1] && s[n-1] < 0x7f {
		return s // the common case: nothing to trim
	}
	for len(s) > 0 {
		r, n := rune(s[0]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s)
		}
		if !isLooseSpace(r) {
			break
		}
		s = s[n:]
	}
	for len(s) > 0 {
		r, n := rune(s[len(s)-1]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeLastRuneInString(s)
		}
		if !isLooseSpace(r) {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

// looseUnescape percent-decodes s, leaving broken escapes as they are.
func looseUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isLooseMember reports whether list-member m could be read as a member
// with one of keys by some reader.
func isLooseMember(m string, keys []string) bool {
	// Reading loosely never makes a key longer: trimming and decoding
	// shorten it, and every rune takes a byte at least. So a member whose
	// raw key is shorter than every key is none of them.
	raw := strings.IndexAny(m, "=;")
	if raw < 0 {
		return false
	}
	short := len(keys[0])
	for _, k := range keys[1:] {
		short = min(short, len(k))
	}
	if raw < short {
		return false
	}
	key, ok := looseMemberKey(m)
	if !ok {
		return false
	}
	for _, k := range keys {
		if looseKeyIs(key, k) {
			return true
		}
	}
	return false
}
