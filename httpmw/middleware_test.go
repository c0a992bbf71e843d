package httpmw_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// echoTag answers with the tag found in the request context, or "-".
var echoTag = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	t, ok := tag.FromContext(r.Context())
	if !ok {
		fmt.Fprint(w, "-")
		return
	}
	fmt.Fprint(w, t)
})

func newProp(t testing.TB, opts ...propagation.Option) *propagation.Propagator {
	t.Helper()
	p, err := propagation.New(append([]propagation.Option{propagation.WithOwnTag("")}, opts...)...)
	require.NoError(t, err)
	return p
}

func get(t *testing.T, url string, h http.Header) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMiddlewareSources(t *testing.T) {
	plain := httptest.NewServer(httpmw.NewHandler(echoTag, httpmw.WithPropagator(newProp(t))))
	defer plain.Close()
	own := httptest.NewServer(httpmw.NewHandler(echoTag, httpmw.WithPropagator(newProp(t, propagation.WithOwnTag("gray")))))
	defer own.Close()
	defer http.DefaultClient.CloseIdleConnections()

	tests := []struct {
		name string
		srv  *httptest.Server
		h    http.Header
		want string
	}{
		{"untagged", plain, nil, "-"},
		{"header", plain, http.Header{"X-Traffic-Tag": {"gray"}}, "gray"},
		{"baggage", plain, http.Header{"Baggage": {"a=b, traffic-tag=v3"}}, "v3"},
		{"header wins", plain, http.Header{"X-Traffic-Tag": {"gray"}, "Baggage": {"traffic-tag=v3"}}, "gray"},
		{"invalid is absent", plain, http.Header{"X-Traffic-Tag": {"<script>"}}, "-"},
		{"own tag default", own, nil, "gray"},
		{"request tag beats own tag", own, http.Header{"X-Traffic-Tag": {"v3"}}, "v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, get(t, tt.srv.URL, tt.h))
		})
	}
}

func TestMiddlewareWithChi(t *testing.T) {
	r := chi.NewRouter()
	r.Use(httpmw.Middleware(httpmw.WithPropagator(newProp(t))))
	r.Get("/books/{id}", func(w http.ResponseWriter, r *http.Request) {
		tg, _ := tag.FromContext(r.Context())
		fmt.Fprintf(w, "%s:%s", chi.URLParam(r, "id"), tg)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	assert.Equal(t, "7:gray", get(t, srv.URL+"/books/7", http.Header{"X-Traffic-Tag": {"gray"}}))
}

// TestMiddlewareBadInput sends hostile requests over a raw connection, so
// that nothing on the client side cleans them up: every one is served, the
// tag is absent or chosen per the documented rule, and rejections are
// counted.
func TestMiddlewareBadInput(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	p := newProp(t, propagation.WithMeterProvider(mp))
	srv := httptest.NewServer(httpmw.NewHandler(echoTag, httpmw.WithPropagator(p)))
	defer srv.Close()

	bigBag := "traffic-tag=gray," + strings.Repeat("k=v,", 2100)
	tests := []struct {
		name     string
		headers  string
		want     string
		rejected int64
	}{
		{"upper-case name", "X-TRAFFIC-TAG: gray\r\n", "gray", 0},
		{"lower-case name", "x-traffic-tag: gray\r\n", "gray", 0},
		{"mixed-case name", "x-TrAfFiC-tAg: gray\r\n", "gray", 0},
		{"invalid characters", "X-Traffic-Tag: gr@y\r\n", "-", 1},
		{"64 characters", "X-Traffic-Tag: " + strings.Repeat("g", 64) + "\r\n", "-", 1},
		{"empty", "X-Traffic-Tag: \r\n", "-", 1},
		{"two different", "X-Traffic-Tag: gray\r\nx-traffic-tag: v3\r\n", "-", 1},
		{"two equal", "X-Traffic-Tag: gray\r\nx-traffic-tag: gray\r\n", "gray", 0},
		{"non-UTF-8", "X-Traffic-Tag: gr\xe9y\r\n", "-", 1},
		{"malformed baggage", "Baggage: ;;;==,,traffic-tag\r\n", "-", 0},
		{"percent-encoded baggage", "Baggage: traffic-tag=%67ray\r\n", "gray", 0},
		{"oversized baggage", "Baggage: " + bigBag + "\r\n", "-", 1},
	}
	want := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawGet(t, srv.Listener.Addr().String(), tt.headers)
			assert.Equal(t, 200, status)
			assert.Equal(t, tt.want, body)
			want += tt.rejected
			assert.Equal(t, want, countRejected(t, reader))
		})
	}
}

func rawGet(t *testing.T, addr, headers string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"+headers+"\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func countRejected(t *testing.T, r *sdkmetric.ManualReader) int64 {
	t.Helper()
	return metrictest.Counts(t, r, propagation.RejectedMetric)[""]
}

func TestMiddlewareKeepsOuterTag(t *testing.T) {
	outer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(tag.NewContext(r.Context(), tag.MustParse("v3"))))
		})
	}
	h := outer(httpmw.NewHandler(echoTag, httpmw.WithPropagator(newProp(t))))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, "v3", rec.Body.String())

	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Traffic-Tag", "gray")
	h.ServeHTTP(rec, req)
	assert.Equal(t, "gray", rec.Body.String(), "the request's own tag wins")
}

func TestInvalidEnvPanicsAtConstruction(t *testing.T) {
	t.Setenv(propagation.OwnTagEnv, "not valid")
	assert.PanicsWithValue(t,
		`httpmw: propagation: GRAYLANE_TAG: invalid tag: "not valid" has ' ' at offset 3; allowed are letters, digits, '.', '_' and '-'`,
		func() { httpmw.Middleware() })
	assert.Panics(t, func() { httpmw.NewTransport(nil) })
}
