package registry

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
)

// Latest holds the latest instance set of one service and hands it to any
// number of Watchers. It is the part every registry shares: the registry
// reads or follows its source and calls Publish; its Watch returns
// l.Watch(...). A Watcher holds no queue, only the version it last
// returned, so a slow one skips the sets in between and never misses the
// last; publishing never blocks on a Watcher.
//
// The zero Latest has no set yet: Watchers' Next waits for the first
// Publish (a registry that knows the set is empty publishes nil). It is
// safe for concurrent use.
type Latest struct {
	mu       sync.Mutex
	snap     []Instance // sorted by address, shared read-only
	version  uint64     // sets published; 0 before the first
	closed   bool
	watchers map[*latestWatcher]func(int)
}

// Publish makes insts the current set, if it differs from the current one
// (or is the first), and wakes the Watchers. It takes insts over: it sorts
// it by address, and Watchers share it from then on, read-only. It reports
// whether the set changed. After Close it does nothing.
func (l *Latest) Publish(insts []Instance) bool {
	slices.SortFunc(insts, func(a, b Instance) int { return cmp.Compare(a.Addr, b.Addr) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.version > 0 && slices.EqualFunc(l.snap, insts, Instance.Equal) {
		return false
	}
	l.snap = insts
	l.version++
	for w := range l.watchers {
		w.wake()
	}
	return true
}

// Instances returns the current set, sorted by address, and whether there
// is one yet. The slice is shared: treat it as read-only.
func (l *Latest) Instances() ([]Instance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snap, l.version > 0
}

// Watch returns a new Watcher of the set. Its first Next returns the
// current set at once if there is one. When the Watcher is closed (not by
// Latest.Close), released is called, if not nil, with the number of
// Watchers left, after the Watcher is gone and with no lock of l held: a
// registry stops following the service when it reaches 0 (checking
// Watchers again under its own lock, since a Watch may have come in
// between). After Close, Watch returns a Watcher whose Next returns
// ErrClosed.
func (l *Latest) Watch(released func(left int)) Watcher {
	w := &latestWatcher{l: l, notify: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		w.closed = true
		return w
	}
	if l.watchers == nil {
		l.watchers = map[*latestWatcher]func(int){}
	}
	l.watchers[w] = released
	if l.version > 0 {
		w.wake()
	}
	return w
}

// Watchers returns the number of open Watchers.
func (l *Latest) Watchers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.watchers)
}

// Close closes every Watcher (their Next returns ErrClosed, and their
// released functions are not called) and makes Publish and Watch do
// nothing from then on. It is idempotent.
func (l *Latest) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for w := range l.watchers {
		w.closed = true
		w.wake()
	}
	clear(l.watchers)
}

type latestWatcher struct {
	l         *Latest
	notify    chan struct{} // capacity 1
	delivered uint64        // version last returned; guarded by l.mu
	closed    bool          // guarded by l.mu
}

func (w *latestWatcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default: // already signalled; Next reads the latest set anyway
	}
}

// Next implements Watcher. It may be called from several goroutines; each
// set goes to one of them.
func (w *latestWatcher) Next(ctx context.Context) ([]Instance, error) {
	l := w.l
	for {
		l.mu.Lock()
		switch {
		case w.closed:
			l.mu.Unlock()
			return nil, ErrClosed
		case l.version != w.delivered:
			w.delivered = l.version
			snap := l.snap
			l.mu.Unlock()
			return snap, nil
		}
		l.mu.Unlock()
		select {
		case <-w.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements Watcher. It is idempotent.
func (w *latestWatcher) Close() error {
	l := w.l
	l.mu.Lock()
	if w.closed {
		l.mu.Unlock()
		return nil
	}
	w.closed = true
	w.wake()
	released, mine := l.watchers[w]
	delete(l.watchers, w)
	left := len(l.watchers)
	l.mu.Unlock()
	if mine && released != nil {
		released(left)
	}
	return nil
}

// Equal reports whether a and b are the same in every field, metadata
// included.
func (i Instance) Equal(b Instance) bool {
	return i.Service == b.Service && i.Addr == b.Addr && i.Name == b.Name && i.Tag == b.Tag &&
		i.Weight == b.Weight && i.Health == b.Health && maps.Equal(i.Metadata, b.Metadata)
}
