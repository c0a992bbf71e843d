package ingress_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/internal/metrictest"
)

// reloads collects the Watcher's reports.
type reloads chan error

func (c reloads) hook(_ *ingress.Rules, err error) { c <- err }

// next waits for the next report.
func (c reloads) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no reload reported within 5s")
		return nil
	}
}

// writeAtomic replaces path the way editors and tools that care do: a new
// file renamed over the old one.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// versioned returns a rule file of n rules named after version v, all
// assigning lane; rule i matches header x-n: i.
func versioned(v, lane string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "default: %s\nrules:\n", lane)
	for i := range n {
		fmt.Fprintf(&b, "  - name: %s-%d\n    lane: %s\n    match: {header: {x-n: \"%d\"}}\n", v, i, lane, i)
	}
	return b.String()
}

// TestWatchReloadUnderLoad replaces the rule file while clients keep
// sending requests: the new rules apply within a second at the default
// interval, no request fails, and every decision comes whole from one
// version (v1 rules assign gray, v2 rules blue).
func TestWatchReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomic(t, path, versioned("v1", "gray", 20))
	rep := make(reloads, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := ingress.Watch(ctx, path, ingress.WithOnReload(rep.hook))
	require.NoError(t, err)
	defer w.Close()

	srv := httptest.NewServer(ingress.Middleware(w)(echo))
	defer srv.Close()
	client := newClient(t)

	var (
		stop     atomic.Bool
		sawV2    = make(chan time.Time, 1)
		requests atomic.Int64
		wg       sync.WaitGroup
		failures = make(chan error, 16)
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				req.Header.Set("X-N", fmt.Sprint((i*4+g)%25)) // 20 rules, and 5 values no rule matches
				resp, err := client.Do(req)
				if err != nil {
					failures <- err
					return
				}
				var s seen
				if resp.StatusCode != http.StatusOK {
					failures <- fmt.Errorf("status %d", resp.StatusCode)
				} else if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
					failures <- err
				}
				_ = resp.Body.Close()
				requests.Add(1)
				v1 := s.Tag == "gray" && (s.Rule == "" || strings.HasPrefix(s.Rule, "v1-"))
				v2 := s.Tag == "blue" && (s.Rule == "" || strings.HasPrefix(s.Rule, "v2-"))
				if !v1 && !v2 {
					failures <- fmt.Errorf("torn decision: rule %q, tag %q", s.Rule, s.Tag)
					return
				}
				if v2 {
					select {
					case sawV2 <- time.Now():
					default:
					}
				}
			}
		}()
	}

	require.Eventually(t, func() bool { return requests.Load() > 200 }, 5*time.Second, time.Millisecond, "load started")
	start := time.Now()
	writeAtomic(t, path, versioned("v2", "blue", 20))
	require.NoError(t, rep.next(t))
	var first time.Time
	select {
	case first = <-sawV2:
	case <-time.After(5 * time.Second):
		t.Fatal("no request saw the new rules")
	}
	assert.Less(t, first.Sub(start), time.Second, "the new rules apply within a second")
	before := requests.Load()
	require.Eventually(t, func() bool { return requests.Load() > before+200 }, 5*time.Second, time.Millisecond, "load went on")
	stop.Store(true)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	assert.Equal(t, "v2-3", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"3"}})).RuleName)
}

// TestWatchKeepsRulesOnBadFile writes an invalid file: it is rejected with
// a message naming the line and field, the old rules stay, and a fixed file
// applies.
func TestWatchKeepsRulesOnBadFile(t *testing.T) {
	mp, reader := newMeter(t)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomic(t, path, versioned("v1", "gray", 3))
	rep := make(reloads, 4)
	var logs syncBuffer
	w, err := ingress.Watch(context.Background(), path, ingress.WithOnReload(rep.hook), ingress.WithInterval(20*time.Millisecond),
		ingress.WithMeterProvider(mp), ingress.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	defer w.Close()

	writeAtomic(t, path, "rules:\n  - name: broken\n    lane: blue\n    match:\n      header:\n        x-n: {regex: \"(1\"}\n")
	err = rep.next(t)
	require.Error(t, err)
	assert.Equal(t, path+":6: rules[0].match.header.x-n.regex: missing closing ): `(1`", err.Error())
	var fe *ingress.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, 6, fe.Line)
	assert.Equal(t, "v1-1", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"1"}})).RuleName, "old rules kept")
	assert.Contains(t, logs.String(), "graylane: rule file rejected, previous rules kept")

	writeAtomic(t, path, versioned("v2", "blue", 3))
	require.NoError(t, rep.next(t))
	assert.Equal(t, "v2-1", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"1"}})).RuleName)
	assert.Equal(t, map[string]int64{"ok": 1, "error": 1}, metrictest.Counts(t, reader, ingress.ReloadMetric, ingress.AttrResult))
	assert.Contains(t, logs.String(), "graylane: rule file applied")
}

// TestWatchConfigMapSwap updates the file the way Kubernetes updates a
// ConfigMap volume: the file is a symbolic link through "..data", which is
// swapped to a new directory.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, data string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "rules.yaml"), []byte(data), 0o600))
		require.NoError(t, os.Symlink(name, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	version("..2024_01_01", versioned("v1", "gray", 2))
	path := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "rules.yaml"), path))

	rep := make(reloads, 4)
	w, err := ingress.Watch(context.Background(), path, ingress.WithOnReload(rep.hook), ingress.WithInterval(20*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, "v1-0", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"0"}})).RuleName)

	version("..2024_01_02", versioned("v2", "blue", 2))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2024_01_01")))
	require.NoError(t, rep.next(t))
	assert.Equal(t, "v2-0", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"0"}})).RuleName)
}

// TestWatchSameSizeSameTime changes the content but not the size nor the
// modification time: the content hash still catches it while the time is
// too recent to trust.
func TestWatchSameSizeSameTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	when := time.Now().Add(time.Minute) // recent enough to distrust, whatever the test's speed
	write := func(data string) {
		require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
		require.NoError(t, os.Chtimes(path, when, when))
	}
	write(versioned("v1", "gray", 2))
	rep := make(reloads, 4)
	w, err := ingress.Watch(context.Background(), path, ingress.WithOnReload(rep.hook), ingress.WithInterval(20*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()

	write(versioned("v2", "gray", 2))
	require.NoError(t, rep.next(t))
	assert.Equal(t, "v2-0", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"0"}})).RuleName)
}

func TestWatchMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomic(t, path, versioned("v1", "gray", 1))
	rep := make(reloads, 4)
	w, err := ingress.Watch(context.Background(), path, ingress.WithOnReload(rep.hook), ingress.WithInterval(20*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()

	require.NoError(t, os.Remove(path))
	err = rep.next(t)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Equal(t, "v1-0", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"0"}})).RuleName, "old rules kept")

	writeAtomic(t, path, versioned("v2", "gray", 1))
	require.NoError(t, rep.next(t))
	assert.Equal(t, "v2-0", w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"0"}})).RuleName)
}

func TestWatchFirstLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := ingress.Watch(context.Background(), filepath.Join(dir, "none.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(dir, "bad.yaml")
	writeAtomic(t, bad, "rules: [{name: a}]\n")
	_, err = ingress.Watch(context.Background(), bad)
	assert.EqualError(t, err, bad+":1: rules[0].lane: missing; every rule assigns a lane")
}

// TestWatchStops checks that cancelling the context ends the Watcher's
// goroutine, and that Close may be called any number of times.
func TestWatchStops(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomic(t, path, versioned("v1", "gray", 1))

	ctx, cancel := context.WithCancel(context.Background())
	w, err := ingress.Watch(ctx, path, ingress.WithInterval(time.Millisecond))
	require.NoError(t, err)
	cancel()
	goleak.VerifyNone(t, ignore)
	assert.NoError(t, w.Close())
	assert.NotNil(t, w.Rules(), "rules stay available after Close")

	w, err = ingress.Watch(context.Background(), path)
	require.NoError(t, err)
	assert.NoError(t, w.Close())
	assert.NoError(t, w.Close())
	goleak.VerifyNone(t, ignore)
}
