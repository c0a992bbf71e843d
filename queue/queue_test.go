package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/queue"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

func tg(s string) tag.Tag {
	if s == "" {
		return tag.Tag{}
	}
	return tag.MustParse(s)
}

// consumerIn registers a consumer of group in lane and returns its
// registration.
func consumerIn(t *testing.T, reg registry.Registry, group, lane string) registry.Registration {
	t.Helper()
	l, err := queue.New(context.Background(), reg, group, queue.WithLane(lane))
	require.NoError(t, err)
	defer l.Close()
	r, err := l.Register(context.Background())
	require.NoError(t, err)
	return r
}

func newLanes(t *testing.T, reg registry.Registry, group, lane string, opts ...queue.Option) *queue.Lanes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	l, err := queue.New(ctx, reg, group, append([]queue.Option{queue.WithLane(lane)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

// await waits until the table of l satisfies ok.
func await(t *testing.T, l *queue.Lanes, ok func(*queue.Table) bool) *queue.Table {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		ch := l.Changed()
		if tb := l.Table(); ok(tb) {
			return tb
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("table of lane %q did not converge", l.Lane())
		}
	}
}

type want struct {
	action queue.Action
	lane   string
	reason fallback.Reason
}

func TestDecide(t *testing.T) {
	strict, err := fallback.NewPolicy(fallback.WithLaneMode("canary", fallback.Strict), fallback.WithChain("v3", "gray", "prod"))
	require.NoError(t, err)
	tests := []struct {
		name       string
		own        string
		live       []string // lanes with a consumer
		policy     *fallback.Policy
		deadLetter bool
		want       map[string]want // by message tag
	}{
		{
			name: "base, gray live", own: "", live: []string{"", "gray"},
			want: map[string]want{
				"":      {queue.Process, "prod", fallback.Untagged},
				"prod":  {queue.Process, "prod", fallback.Matched},
				"gray":  {queue.Skip, "gray", fallback.Matched},
				"v3":    {queue.Process, "prod", fallback.NoInstances},
				"other": {queue.Process, "prod", fallback.NoInstances},
			},
		},
		{
			name: "base, gray gone", own: "", live: []string{""},
			want: map[string]want{
				"":     {queue.Process, "prod", fallback.Untagged},
				"gray": {queue.Process, "prod", fallback.NoInstances},
			},
		},
		{
			name: "gray, base live", own: "gray", live: []string{"", "gray"},
			want: map[string]want{
				"":      {queue.Skip, "prod", fallback.Untagged},
				"prod":  {queue.Skip, "prod", fallback.Matched},
				"gray":  {queue.Process, "gray", fallback.Matched},
				"v3":    {queue.Skip, "prod", fallback.NoInstances},
				"other": {queue.Skip, "prod", fallback.NoInstances},
			},
		},
		{
			name: "gray before it is registered: its own lane is live to it", own: "gray", live: []string{""},
			want: map[string]want{
				"":     {queue.Skip, "prod", fallback.Untagged},
				"gray": {queue.Process, "gray", fallback.Matched},
			},
		},
		{
			name: "gray, no base consumer: untagged waits for the base lane", own: "gray", live: nil,
			want: map[string]want{
				"":     {queue.Hold, "prod", fallback.NoInstances},
				"gray": {queue.Process, "gray", fallback.Matched},
			},
		},
		{
			name: "chain v3 → gray → prod", own: "gray", live: []string{"", "gray"}, policy: strict,
			want: map[string]want{
				"v3":   {queue.Process, "gray", fallback.NoInstances},
				"gray": {queue.Process, "gray", fallback.Matched},
			},
		},
		{
			name: "base, strict lane gone: held", own: "", live: []string{""}, policy: strict,
			want: map[string]want{
				"canary": {queue.Hold, "canary", fallback.NoInstances},
				"v3":     {queue.Process, "prod", fallback.NoInstances},
			},
		},
		{
			name: "base, strict lane gone, dead letter", own: "", live: []string{""}, policy: strict, deadLetter: true,
			want: map[string]want{
				"canary": {queue.DeadLetter, "canary", fallback.NoInstances},
			},
		},
		{
			name: "gray, strict lane gone, dead letter is the base lane's job", own: "gray", live: []string{"", "gray"}, policy: strict, deadLetter: true,
			want: map[string]want{
				"canary": {queue.Hold, "canary", fallback.NoInstances},
			},
		},
		{
			name: "base, strict lane live", own: "", live: []string{"", "canary"}, policy: strict,
			want: map[string]want{
				"canary": {queue.Skip, "canary", fallback.Matched},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registry.NewMemory()
			defer reg.Close()
			for _, lane := range tt.live {
				consumerIn(t, reg, "events", lane)
			}
			opts := []queue.Option{queue.WithPolicy(tt.policy)}
			if tt.deadLetter {
				opts = append(opts, queue.WithDeadLetter())
			}
			l := newLanes(t, reg, "events", tt.own, opts...)
			tb := l.Table()
			for msg, w := range tt.want {
				r := tb.Decide(tg(msg))
				assert.Equal(t, w, want{r.Action, r.Lane, r.Reason}, "message tagged %q", msg)
			}
		})
	}
}

func TestRouteTagIsInterned(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "gray")
	l := newLanes(t, reg, "events", "")
	assert.Equal(t, "gray", l.Table().Decide(tg("gray")).Tag.String())
	assert.True(t, l.Table().Decide(tg("nolane")).Tag.IsZero(), "unknown tags are the caller's to keep")
	assert.True(t, l.Table().Decide(tag.Tag{}).Tag.IsZero())
}

func TestLanesFollowRegistry(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "")
	base := newLanes(t, reg, "events", "")
	gray := newLanes(t, reg, "events", "gray")
	assert.Equal(t, queue.Process, base.Table().Decide(tg("gray")).Action)
	_, ok := base.Table().Predecessor()
	assert.False(t, ok, "the base lane has no predecessor")
	pred, ok := gray.Table().Predecessor()
	assert.True(t, ok)
	assert.Equal(t, "prod", pred)

	r, err := gray.Register(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "gray", r.Instance().Tag.String())
	assert.Equal(t, queue.ConsumerRole, r.Instance().Metadata[queue.RoleMetadata])
	before := base.Table()
	after := await(t, base, func(tb *queue.Table) bool { return tb.Live("gray") })
	assert.Greater(t, after.Version(), before.Version())
	assert.Equal(t, queue.Skip, after.Decide(tg("gray")).Action)
	assert.Empty(t, queue.Takeovers(before, after), "a lane coming up leaves nothing to take over")

	require.NoError(t, r.Deregister(context.Background()))
	gone := await(t, base, func(tb *queue.Table) bool { return !tb.Live("gray") })
	assert.Equal(t, queue.Process, gone.Decide(tg("gray")).Action)
	ks := queue.Takeovers(after, gone)
	require.Len(t, ks, 1)
	assert.Equal(t, "gray", ks[0].From)
	assert.True(t, ks[0].Takes(tg("gray")))
	assert.False(t, ks[0].Takes(tag.Tag{}), "untagged messages were the base lane's all along")
	assert.False(t, ks[0].Takes(tg("v3")))
}

func TestRegisterNotServingIsNotLive(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "")
	r := consumerIn(t, reg, "events", "gray")
	inst := r.Instance()
	inst.Health = registry.NotServing
	require.NoError(t, r.Update(context.Background(), inst))
	base := newLanes(t, reg, "events", "")
	d := base.Table().Decide(tg("gray"))
	assert.Equal(t, want{queue.Process, "prod", fallback.Unavailable}, want{d.Action, d.Lane, d.Reason})
}

func TestTakeoversAlongChain(t *testing.T) {
	p, err := fallback.NewPolicy(fallback.WithChain("v3", "gray", "prod"))
	require.NoError(t, err)
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "")
	g := consumerIn(t, reg, "events", "gray")
	v3 := consumerIn(t, reg, "events", "v3")
	base := newLanes(t, reg, "events", "", queue.WithPolicy(p))
	gray := newLanes(t, reg, "events", "gray", queue.WithPolicy(p))

	// v3 goes: gray takes its messages over, the base lane does not.
	gBefore, bBefore := gray.Table(), base.Table()
	require.NoError(t, v3.Deregister(context.Background()))
	gAfter := await(t, gray, func(tb *queue.Table) bool { return !tb.Live("v3") })
	bAfter := await(t, base, func(tb *queue.Table) bool { return !tb.Live("v3") })
	ks := queue.Takeovers(gBefore, gAfter)
	require.Len(t, ks, 1)
	assert.Equal(t, "v3", ks[0].From)
	assert.True(t, ks[0].Takes(tg("v3")))
	assert.Empty(t, queue.Takeovers(bBefore, bAfter))

	// gray goes: the base lane takes over its messages, v3's included.
	require.NoError(t, g.Deregister(context.Background()))
	bGone := await(t, base, func(tb *queue.Table) bool { return !tb.Live("gray") })
	ks = queue.Takeovers(bAfter, bGone)
	require.Len(t, ks, 1)
	assert.Equal(t, "gray", ks[0].From)
	assert.True(t, ks[0].Takes(tg("gray")))
	assert.True(t, ks[0].Takes(tg("v3")))
	assert.False(t, ks[0].Takes(tag.Tag{}))

	// A base consumer that starts now finds gray's messages its own.
	k, ok := bGone.TakeoverFrom("gray")
	require.True(t, ok)
	assert.True(t, k.Takes(tg("gray")))
	assert.True(t, k.Takes(tg("v3")))
	_, ok = bGone.TakeoverFrom("prod")
	assert.False(t, ok, "its own lane")
}

func TestStrictLaneIsNeverTakenOver(t *testing.T) {
	p, err := fallback.NewPolicy(fallback.WithLaneMode("canary", fallback.Strict))
	require.NoError(t, err)
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "")
	c := consumerIn(t, reg, "events", "canary")
	base := newLanes(t, reg, "events", "", queue.WithPolicy(p))
	canary := newLanes(t, reg, "events", "canary", queue.WithPolicy(p))
	before := base.Table()
	require.NoError(t, c.Deregister(context.Background()))
	after := await(t, base, func(tb *queue.Table) bool { return !tb.Live("canary") })
	assert.Equal(t, queue.Hold, after.Decide(tg("canary")).Action)
	assert.Empty(t, queue.Takeovers(before, after))
	_, ok := canary.Table().Predecessor()
	assert.False(t, ok, "a strict lane starts from its own position, or the oldest message")
}

func TestDynamicPolicy(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	consumerIn(t, reg, "events", "")
	d := fallback.NewDynamic(nil)
	base := newLanes(t, reg, "events", "", queue.WithDynamicPolicy(d))
	assert.Equal(t, queue.Process, base.Table().Decide(tg("canary")).Action)
	before := base.Table()
	strict, err := fallback.NewPolicy(fallback.WithLaneMode("canary", fallback.Strict))
	require.NoError(t, err)
	d.Store(strict)
	after := await(t, base, func(tb *queue.Table) bool { return tb.Decide(tg("canary")).Action == queue.Hold })
	assert.Empty(t, queue.Takeovers(before, after))
	d.Store(nil)
	loose := await(t, base, func(tb *queue.Table) bool { return tb.Decide(tg("canary")).Action == queue.Process })
	ks := queue.Takeovers(after, loose)
	require.Len(t, ks, 1, "a strict lane turned loose: the base lane takes over what waited for it")
	assert.Equal(t, "canary", ks[0].From)
}

func TestNewErrors(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	_, err := queue.New(context.Background(), reg, "bad group")
	assert.ErrorIs(t, err, registry.ErrInvalidInstance)
	_, err = queue.New(context.Background(), reg, "events", queue.WithLane("bad lane"))
	assert.ErrorIs(t, err, tag.ErrInvalid)
	t.Setenv("GRAYLANE_TAG", "gray")
	l, err := queue.New(context.Background(), reg, "events")
	require.NoError(t, err)
	assert.Equal(t, "gray", l.Lane())
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "idempotent")
	reg.Close()
	_, err = queue.New(context.Background(), reg, "events")
	assert.ErrorIs(t, err, registry.ErrClosed)
}

func TestRegisterAddresses(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	l := newLanes(t, reg, "events", "gray", queue.WithInstance("10.0.0.1:8080", "worker-0"))
	r, err := l.Register(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "worker-0", r.Instance().DisplayName())
	_, err = l.Register(context.Background())
	assert.ErrorIs(t, err, registry.ErrDuplicate)
	other := newLanes(t, reg, "events", "gray")
	seen := map[string]bool{}
	for range 20 {
		r, err := other.Register(context.Background())
		require.NoError(t, err)
		assert.False(t, seen[r.Instance().Addr])
		seen[r.Instance().Addr] = true
	}
}

// readOnly is a registry whose instances are written by the platform (here,
// the Memory underneath), as Kubernetes' are: Register fails with
// registry.ErrReadOnly.
type readOnly struct{ *registry.Memory }

func (readOnly) Register(context.Context, registry.Instance) (registry.Registration, error) {
	return nil, fmt.Errorf("platform: %w", registry.ErrReadOnly)
}

// TestReadOnlyRegistry: on a read-only registry a consumer's Register
// succeeds doing nothing, and lanes are live as the platform lists them.
func TestReadOnlyRegistry(t *testing.T) {
	mem := registry.NewMemory()
	defer mem.Close()
	reg := readOnly{mem}
	consumerIn(t, mem, "events", "")
	base := newLanes(t, reg, "events", "")
	gray := newLanes(t, reg, "events", "gray")
	r, err := gray.Register(context.Background())
	require.NoError(t, err)
	require.NoError(t, r.Deregister(context.Background()))
	assert.Equal(t, queue.Process, base.Table().Decide(tg("gray")).Action, "not live before the platform lists it")

	pod := consumerIn(t, mem, "events", "gray") // the platform sees the gray consumer
	await(t, base, func(tb *queue.Table) bool { return tb.Live("gray") })
	require.NoError(t, pod.Deregister(context.Background()))
	await(t, base, func(tb *queue.Table) bool { return !tb.Live("gray") })
}
