package details_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/examples/bookinfo/details"
	"github.com/graylane/graylane/examples/bookinfo/faults"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func book(id float64) map[string]any {
	return map[string]any{
		"id":        id,
		"author":    "William Shakespeare",
		"year":      float64(1595),
		"type":      "paperback",
		"pages":     float64(200),
		"publisher": "PublisherA",
		"language":  "English",
		"ISBN-10":   "1234567890",
		"ISBN-13":   "123-1234567890",
	}
}

var bookKeys = []string{"id", "author", "year", "type", "pages", "publisher", "language", "ISBN-10", "ISBN-13"}

func get(t *testing.T, srv *httptest.Server, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

// keys returns the keys of the JSON object b in the order they appear.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var ks []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		ks = append(ks, tok.(string))
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	return ks
}

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(details.New())
	defer srv.Close()

	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		want     map[string]any // nil: not JSON
		wantKeys []string
	}{
		{"health", "GET", "/health", 200, map[string]any{"status": "Details is healthy"}, []string{"status"}},
		{"product 0", "GET", "/details/0", 200, book(0), bookKeys},
		{"id echoed", "GET", "/details/42", 200, book(42), bookKeys},
		{"negative id", "GET", "/details/-3", 200, book(-3), bookKeys},
		{"leading zeros", "GET", "/details/007", 200, book(7), bookKeys},
		{"letters", "GET", "/details/abc", 400, map[string]any{"error": "please provide numeric product id"}, []string{"error"}},
		{"decimal", "GET", "/details/1.5", 400, map[string]any{"error": "please provide numeric product id"}, []string{"error"}},
		{"too large", "GET", "/details/99999999999999999999", 400, map[string]any{"error": "please provide numeric product id"}, []string{"error"}},
		{"no id", "GET", "/details/", 404, nil, nil},
		{"unknown route", "GET", "/nope", 404, nil, nil},
		{"wrong method", "POST", "/details/0", 405, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, srv, tt.method, tt.path)
			assert.Equal(t, tt.status, status)
			if tt.want == nil {
				return
			}
			assert.Equal(t, "application/json", h.Get("Content-Type"))
			var got map[string]any
			require.NoError(t, json.Unmarshal(body, &got), "body %s", body)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantKeys, keys(t, body))
		})
	}
}

func TestExactBody(t *testing.T) {
	srv := httptest.NewServer(details.New())
	defer srv.Close()
	_, _, body := get(t, srv, "GET", "/details/0")
	assert.Equal(t, `{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}`, string(body))
	_, _, body = get(t, srv, "GET", "/health")
	assert.Equal(t, `{"status":"Details is healthy"}`, string(body))
}

func TestFaults(t *testing.T) {
	var sw faults.Switch
	srv := httptest.NewServer(details.New(details.WithFaults(&sw)))
	defer srv.Close()

	require.NoError(t, sw.Set(faults.Fault{Abort: http.StatusServiceUnavailable}))
	status, _, _ := get(t, srv, "GET", "/details/0")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	status, _, _ = get(t, srv, "GET", "/health")
	assert.Equal(t, http.StatusOK, status, "health is not subject to faults")

	const delay = 100 * time.Millisecond
	require.NoError(t, sw.Set(faults.Fault{Delay: delay}))
	start := time.Now()
	status, _, _ = get(t, srv, "GET", "/details/0")
	assert.Equal(t, http.StatusOK, status)
	assert.GreaterOrEqual(t, time.Since(start), delay)

	sw.Off()
	status, _, _ = get(t, srv, "GET", "/details/0")
	assert.Equal(t, http.StatusOK, status)
}
