package propagation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/propagation"
)

// TestPolaris reads Polaris's stain header as Polaris writes it: in its own
// example a request stained "gray/rule1" (lane group gray, rule rule1) goes
// to the instances labelled lane=gray, so its lane is the group.
func TestPolaris(t *testing.T) {
	mapped, err := propagation.PolarisDialect(map[string]string{"gray/rule1": "canary", "gray/rule2": "canary", "blue/r": "blue-v2"})
	require.NoError(t, err)
	tests := []struct {
		name    string
		d       propagation.Dialect
		in      string
		want    string
		written string // what writing want gives
	}{
		{"documented example", propagation.DialectPolaris, "gray/rule1", "gray", "gray"},
		{"plain lane", propagation.DialectPolaris, "gray", "gray", "gray"},
		{"no rule", propagation.DialectPolaris, "gray/", "", ""},
		{"no group", propagation.DialectPolaris, "/rule1", "", ""},
		{"two slashes", propagation.DialectPolaris, "a/b/c", "", ""},
		{"mapped", mapped, "gray/rule1", "canary", "gray/rule1"},
		{"mapped, another rule of the lane", mapped, "gray/rule2", "canary", "gray/rule1"},
		{"mapped elsewhere", mapped, "blue/r", "blue-v2", "blue/r"},
		{"not mapped: the group", mapped, "green/r9", "green", "green"},
		{"not mapped: plain", mapped, "gray", "gray", "gray"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProp(t, propagation.WithDialects(tt.d), propagation.WithWriteDialects(tt.d),
				propagation.WithSources(propagation.SourceDialect))
			got, _ := p.ReadHeader(context.Background(), http.Header{"Service-Lane": {tt.in}})
			assert.Equal(t, tt.want, got.String())
			if tt.want == "" {
				return
			}
			out := http.Header{}
			p.InjectHeader(out, got)
			assert.Equal(t, []string{tt.written}, out["Service-Lane"])
			assert.True(t, p.HeaderCarries(out, got))
			back, _ := p.ReadHeader(context.Background(), out)
			assert.Equal(t, got, back, "read back")
		})
	}
}

func TestPolarisDialectErrors(t *testing.T) {
	for _, m := range []map[string]string{
		{"gray": "gray"},
		{"/rule": "gray"},
		{"gray/": "gray"},
		{"a/b/c": "gray"},
		{"gray/rule1": "not a lane"},
	} {
		_, err := propagation.PolarisDialect(m)
		assert.Error(t, err, "%v", m)
	}
	d, err := propagation.PolarisDialect(nil)
	require.NoError(t, err)
	assert.Equal(t, "polaris", d.Name())
	assert.Equal(t, "service-lane", d.Header())
}
