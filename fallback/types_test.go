package fallback_test

import (
	"encoding"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
)

type textValue interface {
	encoding.TextMarshaler
	String() string
}

func TestNames(t *testing.T) {
	tests := []struct {
		v    textValue
		name string
	}{
		{fallback.Loose, "loose"},
		{fallback.Strict, "strict"},
		{fallback.Matched, "matched"},
		{fallback.Untagged, "untagged"},
		{fallback.NoInstances, "noinstances"},
		{fallback.Unavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.v.String())
			b, err := tt.v.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, tt.name, string(b))
		})
	}

	states := map[fallback.State]string{
		fallback.Absent:     "absent",
		fallback.NotReady:   "notready",
		fallback.Connecting: "connecting",
		fallback.Ready:      "ready",
		fallback.State(9):   "State(9)",
	}
	for s, name := range states {
		assert.Equal(t, name, s.String())
	}
}

func TestModeText(t *testing.T) {
	for _, m := range []fallback.Mode{fallback.Loose, fallback.Strict} {
		b, err := m.MarshalText()
		require.NoError(t, err)
		var got fallback.Mode
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, m, got)
	}

	assert.Equal(t, "Mode(7)", fallback.Mode(7).String())
	_, err := fallback.Mode(7).MarshalText()
	assert.ErrorContains(t, err, "unknown mode 7")

	for _, in := range []string{"", "Strict", "STRICT", "lose", " loose"} {
		m := fallback.Strict
		err := m.UnmarshalText([]byte(in))
		require.Error(t, err, "%q", in)
		assert.Contains(t, err.Error(), `"`+in+`"`)
		assert.Contains(t, err.Error(), `"loose" and "strict"`)
		assert.Equal(t, fallback.Strict, m, "unchanged on error")
	}
}

func TestReasonText(t *testing.T) {
	for _, r := range []fallback.Reason{fallback.Matched, fallback.Untagged, fallback.NoInstances, fallback.Unavailable} {
		b, err := r.MarshalText()
		require.NoError(t, err)
		var got fallback.Reason
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, r, got)
	}

	assert.Equal(t, "Reason(42)", fallback.Reason(42).String())
	_, err := fallback.Reason(42).MarshalText()
	assert.ErrorContains(t, err, "unknown reason 42")

	var r fallback.Reason
	err = r.UnmarshalText([]byte("noavailabled"))
	require.Error(t, err)
	assert.Equal(t, `fallback: unknown reason "noavailabled"; allowed are "matched", "untagged", "noinstances" and "unavailable"`, err.Error())
}

func TestReasonIsFallback(t *testing.T) {
	want := map[fallback.Reason]bool{
		fallback.Matched:     false,
		fallback.Untagged:    false,
		fallback.NoInstances: true,
		fallback.Unavailable: true,
		fallback.Reason(4):   false,
		fallback.Reason(255): false,
	}
	for r, fb := range want {
		assert.Equal(t, fb, r.IsFallback(), r.String())
	}
}

// TestParseHeader: only the names of fallback reasons, exactly as spelled.
func TestParseHeader(t *testing.T) {
	for in, want := range map[string]fallback.Reason{"noinstances": fallback.NoInstances, "unavailable": fallback.Unavailable} {
		r, ok := fallback.ParseHeader(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, r, in)
	}
	for _, in := range []string{"", "matched", "untagged", "NoInstances", " unavailable", "unavailable,noinstances", "Reason(9)"} {
		_, ok := fallback.ParseHeader(in)
		assert.False(t, ok, "%q", in)
	}
	assert.Equal(t, []fallback.Reason{fallback.NoInstances, fallback.Unavailable}, fallback.FallbackReasons)
}
