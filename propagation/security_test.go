package propagation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/propagation"
)

// TestRejectionsHaveBoundedCardinality: thousands of distinct bad values
// are counted under a fixed set of attribute values (source and reason),
// never under the value itself, and each is logged cut to 80 bytes.
func TestRejectionsHaveBoundedCardinality(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, reader := newMetered(t, propagation.WithLogger(logger), propagation.WithDialects(propagation.DialectMSE))

	const n = 1000
	for i := range n {
		long := fmt.Sprintf("bad value %d %s", i, strings.Repeat("x", 10000))
		p.ReadHeader(context.Background(), http.Header{
			"X-Traffic-Tag": {long},
			"Baggage":       {"traffic-tag=" + fmt.Sprintf("%%zz%d", i)},
			"X-Mse-Tag":     {fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)},
		})
	}
	p.ReadHeader(context.Background(), http.Header{"Baggage": {strings.Repeat("k=v,", 3000)}})

	got := rejections(t, reader)
	assert.Equal(t, map[string]int64{
		"header/invalid":   n,
		"baggage/invalid":  n,
		"mse/ambiguous":    n,
		"baggage/oversize": 1,
	}, got)

	lines := 0
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Value string }
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		assert.LessOrEqual(t, len(rec.Value), 80+len("…"), "logged value is cut")
		lines++
	}
	assert.Equal(t, 3*n+1, lines)
}

// TestManyTagHeadersAreAmbiguousNotExpensive: a request with very many tag
// header values is read in one pass and yields no tag as soon as two valid
// values disagree.
func TestManyTagHeadersAreAmbiguousNotExpensive(t *testing.T) {
	p, reader := newMetered(t)
	vals := make([]string, 100000)
	for i := range vals {
		vals[i] = "gray"
	}
	got, src := p.ReadHeader(context.Background(), http.Header{"X-Traffic-Tag": vals})
	assert.Equal(t, "gray", got.String(), "repeats of one value are that value")
	assert.Equal(t, propagation.SourceHeader, src)

	vals[1] = "v3"
	allocs := testing.AllocsPerRun(10, func() {
		got, _ = p.ReadHeader(context.Background(), http.Header{"X-Traffic-Tag": vals})
	})
	assert.True(t, got.IsZero())
	assert.LessOrEqual(t, allocs, 10.0, "no allocation per value")
	assert.Equal(t, int64(11), rejections(t, reader)["header/ambiguous"])
}
