package lanes

import "math/bits"

// MaxSlots bounds the length of a lane's weighted round-robin sequence.
const MaxSlots = 4096

// Sequence returns, for items with the given weights (each ≥ 1), a
// sequence of item indexes in which each item appears in proportion to its
// weight, spread out rather than in runs (smooth weighted round-robin).
// Cycling through the sequence with one atomic counter then gives weighted
// round-robin without a lock. Weights are scaled down when their sum would
// exceed MaxSlots, keeping every item at least once.
func Sequence(weights []uint32) []int {
	if len(weights) == 0 {
		return nil
	}
	w := make([]int, len(weights))
	total := 0
	for i, x := range weights {
		w[i] = int(max(x, 1))
		total += w[i]
	}
	if g := gcdAll(w); g > 1 {
		total = 0
		for i := range w {
			w[i] /= g
			total += w[i]
		}
	}
	if total > MaxSlots {
		scaled := 0
		for i := range w {
			w[i] = max(w[i]*MaxSlots/total, 1)
			scaled += w[i]
		}
		total = scaled
	}
	seq := make([]int, total)
	cur := make([]int, len(w))
	for n := range seq {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq[n] = best
	}
	return seq
}

func gcdAll(w []int) int {
	g := w[0]
	for _, x := range w[1:] {
		for x != 0 {
			g, x = x, g%x
		}
	}
	return g
}

// FastMod computes n % d for a fixed d with two multiplications instead of
// a division (Lemire, Kaser and Kurz, "Faster remainder by direct
// computation", 2019): on the hot path of Pick the division would cost as
// much as the rest of the pick.
type FastMod struct {
	m uint64
	d uint32
}

// NewFastMod returns the remainder by d, which must not be 0.
func NewFastMod(d uint32) FastMod {
	return FastMod{m: ^uint64(0)/uint64(d) + 1, d: d}
}

// Of returns n % d.
func (f FastMod) Of(n uint32) uint32 {
	hi, _ := bits.Mul64(f.m*uint64(n), uint64(f.d))
	return uint32(hi)
}
