package resolver

import "github.com/graylane/graylane/tag"

// routeIndex maps lane names to routes for the hot path of Pick: an
// open-addressing table with a cheap hash, built once per picker and read
// without locks, keys and values side by side. It costs a few nanoseconds
// whatever the number of lanes, less than a Go map with string keys. Its
// keys come from the registry and the policy, never from requests: a
// request's tag is only looked up, and the table is at most half full, so
// looking up a tag that is no lane stops at the first empty slot after a
// short probe.
type routeIndex struct {
	mask    uint32
	entries []indexEntry
}

type indexEntry struct {
	hash uint32
	lane string
	r    *route // nil: an empty slot
}

func newRouteIndex(m map[string]*route) routeIndex {
	size := uint32(4)
	for size < 2*uint32(len(m)) {
		size *= 2
	}
	t := routeIndex{mask: size - 1, entries: make([]indexEntry, size)}
	for lane, r := range m {
		h := tag.HashName(lane)
		i := h & t.mask
		for t.entries[i].r != nil {
			i = (i + 1) & t.mask
		}
		t.entries[i] = indexEntry{h, lane, r}
	}
	return t
}

// get returns the route of the lane of tag tg, or nil. Names are compared
// only where the hashes are equal.
func (t *routeIndex) get(tg tag.Tag) *route {
	h := tg.Hash()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := &t.entries[i]
		if e.r == nil || e.hash == h && e.lane == tg.String() {
			return e.r
		}
	}
}
