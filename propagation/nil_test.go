package propagation_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// TestInjectNil checks that injecting into a nil carrier, which has
// nowhere to write, does nothing instead of panicking.
func TestInjectNil(t *testing.T) {
	p := newProp(t, propagation.WithBaggageInjection(), propagation.WithWriteDialects(propagation.DialectASM, propagation.DialectSignadot))
	gray := tag.MustParse("gray")
	require.NotPanics(t, func() { p.InjectHeader(nil, gray) })
	require.NotPanics(t, func() { p.InjectMetadata(nil, gray) })
	assert.True(t, p.HeaderCarries(nil, tag.Tag{}))
	assert.False(t, p.HeaderCarries(nil, gray))
	assert.False(t, p.Strip(nil))
	assert.False(t, p.StripMetadata(nil))
}
