package lanes

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWRRSequence(t *testing.T) {
	tests := []struct {
		weights []uint32
		want    []int
	}{
		{nil, nil},
		{[]uint32{1}, []int{0}},
		{[]uint32{1, 1, 1}, []int{0, 1, 2}},
		{[]uint32{1, 3}, []int{1, 0, 1, 1}},
		{[]uint32{2, 6}, []int{1, 0, 1, 1}}, // reduced by the common divisor
		{[]uint32{0, 1}, []int{0, 1}},       // 0 counts as 1
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Sequence(tt.weights), "%v", tt.weights)
	}
	seq := Sequence([]uint32{10000, 1, 7})
	assert.LessOrEqual(t, len(seq), MaxSlots)
	counts := map[int]int{}
	for _, i := range seq {
		counts[i]++
	}
	assert.GreaterOrEqual(t, counts[1], 1, "a light instance still gets a slot")
	assert.InDelta(t, float64(len(seq))*10000/(10000+8), counts[0], 2)
}

func TestFastMod(t *testing.T) {
	for _, d := range []uint32{1, 2, 3, 7, 100, 4096, 65537, 1<<31 + 11} {
		f := NewFastMod(d)
		for _, n := range []uint32{0, 1, 2, d - 1, d, d + 1, 12345, 1<<31 - 1, 1 << 31, 1<<32 - 1} {
			assert.Equal(t, n%d, f.Of(n), "%d %% %d", n, d)
		}
	}
}
