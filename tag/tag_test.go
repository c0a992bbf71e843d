package tag_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/tag"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // substring of the error; "" means valid
	}{
		{"gray", ""},
		{"prod", ""},
		{"v3", ""},
		{"a", ""},
		{"Gray", ""},
		{"dev-alice", ""},
		{"dev.alice_2", ""},
		{"0", ""},
		{strings.Repeat("a", 63), ""},
		{"", "empty"},
		{strings.Repeat("a", 64), "64 bytes long, at most 63"},
		{"-gray", `must start with a letter or digit, found '-' at offset 0`},
		{"gray-", `must end with a letter or digit, found '-' at offset 4`},
		{".", "must start"},
		{"gr ay", `' ' at offset 2`},
		{"gr,ay", `',' at offset 2`},
		{"gray\x00", "byte 0x00 at offset 4"},
		{"gr\xffay", "byte 0xff at offset 2"},
		{"grä", "byte 0xc3 at offset 2"},
		{"a/b", `'/' at offset 1`},
		{" gray", "must start"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := tag.Parse(tt.in)
			assert.Equal(t, tt.wantErr == "", tag.Valid(tt.in), "Valid agrees with Parse")
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.in, got.String())
				assert.False(t, got.IsZero())
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tag.ErrInvalid)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, got.IsZero(), "an invalid tag yields the zero Tag")
		})
	}
}

func TestMustParsePanicsOnInvalid(t *testing.T) {
	assert.Panics(t, func() { tag.MustParse("no way") })
	assert.Equal(t, "gray", tag.MustParse("gray").String())
}

func TestTagEqualityAndBase(t *testing.T) {
	assert.Equal(t, tag.MustParse("gray"), tag.MustParse("gray"))
	assert.NotEqual(t, tag.MustParse("gray"), tag.MustParse("Gray"))
	assert.True(t, tag.MustParse(tag.Base).IsBase())
	assert.False(t, tag.MustParse("gray").IsBase())
	assert.True(t, tag.Tag{}.IsZero())
}

func TestText(t *testing.T) {
	var v tag.Tag
	require.NoError(t, v.UnmarshalText([]byte("gray")))
	assert.Equal(t, "gray", v.String())
	b, err := v.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "gray", string(b))

	require.NoError(t, v.UnmarshalText(nil))
	assert.True(t, v.IsZero())

	err = v.UnmarshalText([]byte("bad tag"))
	assert.ErrorIs(t, err, tag.ErrInvalid)
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	_, ok := tag.FromContext(ctx)
	assert.False(t, ok)

	assert.Equal(t, ctx, tag.NewContext(ctx, tag.Tag{}), "zero tag on an untagged context is a no-op")

	gray := tag.MustParse("gray")
	ctx = tag.NewContext(ctx, gray)
	got, ok := tag.FromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, gray, got)

	v3 := tag.MustParse("v3")
	got, _ = tag.FromContext(tag.NewContext(ctx, v3))
	assert.Equal(t, v3, got, "the innermost tag wins")

	_, ok = tag.FromContext(tag.NewContext(ctx, tag.Tag{}))
	assert.False(t, ok, "a zero tag masks an outer one")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"gray", "", "-", "a-b", "a..b", strings.Repeat("z", 64), "gr\xffay", "%67ray"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tag.Parse(s)
		if tag.Valid(s) != (err == nil) {
			t.Fatalf("Valid(%q)=%v but Parse error %v", s, tag.Valid(s), err)
		}
		if err != nil {
			if !errors.Is(err, tag.ErrInvalid) || !got.IsZero() {
				t.Fatalf("Parse(%q) = %v, %v", s, got, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message for %q is not valid UTF-8: %q", s, err.Error())
			}
			return
		}
		if got.String() != s || len(s) == 0 || len(s) > tag.MaxLen {
			t.Fatalf("Parse(%q) accepted %q", s, got)
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				t.Fatalf("non-ASCII accepted in %q", s)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tag.Parse("gray-lane_1.0"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestContextComposesWithStdlib(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := tag.NewContext(parent, tag.MustParse("gray"))
	assert.Equal(t, "v", ctx.Value(key{}), "other values are still found")

	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	cancel()
	<-child.Done() // cancelling the parent reaches through the tag context
	assert.ErrorIs(t, child.Err(), context.Canceled)
	got, ok := tag.FromContext(child)
	require.True(t, ok)
	assert.Equal(t, "gray", got.String())
	assert.Contains(t, fmt.Sprint(ctx), `WithTag("gray")`)
}

func BenchmarkNewContext(b *testing.B) {
	ctx := context.Background()
	gray := tag.MustParse("gray")
	b.ReportAllocs()
	for b.Loop() {
		c := tag.NewContext(ctx, gray)
		if _, ok := tag.FromContext(c); !ok {
			b.Fatal("lost")
		}
	}
}

func TestHash(t *testing.T) {
	assert.Zero(t, tag.Tag{}.Hash())
	assert.Equal(t, tag.MustParse("gray").Hash(), tag.MustParse("gray").Hash(), "equal tags, equal hashes")
	assert.Equal(t, tag.HashName("gray"), tag.MustParse("gray").Hash())
	seen := map[uint32]string{}
	for _, name := range []string{"a", "ab", "abc", "abcd", "gray", "prod", "v3", "dev-alice", "dev-bob", "lane-1", "lane-2", strings.Repeat("x", 63)} {
		h := tag.MustParse(name).Hash()
		assert.NotContains(t, seen, h, "%q and %q", name, seen[h])
		seen[h] = name
	}
}
