package lanes

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/graylane/graylane/tag"
)

func TestRouteIndex(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100, 1000} {
		m := map[string]*struct{ n int }{}
		for i := range n {
			m["lane-"+strconv.Itoa(i)] = &struct{ n int }{i}
		}
		idx := NewIndex(m)
		assert.LessOrEqual(t, 2*n, len(idx.entries), "at most half full")
		for k, v := range m {
			assert.Same(t, v, idx.Get(tag.MustParse(k)), k)
		}
		probes := 0
		for k := range m {
			for i := tag.HashName(k) & idx.mask; idx.entries[i].lane != k; i = (i + 1) & idx.mask {
				probes++
			}
		}
		assert.LessOrEqual(t, probes, len(m), "%d lanes: %d extra probes in all", n, probes)
		for _, miss := range []string{"lane", "lane-1000", "prod", "x", "a-very-long-lane-name-that-is-not-there"} {
			assert.Nil(t, idx.Get(tag.MustParse(miss)), "%q in %d lanes", miss, n)
		}
	}
}

func BenchmarkRouteIndex(b *testing.B) {
	for _, n := range []int{3, 100} {
		m := map[string]*struct{ n int }{}
		for i := range n {
			m["lane-"+strconv.Itoa(i)] = &struct{ n int }{i}
		}
		idx := NewIndex(m)
		name := "lane-" + strconv.Itoa(n-1)
		key := tag.MustParse(name)
		b.Run("lanes="+strconv.Itoa(n)+"/impl=index", func(b *testing.B) {
			for b.Loop() {
				if idx.Get(key) == nil {
					b.Fatal("missing")
				}
			}
		})
		b.Run("lanes="+strconv.Itoa(n)+"/impl=map", func(b *testing.B) {
			for b.Loop() {
				if m[name] == nil {
					b.Fatal("missing")
				}
			}
		})
	}
}
