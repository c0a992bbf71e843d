package lanes

import (
	"iter"

	"github.com/graylane/graylane/tag"
)

// Index maps lane names to routes for the hot path of Pick: an
// open-addressing table with a cheap hash, built once per picker and read
// without locks, keys and values side by side. It costs a few nanoseconds
// whatever the number of lanes, less than a Go map with string keys. Its
// keys come from the registry and the policy, never from requests: a
// request's tag is only looked up, and the table is at most half full, so
// looking up a tag that is no lane stops at the first empty slot after a
// short probe.
type Index[R any] struct {
	mask    uint32
	entries []indexEntry[R]
}

type indexEntry[R any] struct {
	hash uint32
	lane string
	r    *R // nil: an empty slot
}

// NewIndex returns the index of the routes of m.
func NewIndex[R any](m map[string]*R) Index[R] {
	size := uint32(4)
	for size < 2*uint32(len(m)) {
		size *= 2
	}
	t := Index[R]{mask: size - 1, entries: make([]indexEntry[R], size)}
	for lane, r := range m {
		h := tag.HashName(lane)
		i := h & t.mask
		for t.entries[i].r != nil {
			i = (i + 1) & t.mask
		}
		t.entries[i] = indexEntry[R]{h, lane, r}
	}
	return t
}

// Get returns the route of the lane of tag tg, or nil. Names are compared
// only where the hashes are equal.
func (t *Index[R]) Get(tg tag.Tag) *R {
	h := tg.Hash()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := &t.entries[i]
		if e.r == nil || e.hash == h && e.lane == tg.String() {
			return e.r
		}
	}
}

// All returns the lanes and routes of the index, in no particular order.
func (t *Index[R]) All() iter.Seq2[string, *R] {
	return func(yield func(string, *R) bool) {
		for _, e := range t.entries {
			if e.r != nil && !yield(e.lane, e.r) {
				return
			}
		}
	}
}
