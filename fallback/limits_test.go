package fallback_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
)

// TestPolicyLimits feeds ParseJSON the policies of the review, which took
// seconds and hundreds of MiB to validate and produced a 95 MiB error, and
// checks that each is refused at once with a short error.
func TestPolicyLimits(t *testing.T) {
	lanes := func(n int, name func(i int) string) string {
		q := make([]string, n)
		for i := range q {
			q[i] = `"` + name(i) + `"`
		}
		return strings.Join(q, ",")
	}
	var manyChains, manyModes, manyServices strings.Builder
	for i := range fallback.MaxLanes + 1 {
		fmt.Fprintf(&manyChains, `%s"l%d":["prod"]`, map[bool]string{true: "", false: ","}[i == 0], i)
		fmt.Fprintf(&manyModes, `%s"l%d":{"mode":"strict"}`, map[bool]string{true: "", false: ","}[i == 0], i)
	}
	for i := range fallback.MaxServices + 1 {
		fmt.Fprintf(&manyServices, `%s"s%d":{}`, map[bool]string{true: "", false: ","}[i == 0], i)
	}
	tests := []struct {
		name, json, want string
	}{
		{"5000 repeated entries", `{"chains":{"dev":[` + lanes(5000, func(int) string { return "x" }) + `,"prod"]}}`,
			`chain of lane "dev" has 5001 lanes, at most 32`},
		{"60000 distinct lanes", `{"chains":{"dev":[` + lanes(60000, func(i int) string { return fmt.Sprintf("l%d", i) }) + `,"prod"]}}`,
			`chain of lane "dev" has 60001 lanes, at most 32`},
		{"in a service", `{"services":{"reviews":{"chains":{"dev":[` + lanes(100, func(int) string { return "x" }) + `]}}}}`,
			`service "reviews": chain of lane "dev" has 100 lanes, at most 32`},
		{"too many chains", `{"chains":{` + manyChains.String() + `}}`, "1025 lanes with a chain, at most 1024"},
		{"too many lane modes", `{"lanes":{` + manyModes.String() + `}}`, "1025 lanes with a mode, at most 1024"},
		{"too many services", `{"services":{` + manyServices.String() + `}}`, "1025 services configured, at most 1024"},
		{"many bad entries", `{"chains":{` + func() string {
			var b strings.Builder
			for i := range 500 {
				fmt.Fprintf(&b, `%s"%s%d":["prod"]`, map[bool]string{true: "", false: ","}[i == 0], strings.Repeat("-", 5000), i)
			}
			return b.String()
		}() + `}}`, "480 more problems not shown"},
		{"long names are cut", `{"mode":"` + strings.Repeat("m", 100000) + `"}`, `unknown mode "` + strings.Repeat("m", 80) + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := fallback.ParseJSON([]byte(tt.json))
			elapsed := time.Since(start)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, len(err.Error()), 8<<10, "the error is short")
			t.Logf("%d bytes refused in %v", len(tt.json), elapsed)
		})
	}
}

func TestPolicyAtTheLimits(t *testing.T) {
	chain := make([]string, 0, fallback.MaxChainLength)
	for i := range fallback.MaxChainLength - 1 {
		chain = append(chain, fmt.Sprintf("l%d", i))
	}
	chain = append(chain, "prod")
	p, err := fallback.NewPolicy(fallback.WithChain("dev", chain...))
	require.NoError(t, err)
	assert.Equal(t, chain, p.Service("x").Chain("dev"))

	_, err = fallback.NewPolicy(fallback.WithChain("dev", append([]string{"extra"}, chain...)...))
	require.ErrorContains(t, err, `chain of lane "dev" has 33 lanes, at most 32`)
}
