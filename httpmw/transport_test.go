package httpmw_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// recorder is a RoundTripper that keeps the request it was given.
type recorder struct {
	got    *http.Request
	closed int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = req
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

func (r *recorder) CloseIdleConnections() { r.closed++ }

func grayCtx() context.Context {
	return tag.NewContext(context.Background(), tag.MustParse("gray"))
}

func TestTransportInjectsWithoutTouchingTheCaller(t *testing.T) {
	rec := &recorder{}
	tr := httpmw.NewTransport(rec, httpmw.WithPropagator(newProp(t)))

	req, err := http.NewRequestWithContext(grayCtx(), http.MethodGet, "http://svc/x", nil)
	require.NoError(t, err)
	req.Header["Accept"] = make([]string, 1, 4) // spare capacity: appends must not reach it
	req.Header["Accept"][0] = "text/plain"
	req.Header.Set("X-Traffic-Tag", "v3")
	before := req.Header.Clone()

	_, err = tr.RoundTrip(req)
	require.NoError(t, err)
	require.NotSame(t, req, rec.got, "a changed request is a copy")
	assert.Equal(t, "gray", rec.got.Header.Get("X-Traffic-Tag"))
	assert.Equal(t, []string{"gray"}, rec.got.Header["X-Traffic-Tag"], "replaced, not appended")
	assert.Equal(t, before, req.Header, "caller's header untouched")
	assert.Equal(t, req.URL, rec.got.URL)
	assert.Equal(t, req.Context(), rec.got.Context())

	rec.got.Header.Add("Accept", "text/html")
	assert.Equal(t, []string{"text/plain"}, req.Header["Accept"], "appending to the copy does not write into the caller's array")
	assert.Equal(t, "text/plain", req.Header["Accept"][:2][0])
	assert.Empty(t, req.Header["Accept"][:2][1])
}

func TestTransportPassesThroughWhenNothingChanges(t *testing.T) {
	rec := &recorder{}
	tr := httpmw.NewTransport(rec, httpmw.WithPropagator(newProp(t)))

	untagged, err := http.NewRequest(http.MethodGet, "http://svc/x", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(untagged)
	require.NoError(t, err)
	assert.Same(t, untagged, rec.got, "no tag: the request itself")
	assert.Empty(t, rec.got.Header)

	same, err := http.NewRequestWithContext(grayCtx(), http.MethodGet, "http://svc/x", nil)
	require.NoError(t, err)
	same.Header.Set("X-Traffic-Tag", "gray")
	_, err = tr.RoundTrip(same)
	require.NoError(t, err)
	assert.Same(t, same, rec.got, "header already right: no copy")

	nilHeader := &http.Request{Method: "GET", URL: same.URL}
	nilHeader = nilHeader.WithContext(grayCtx())
	nilHeader.Header = nil
	_, err = tr.RoundTrip(nilHeader)
	require.NoError(t, err)
	assert.Equal(t, "gray", rec.got.Header.Get("X-Traffic-Tag"))
	assert.Nil(t, nilHeader.Header)
}

func TestTransportBaggageInjection(t *testing.T) {
	rec := &recorder{}
	tr := httpmw.NewTransport(rec, httpmw.WithPropagator(newProp(t, propagation.WithBaggageInjection())))
	req, err := http.NewRequestWithContext(grayCtx(), http.MethodGet, "http://svc/x", nil)
	require.NoError(t, err)
	req.Header.Set("Baggage", "user=alice")
	_, err = tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "user=alice,traffic-tag=gray", rec.got.Header.Get("Baggage"))
	assert.Equal(t, "user=alice", req.Header.Get("Baggage"))
}

func TestTransportCloseIdleConnections(t *testing.T) {
	rec := &recorder{}
	client := &http.Client{Transport: httpmw.NewTransport(rec, httpmw.WithPropagator(newProp(t)))}
	client.CloseIdleConnections()
	assert.Equal(t, 1, rec.closed)

	// A base without the method is fine too.
	httpmw.NewTransport(roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") }),
		httpmw.WithPropagator(newProp(t))).CloseIdleConnections()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportOverLoopback(t *testing.T) {
	srv := httptest.NewServer(httpmw.NewHandler(echoTag, httpmw.WithPropagator(newProp(t))))
	defer srv.Close()
	tr := httpmw.NewTransport(nil, httpmw.WithPropagator(newProp(t)))
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()

	for ctx, want := range map[context.Context]string{grayCtx(): "gray", context.Background(): "-"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, want, string(b))
	}
}
