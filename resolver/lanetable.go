package resolver

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
		i := laneHash(lane) & t.mask
		for t.entries[i].r != nil {
			i = (i + 1) & t.mask
		}
		t.entries[i] = indexEntry{lane, r}
	}
	return t
}

// get returns the route of lane, or nil.
func (t *routeIndex) get(lane string) *route {
	for i := laneHash(lane) & t.mask; ; i = (i + 1) & t.mask {
		e := &t.entries[i]
		if e.r == nil || e.lane == lane {
			return e.r
		}
	}
}

// laneHash hashes a lane name in constant time: its length and its first
// and last eight bytes (or all of them when it is shorter), mixed. A weak
// hash is enough: keys are compared in full, and an attacker can choose
// only what is looked up, not what is stored.
func laneHash(s string) uint32 {
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
	x ^= x >> 33 // the finalizer of MurmurHash3: every input bit reaches every output bit
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
