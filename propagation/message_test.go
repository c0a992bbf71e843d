package propagation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// sliceHeaders is a carrier kept as a list of key-value pairs, the shape of
// Kafka record headers: keys may repeat and are matched exactly.
type sliceHeaders struct {
	kv  [][2]string
	buf []string
}

func (s *sliceHeaders) Values(key string) []string {
	s.buf = s.buf[:0]
	for _, h := range s.kv {
		if h[0] == key {
			s.buf = append(s.buf, h[1])
		}
	}
	return s.buf
}

func (s *sliceHeaders) Set(key, value string) {
	out := s.kv[:0]
	for _, h := range s.kv {
		if h[0] != key {
			out = append(out, h)
		}
	}
	s.kv = append(out, [2]string{key, value})
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name    string
		h       propagation.MessageHeader
		want    string
		src     propagation.Source
		rejects map[string]int64
	}{
		{"none", propagation.MessageHeader{}, "", propagation.SourceNone, map[string]int64{}},
		{"header", propagation.MessageHeader{"x-traffic-tag": {"gray"}}, "gray", propagation.SourceHeader, map[string]int64{}},
		{"baggage", propagation.MessageHeader{"baggage": {"a=1,traffic-tag=v3"}}, "v3", propagation.SourceBaggage, map[string]int64{}},
		{"header wins", propagation.MessageHeader{"x-traffic-tag": {"gray"}, "baggage": {"traffic-tag=v3"}}, "gray", propagation.SourceHeader, map[string]int64{}},
		// Keys are case-sensitive: OpenTelemetry's message carriers write
		// lower case, and so does graylane.
		{"canonical key is another key", propagation.MessageHeader{"X-Traffic-Tag": {"gray"}}, "", propagation.SourceNone, map[string]int64{}},
		{"invalid", propagation.MessageHeader{"x-traffic-tag": {"gr@y"}}, "", propagation.SourceNone, map[string]int64{"header/invalid": 1}},
		{"oversized value", propagation.MessageHeader{"x-traffic-tag": {strings.Repeat("g", 1<<16)}}, "", propagation.SourceNone, map[string]int64{"header/invalid": 1}},
		{"conflicting", propagation.MessageHeader{"x-traffic-tag": {"gray", "v3"}}, "", propagation.SourceNone, map[string]int64{"header/ambiguous": 1}},
		{"conflicting header falls to baggage", propagation.MessageHeader{"x-traffic-tag": {"gray", "v3"}, "baggage": {"traffic-tag=gray"}}, "gray", propagation.SourceBaggage, map[string]int64{"header/ambiguous": 1}},
		{"oversized baggage", propagation.MessageHeader{"baggage": {strings.Repeat("a", 9000) + "=1,traffic-tag=gray"}}, "", propagation.SourceNone, map[string]int64{"baggage/oversize": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, r := newMetered(t)
			got, src := p.ReadMessage(context.Background(), tt.h)
			assert.Equal(t, tt.want, got.String())
			assert.Equal(t, tt.src, src)
			assert.Equal(t, tt.rejects, rejections(t, r))
		})
	}
}

func TestReadMessageDialectsAndOwnTag(t *testing.T) {
	p, _ := newMetered(t, propagation.WithDialects(propagation.DialectASM, propagation.DialectSignadot), propagation.WithOwnTag("dev"))
	got, src := p.ReadMessage(context.Background(), propagation.MessageHeader{"x-asm-prefer-tag": {"gray"}})
	assert.Equal(t, "gray", got.String())
	assert.Equal(t, propagation.SourceDialect, src)
	got, src = p.ReadMessage(context.Background(), propagation.MessageHeader{"baggage": {"sd-routing-key=v3"}})
	assert.Equal(t, "v3", got.String())
	assert.Equal(t, propagation.SourceDialect, src)
	got, src = p.ReadMessage(context.Background(), propagation.MessageHeader{})
	assert.Equal(t, "dev", got.String())
	assert.Equal(t, propagation.SourceOwn, src)
}

func TestInjectMessage(t *testing.T) {
	gray := tag.MustParse("gray")
	t.Run("header only", func(t *testing.T) {
		p, _ := newMetered(t)
		h := propagation.MessageHeader{"traceparent": {"00-x"}}
		p.InjectMessage(h, gray)
		assert.Equal(t, propagation.MessageHeader{"traceparent": {"00-x"}, "x-traffic-tag": {"gray"}}, h)
		p.InjectMessage(h, tag.Tag{})
		assert.Equal(t, propagation.MessageHeader{"traceparent": {"00-x"}, "x-traffic-tag": {"gray"}}, h, "the zero Tag writes nothing")
	})
	t.Run("baggage and dialects", func(t *testing.T) {
		p, _ := newMetered(t, propagation.WithBaggageInjection(), propagation.WithWriteDialects(propagation.DialectASM, propagation.DialectSignadot))
		h := propagation.MessageHeader{"x-traffic-tag": {"old", "older"}, "baggage": {"a=1", "traffic-tag=old,b=2"}}
		p.InjectMessage(h, gray)
		assert.Equal(t, []string{"gray"}, h["x-traffic-tag"])
		assert.Equal(t, []string{"gray"}, h["x-asm-prefer-tag"])
		assert.Equal(t, []string{"a=1,traffic-tag=gray,b=2,sd-routing-key=gray"}, h["baggage"])
		got, _ := p.ReadMessage(context.Background(), h)
		assert.Equal(t, gray, got)
	})
	t.Run("list carrier", func(t *testing.T) {
		p, _ := newMetered(t, propagation.WithBaggageInjection())
		h := &sliceHeaders{kv: [][2]string{{"X-Traffic-Tag", "v3"}, {"x-traffic-tag", "v3"}}}
		p.InjectMessage(h, gray)
		assert.Equal(t, [][2]string{{"X-Traffic-Tag", "v3"}, {"x-traffic-tag", "gray"}, {"baggage", "traffic-tag=gray"}}, h.kv)
		before := len(h.kv)
		p.InjectMessage(h, gray)
		assert.Len(t, h.kv, before, "nothing is written twice")
	})
}

func TestMessageHeaderTextMapCarrier(t *testing.T) {
	h := propagation.MessageHeader{"b": {"2", "3"}, "a": {"1"}}
	assert.Equal(t, "2", h.Get("b"))
	assert.Equal(t, "", h.Get("B"))
	assert.Equal(t, []string{"a", "b"}, h.Keys())
	h.Set("B", "x")
	assert.Equal(t, []string{"x"}, h.Values("B"))
	assert.Equal(t, []string{"2", "3"}, h.Values("b"))
}

func TestReadMessageDoesNotAllocate(t *testing.T) {
	p, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	for _, h := range []propagation.MessageHeader{
		{"x-traffic-tag": {"gray"}},
		{"baggage": {"a=1,traffic-tag=gray"}},
		{},
	} {
		allocs := testing.AllocsPerRun(100, func() { p.ReadMessage(context.Background(), h) })
		assert.Zero(t, allocs, "%v", h)
	}
}
