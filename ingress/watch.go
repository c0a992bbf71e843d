package ingress

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Watcher is a Source that follows a rule file: it polls the file and, when
// its content changes, parses it and swaps the new rules in atomically. A
// request in flight keeps the rules it started with; the next one gets the
// new ones. A file that does not parse is rejected and the rules in force
// stay, so a bad edit never takes the gateway down; the rejection is
// reported (WithOnReload, the graylane.ingress.reload counter with
// result="error", and the log at error level) once per distinct content.
// A missing or unreadable file is reported the same way, once per error.
//
// Changes are found by polling, every 250ms by default (WithInterval): a
// stat of the path, and a read and SHA-256 of the content when the file's
// identity, size or modification time changed (or when the modification
// time is too recent to rule out a change within its granularity). The
// stat follows symbolic links, so editors that write a new file and rename
// it over the old one and Kubernetes ConfigMap volumes, which swap a
// symbolic link, are followed without any platform-specific notification.
// Write the file atomically (write elsewhere, then rename): a file read
// half-written may parse as a valid, shorter rule set.
//
// A Watcher is safe for concurrent use. Close it, or cancel the context
// given to Watch, to stop its goroutine.
type Watcher struct {
	path     string
	cur      atomic.Pointer[Rules]
	interval time.Duration
	onReload func(*Rules, error)
	logger   *slog.Logger
	counter  metric.Int64Counter
	okOpts   []metric.AddOption
	errOpts  []metric.AddOption

	// State of the polling goroutine.
	last     os.FileInfo       // at the last read; nil to force a read
	lastRead time.Time         // when it was read
	lastSum  [sha256.Size]byte // of the last content applied or rejected
	lastErr  string            // the last read error reported

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Watch loads the rule file at path, returning an error if it cannot be
// read or parsed, and then watches it until ctx is done or Close is called.
// The file's format and schema are those of Parse; error messages name it
// as path.
func Watch(ctx context.Context, path string, opts ...WatchOption) (*Watcher, error) {
	c := watchConfig{interval: DefaultInterval}
	for _, o := range opts {
		o.applyWatch(&c)
	}
	if c.interval < 10*time.Millisecond {
		c.interval = 10 * time.Millisecond
	}
	if c.meter == nil {
		c.meter = otel.GetMeterProvider()
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	w := &Watcher{
		path:     path,
		interval: c.interval,
		onReload: c.onReload,
		logger:   c.logger,
		okOpts:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrResult.String("ok")))},
		errOpts:  []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrResult.String("error")))},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if ctr, err := c.meter.Meter(scopeName).Int64Counter(ReloadMetric,
		metric.WithDescription("Reloads of the gateway's rule file, by result."),
		metric.WithUnit("{reload}")); err == nil {
		w.counter = ctr
	}

	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	data, readAt, err := w.read()
	if err != nil {
		return nil, err
	}
	rs, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	w.cur.Store(rs)
	w.last, w.lastRead, w.lastSum = fi, readAt, sha256.Sum256(data)

	go w.run(ctx)
	return w, nil
}

// Rules returns the rules in force. It never returns nil.
func (w *Watcher) Rules() *Rules { return w.cur.Load() }

// Close stops watching and waits for the Watcher's goroutine to end. The
// rules in force stay available. It always returns nil.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-t.C:
			w.check(ctx)
		}
	}
}

// check looks at the file once and applies it if its content changed.
func (w *Watcher) check(ctx context.Context) {
	fi, err := os.Stat(w.path)
	if err != nil {
		w.readFailed(ctx, err)
		return
	}
	if w.last != nil && w.unchanged(fi) {
		return
	}
	data, readAt, err := w.read()
	if err != nil {
		w.readFailed(ctx, err)
		return
	}
	w.last, w.lastRead, w.lastErr = fi, readAt, ""
	sum := sha256.Sum256(data)
	if sum == w.lastSum {
		return // applied or rejected already
	}
	w.lastSum = sum
	rs, err := Parse(w.path, data)
	if err != nil {
		w.report(ctx, nil, err)
		return
	}
	w.cur.Store(rs)
	w.report(ctx, rs, nil)
}

// unchanged reports whether fi shows the file as it was at the last read,
// with a modification time old enough to trust.
func (w *Watcher) unchanged(fi os.FileInfo) bool {
	if !os.SameFile(fi, w.last) || fi.Size() != w.last.Size() || !fi.ModTime().Equal(w.last.ModTime()) {
		return false
	}
	// A change within the timestamp granularity of the file system leaves
	// the modification time as it was: re-read while the last read was
	// close to the modification.
	return w.lastRead.Sub(fi.ModTime()) > 2*time.Second
}

func (w *Watcher) read() ([]byte, time.Time, error) {
	now := time.Now()
	data, err := readFile(w.path)
	return data, now, err
}

// readFailed reports an error reading the file, once until the error
// changes or the file is read again.
func (w *Watcher) readFailed(ctx context.Context, err error) {
	w.last = nil
	if err.Error() == w.lastErr {
		return
	}
	w.lastErr = err.Error()
	w.report(ctx, nil, err)
}

func (w *Watcher) report(ctx context.Context, rs *Rules, err error) {
	if err != nil {
		if w.counter != nil {
			w.counter.Add(ctx, 1, w.errOpts...)
		}
		w.logger.LogAttrs(ctx, slog.LevelError, "graylane: rule file rejected, previous rules kept",
			slog.String("file", w.path), slog.String("error", err.Error()))
	} else {
		if w.counter != nil {
			w.counter.Add(ctx, 1, w.okOpts...)
		}
		w.logger.LogAttrs(ctx, slog.LevelInfo, "graylane: rule file applied",
			slog.String("file", w.path), slog.Int("rules", rs.Len()), slog.String("digest", rs.Digest()))
	}
	if w.onReload != nil {
		w.onReload(rs, err)
	}
}
