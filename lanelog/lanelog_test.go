package lanelog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/lanelog"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logged returns the records a logger wrote as JSON lines.
func logged(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func newLogger(buf *bytes.Buffer, opts ...lanelog.Option) *slog.Logger {
	return slog.New(lanelog.NewHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}), opts...))
}

func TestHandler(t *testing.T) {
	gray := tag.NewContext(context.Background(), tag.MustParse("gray"))
	withReceipt := receipt.NewContext(gray, receipt.New(receipt.Hop{
		Service: "ratings", Instance: "ratings-v1-0", Lane: "prod", Tag: "gray", Fallback: "noinstances", From: "reviews",
	}, false))
	atEdge := receipt.NewContext(gray, receipt.New(receipt.Hop{
		Service: "gateway", Instance: "gateway", Tag: "gray", Note: "rule 0 (testers) -> gray",
	}, true))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want map[string]any
	}{
		{"no context", nil, map[string]any{}},
		{"no tag", context.Background(), map[string]any{}},
		{"untagged", tag.NewContext(gray, tag.Tag{}), map[string]any{}},
		{"tag", gray, map[string]any{"graylane.tag": "gray"}},
		{"receipt", withReceipt, map[string]any{"graylane.tag": "gray", "graylane.lane": "prod", "graylane.fallback": "noinstances"}},
		{"edge", atEdge, map[string]any{"graylane.tag": "gray", "graylane.edge": "rule 0 (testers) -> gray"}},
		{"receipt, untagged", receipt.NewContext(context.Background(), receipt.New(receipt.Hop{Service: "a", Lane: "prod"}, false)), map[string]any{"graylane.lane": "prod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := newLogger(&buf)
			logger.Log(tc.ctx, slog.LevelInfo, "hello", "n", 1)
			records := logged(t, &buf)
			require.Len(t, records, 1)
			got := map[string]any{}
			for k, v := range records[0] {
				if strings.HasPrefix(k, "graylane.") {
					got[k] = v
				}
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, "hello", records[0]["msg"])
			assert.Equal(t, float64(1), records[0]["n"])
		})
	}
}

func TestHandlerGroupsAndAttrs(t *testing.T) {
	var buf bytes.Buffer
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	logger := newLogger(&buf).With("service", "reviews").WithGroup("req")
	logger.InfoContext(ctx, "served", "status", 200)
	records := logged(t, &buf)
	require.Len(t, records, 1)
	assert.Equal(t, "reviews", records[0]["service"])
	assert.Equal(t, map[string]any{"status": float64(200), "graylane.tag": "gray"}, records[0]["req"], "in the open group, as every record attribute")

	h := lanelog.NewHandler(slog.NewJSONHandler(io.Discard, nil))
	assert.Same(t, h, h.WithAttrs(nil))
	assert.Same(t, h, h.WithGroup(""))
}

func TestWithAttrFunc(t *testing.T) {
	type userKey struct{}
	var buf bytes.Buffer
	logger := newLogger(&buf, nil, lanelog.WithAttrFunc(nil), lanelog.WithAttrFunc(func(ctx context.Context) (slog.Attr, bool) {
		u, ok := ctx.Value(userKey{}).(string)
		return slog.String("user", u), ok
	}))
	ctx := context.WithValue(tag.NewContext(context.Background(), tag.MustParse("gray")), userKey{}, "jason")
	logger.InfoContext(ctx, "a")
	logger.With("x", 1).InfoContext(context.Background(), "b")
	records := logged(t, &buf)
	require.Len(t, records, 2)
	assert.Equal(t, "jason", records[0]["user"])
	assert.Equal(t, "gray", records[0]["graylane.tag"])
	assert.NotContains(t, records[1], "user")
}

func TestEnabled(t *testing.T) {
	h := lanelog.NewHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	assert.False(t, h.Enabled(context.Background(), slog.LevelInfo))
	assert.True(t, h.Enabled(context.Background(), slog.LevelError))
	assert.NotNil(t, lanelog.NewHandler(nil), "nil wraps the default handler")
}

// TestSlogtest: the wrapper keeps the slog.Handler contract.
func TestSlogtest(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return lanelog.NewHandler(slog.NewJSONHandler(&buf, nil))
	}, func(t *testing.T) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
		return m
	})
}
