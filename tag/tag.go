// Package tag defines the traffic tag: the name of the lane a request belongs
// to, how it is validated, and how it travels inside a context.Context.
//
// A tag is 1 to 63 characters long, starts and ends with an ASCII letter or
// digit, and contains only ASCII letters, digits, '.', '_' and '-' in between:
// the rule Kubernetes applies to label values, so a lane can be named after a
// pod label. Tags are case-sensitive ("Gray" and "gray" are different lanes).
//
// Bad input: Parse never panics; it returns an error wrapping ErrInvalid that
// says what is wrong and where. The only way to obtain a non-zero Tag is
// through Parse or MustParse, so every Tag in a context is valid. The zero Tag
// means "untagged".
//
// The package has no dependencies outside the standard library.
package tag

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Base is the default name of the base lane: the lane that holds every
// service and serves untagged requests. Instances registered without a tag
// belong to it.
const Base = "prod"

// MaxLen is the longest valid tag, in bytes.
const MaxLen = 63

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid tag")

// Tag is the name of a lane. The zero value is the absence of a tag.
//
// Tags are small comparable values: compare them with ==, use them as map
// keys.
type Tag struct {
	name string
	hash uint32 // of name, worked out once: lookup tables on hot paths use it
}

// Parse validates s and returns it as a Tag. The error wraps ErrInvalid and
// names the first problem found: emptiness, length, or the offending byte and
// its offset.
func Parse(s string) (Tag, error) {
	if t, ok := Of(s); ok {
		return t, nil
	}
	return Tag{}, check(s)
}

// Of returns s as a Tag and true if s is a valid tag, or the zero Tag and
// false. It is Parse without the error message, for hot paths: it never
// allocates.
func Of(s string) (Tag, bool) {
	if !Valid(s) {
		return Tag{}, false
	}
	return Tag{name: s, hash: hashName(s)}, true
}

// MustParse is like Parse but panics on an invalid tag. Use it for constants
// known at compile time, never for input.
func MustParse(s string) Tag {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// Valid reports whether s is a valid tag. It does not allocate.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !inner(s[i]) {
			return false
		}
	}
	return true
}

// Hash returns a hash of the tag's name, the same for equal tags in every
// process: routing tables that look tags up on every call use it instead
// of hashing the name again. The zero Tag's hash is 0. It is not a
// cryptographic hash.
func (t Tag) Hash() uint32 { return t.hash }

// HashName returns the Hash of the tag named s, valid or not.
func HashName(s string) uint32 {
	if s == "" {
		return 0
	}
	return hashName(s)
}

// hashName hashes a name in constant time: its length and its first and
// last eight bytes (or all of them when it is shorter), mixed so that every
// input bit reaches every output bit (the finalizer of MurmurHash3).
func hashName(s string) uint32 {
	n := len(s)
	x := uint64(n) * 0x9e3779b97f4a7c15
	switch {
	case n >= 8:
		x ^= load8(s) ^ load8(s[n-8:])*0xc2b2ae3d27d4eb4f
	case n >= 4:
		x ^= uint64(load4(s)) | uint64(load4(s[n-4:]))<<32
	default:
		for i := 0; i < n; i++ {
			x ^= uint64(s[i]) << (8 * i)
		}
	}
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}

func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load4(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// String returns the tag's name, or "" for the zero Tag.
func (t Tag) String() string { return t.name }

// IsZero reports whether t is the zero Tag (no tag).
func (t Tag) IsZero() bool { return t.name == "" }

// IsBase reports whether t names the default base lane (Base). Callers that
// configure another base lane compare with their own name.
func (t Tag) IsBase() bool { return t.name == Base }

// MarshalText implements encoding.TextMarshaler.
func (t Tag) MarshalText() ([]byte, error) { return []byte(t.name), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text yields the
// zero Tag; anything else must be a valid tag.
func (t *Tag) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = Tag{}
		return nil
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func check(s string) error {
	switch {
	case len(s) == 0:
		return fmt.Errorf("%w: empty", ErrInvalid)
	case len(s) > MaxLen:
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalid, len(s), MaxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		edge := i == 0 || i == len(s)-1
		if edge && !alnum(c) {
			where := "start"
			if i != 0 {
				where = "end"
			}
			return fmt.Errorf("%w: %s must %s with a letter or digit, found %s at offset %d",
				ErrInvalid, strconv.Quote(s), where, quoteByte(c), i)
		}
		if !edge && !inner(c) {
			return fmt.Errorf("%w: %s has %s at offset %d; allowed are letters, digits, '.', '_' and '-'",
				ErrInvalid, strconv.Quote(s), quoteByte(c), i)
		}
	}
	return nil
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func inner(c byte) bool {
	return alnum(c) || c == '-' || c == '_' || c == '.'
}

// contextKey is the key under which a tagContext answers Value with itself.
// It has no fields, so that making and comparing it costs nothing.
type contextKey struct{}

// tagContext carries a tag. It is a context of its own rather than a
// context.WithValue so that storing a tag costs one allocation instead of
// two (no boxing of the Tag into an interface).
type tagContext struct {
	context.Context
	t Tag
}

func (c *tagContext) Value(key any) any {
	if _, ok := key.(contextKey); ok {
		return c
	}
	return c.Context.Value(key)
}

func (c *tagContext) String() string {
	return fmt.Sprintf("%v.WithTag(%q)", c.Context, c.t.name)
}

// NewContext returns a copy of parent that carries t. Passing the zero Tag
// removes a tag that parent carries (and returns parent itself when it
// carries none), so that code downstream sees an untagged request.
func NewContext(parent context.Context, t Tag) context.Context {
	if t.IsZero() {
		if _, ok := FromContext(parent); !ok {
			return parent
		}
	}
	return &tagContext{Context: parent, t: t}
}

// FromContext returns the tag carried by ctx and whether there is one.
func FromContext(ctx context.Context) (Tag, bool) {
	if c, ok := ctx.Value(contextKey{}).(*tagContext); ok {
		return c.t, c.t.name != ""
	}
	return Tag{}, false
}
