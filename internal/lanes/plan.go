package lanes

import (
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// Plan works out the route of every tag a routing table answers for,
// with build: untagged calls; each lane that has instances (the keys of
// present) or that the policy names; and every other tag at once, through
// a stand-in that is none of those lanes — all unknown tags meet the same
// lane states, so they share one decision.
func Plan[V, R any](present map[string]V, sp *fallback.ServicePolicy, build func(t tag.Tag, requested string) R) (untagged R, byLane map[string]R, unknown R) {
	untagged = build(tag.Tag{}, "")
	named := sp.Lanes()
	lanes := make(map[string]bool, len(present)+len(named))
	for lane := range present {
		lanes[lane] = true
	}
	for _, lane := range named {
		lanes[lane] = true
	}
	byLane = make(map[string]R, len(lanes))
	for lane := range lanes {
		if t, ok := tag.Of(lane); ok {
			byLane[lane] = build(t, lane)
		}
	}
	standIn := "unknown"
	for lanes[standIn] {
		standIn += "-x"
	}
	return untagged, byLane, build(tag.MustParse(standIn), UnknownTag)
}
