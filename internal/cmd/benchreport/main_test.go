package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReport(t *testing.T) {
	raw := `goos: linux
BenchmarkInbound/path=header/impl=graylane-2   1000  100 ns/op  352 B/op  2 allocs/op
BenchmarkInbound/path=header/impl=graylane-2   1000  110 ns/op  352 B/op  2 allocs/op
BenchmarkInbound/path=header/impl=graylane-2   1000  300 ns/op  352 B/op  2 allocs/op
BenchmarkInbound/path=header/impl=minimal-2    1000  100 ns/op  384 B/op  3 allocs/op
BenchmarkPick/instances=3/lanes=1/impl=graylane_tag-2  1000  40 ns/op  0 B/op  0 allocs/op
BenchmarkPick/instances=3/lanes=1/impl=round_robin-2   1000  20 ns/op  0 B/op  0 allocs/op
BenchmarkResolverUpdate/stage=resolver/instances=1000-2  10  700000 ns/op  700 ns/instance  298146 B/op  4992 allocs/op
`
	samples, err := parse(strings.NewReader(raw))
	require.NoError(t, err)
	require.Len(t, samples["Inbound/path=header/impl=graylane"].ns, 3)
	assert.Equal(t, 110.0, median(samples["Inbound/path=header/impl=graylane"].ns), "the median, not the mean")
	assert.Equal(t, []float64{700}, samples["ResolverUpdate/stage=resolver/instances=1000"].extra["ns/instance"])

	var out bytes.Buffer
	failed := write(&out, samples)
	assert.Equal(t, 1, failed, "Pick at 2× misses its 1.6× bar")
	assert.Contains(t, out.String(), "| inbound, tag in header | 110.0 ns | 100.0 ns | 1.10× | 2 (base 3) | 352 (base 384) | ≤ 1.2×, ≤ 3 allocs, ≤ 400 B | yes |")
	assert.Contains(t, out.String(), "| Pick, 3 instances, 1 lane | 40.0 ns | 20.0 ns | 2.00× |")
	assert.Contains(t, out.String(), "**no**")
	assert.Contains(t, out.String(), "| outbound transport, tag | (not run) |")
	assert.Contains(t, out.String(), "| resolver | 1000 | 700.00 µs | 700.0 ns | 4992 | 298146 |")
}
