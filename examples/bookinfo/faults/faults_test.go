package faults_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/faults"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFaultValidate(t *testing.T) {
	tests := []struct {
		name string
		f    faults.Fault
		ok   bool
	}{
		{"zero", faults.Fault{}, true},
		{"delay", faults.Fault{Delay: time.Second}, true},
		{"abort 503", faults.Fault{Abort: 503}, true},
		{"abort 400", faults.Fault{Abort: 400}, true},
		{"abort 599", faults.Fault{Abort: 599}, true},
		{"times", faults.Fault{Abort: 500, Times: 3}, true},
		{"negative delay", faults.Fault{Delay: -1}, false},
		{"abort 200", faults.Fault{Abort: 200}, false},
		{"abort 600", faults.Fault{Abort: 600}, false},
		{"negative times", faults.Fault{Abort: 500, Times: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s faults.Switch
			err := s.Set(tt.f)
			if tt.ok {
				require.NoError(t, err)
				if !tt.f.IsZero() {
					assert.Equal(t, tt.f, s.Fault())
				}
			} else {
				require.Error(t, err)
				assert.True(t, s.Fault().IsZero(), "an invalid fault must not be set")
			}
		})
	}
}

func TestFaultString(t *testing.T) {
	tests := []struct {
		f    faults.Fault
		want string
	}{
		{faults.Fault{}, "off"},
		{faults.Fault{Times: 3}, "off"},
		{faults.Fault{Delay: 2 * time.Second}, "delay 2s"},
		{faults.Fault{Abort: 503}, "abort 503"},
		{faults.Fault{Delay: time.Second, Abort: 503, Times: 3}, "delay 1s, abort 503, next 3"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.f.String())
	}
}

func TestNilSwitchIsOff(t *testing.T) {
	var s *faults.Switch
	assert.True(t, s.Fault().IsZero())
	assert.True(t, s.Take().IsZero())
	abort, err := s.Apply(context.Background())
	require.NoError(t, err)
	assert.Zero(t, abort)
	require.NoError(t, s.ApplyGRPC(context.Background()))
}

func TestTimesTurnsTheSwitchOff(t *testing.T) {
	var s faults.Switch
	require.NoError(t, s.Set(faults.Fault{Abort: 503, Times: 2}))
	assert.Equal(t, 503, s.Take().Abort)
	assert.Equal(t, 503, s.Take().Abort)
	assert.True(t, s.Take().IsZero())
	assert.True(t, s.Fault().IsZero())
}

func TestTimesUnderConcurrency(t *testing.T) {
	const times, callers = 50, 200
	var s faults.Switch
	require.NoError(t, s.Set(faults.Fault{Abort: 500, Times: times}))
	var hit atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if s.Take().Abort != 0 {
				hit.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, times, hit.Load())
}

func TestOff(t *testing.T) {
	var s faults.Switch
	require.NoError(t, s.Set(faults.Fault{Abort: 500}))
	s.Off()
	assert.True(t, s.Fault().IsZero())
}

func TestApplyDelays(t *testing.T) {
	const delay = 50 * time.Millisecond
	var s faults.Switch
	require.NoError(t, s.Set(faults.Fault{Delay: delay, Abort: 503}))
	start := time.Now()
	abort, err := s.Apply(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 503, abort)
	assert.GreaterOrEqual(t, time.Since(start), delay)
}

func TestApplyStopsWhenTheContextEnds(t *testing.T) {
	var s faults.Switch
	require.NoError(t, s.Set(faults.Fault{Delay: time.Hour}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Apply(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, codes.Canceled, status.Code(s.ApplyGRPC(ctx)))
}

func TestApplyGRPC(t *testing.T) {
	var s faults.Switch
	require.NoError(t, s.ApplyGRPC(context.Background()))
	require.NoError(t, s.Set(faults.Fault{Abort: 503}))
	st, ok := status.FromError(s.ApplyGRPC(context.Background()))
	require.True(t, ok)
	assert.Equal(t, codes.Unavailable, st.Code())
	assert.Equal(t, "fault injected", st.Message())
}

func TestCode(t *testing.T) {
	tests := []struct {
		status int
		want   codes.Code
	}{
		{200, codes.OK},
		{400, codes.InvalidArgument},
		{401, codes.Unauthenticated},
		{403, codes.PermissionDenied},
		{404, codes.NotFound},
		{409, codes.Aborted},
		{418, codes.Unknown},
		{429, codes.ResourceExhausted},
		{499, codes.Canceled},
		{500, codes.Internal},
		{501, codes.Unimplemented},
		{502, codes.Unavailable},
		{503, codes.Unavailable},
		{504, codes.DeadlineExceeded},
		{599, codes.Unknown},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, faults.Code(tt.status), "status %d", tt.status)
	}
}

func TestMiddleware(t *testing.T) {
	var s faults.Switch
	srv := httptest.NewServer(faults.Middleware(&s)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "served")
	})))
	defer srv.Close()

	get := func() (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	code, body := get()
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "served", body)

	require.NoError(t, s.Set(faults.Fault{Abort: http.StatusServiceUnavailable, Times: 1}))
	code, body = get()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"error":"fault injected"}`, body)

	code, _ = get()
	assert.Equal(t, http.StatusOK, code, "the fault applied to one request only")
}

func TestMiddlewareNilSwitch(t *testing.T) {
	h := faults.Middleware(nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
}
