package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
)

// The JSON the graylane command prints, as far as these tests read it.
type (
	cmdLanes struct {
		Services []struct {
			Service string    `json:"service"`
			Lanes   []cmdLane `json:"lanes"`
		} `json:"services"`
	}
	cmdLane struct {
		Lane      string        `json:"lane"`
		Ready     int           `json:"ready"`
		Total     int           `json:"total"`
		Instances []cmdInstance `json:"instances"`
	}
	cmdInstance struct {
		Name string `json:"name"`
	}
	cmdExplain struct {
		Lane      string        `json:"lane"`
		Reason    string        `json:"reason"`
		Instances []cmdInstance `json:"instances"`
		Error     string        `json:"error"`
	}
)

// graylaneCmd is the graylane command, built from the workspace, pointed
// at one registry.
type graylaneCmd struct {
	t        *testing.T
	bin      string
	registry string
}

func buildGraylane(t *testing.T, registry string) *graylaneCmd {
	bin := filepath.Join(t.TempDir(), "graylane")
	build := exec.Command("go", "build", "-o", bin, "github.com/graylane/graylane/cmd/graylane")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building the graylane command")
	return &graylaneCmd{t: t, bin: bin, registry: registry}
}

// run runs a subcommand with --registry and -o json, and returns its exit
// status and output.
func (g *graylaneCmd) run(args ...string) (int, []byte) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, append(args, "--registry", g.registry, "-o", "json")...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out
	}
	require.NoError(g.t, err)
	return 0, out
}

// expectedLanes returns, from the System's own account, service -> lane
// -> the names of its instances.
func expectedLanes(sys *app.System) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, d := range sys.Deployments() {
		for _, in := range d.Instances {
			if out[d.Service] == nil {
				out[d.Service] = map[string][]string{}
			}
			out[d.Service][d.Lane] = append(out[d.Service][d.Lane], in.Name)
		}
	}
	return out
}

// shownLanes reads the same from a lanes matrix.
func shownLanes(t *testing.T, b []byte, allReady bool) map[string]map[string][]string {
	var v cmdLanes
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	out := map[string]map[string][]string{}
	for _, s := range v.Services {
		out[s.Service] = map[string][]string{}
		for _, l := range s.Lanes {
			if allReady {
				assert.Equal(t, l.Total, l.Ready, "%s %s: every instance of the demo is serving", s.Service, l.Lane)
			}
			for _, in := range l.Instances {
				out[s.Service][l.Lane] = append(out[s.Service][l.Lane], in.Name)
			}
			slices.Sort(out[s.Service][l.Lane])
		}
	}
	return out
}

func sortedLanes(m map[string]map[string][]string) map[string]map[string][]string {
	for _, lanes := range m {
		for _, names := range lanes {
			slices.Sort(names)
		}
	}
	return m
}

// TestGraylaneCommand runs the demo on an embedded etcd, as
// "-registry embedded-etcd" does, and the graylane command against it:
// lanes shows every deployment's lane and instance count, and --watch
// shows a scaling done on the admin page within a second; explain agrees,
// row by row of the walkthrough, with where the gray requests really go.
func TestGraylaneCommand(t *testing.T) {
	etcdAddr := etcdtest.FreeAddr(t)
	reg, closeReg, err := app.OpenRegistry(app.RegistryConfig{
		Spec: "embedded-etcd", EtcdClientAddr: etcdAddr, EtcdPeerAddr: etcdtest.FreeAddr(t), EtcdDir: t.TempDir(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { closeReg() }) // after the System's own cleanup
	sys := startSystem(t, app.Config{Registry: reg})
	g := buildGraylane(t, "etcd://"+etcdAddr)

	code, out := g.run("lanes")
	require.Equal(t, 0, code)
	assert.Equal(t, sortedLanes(expectedLanes(sys)), shownLanes(t, out, true), "every deployment's lane and instances")

	t.Run("watch while the admin page scales", func(t *testing.T) {
		w := g.watch(t)
		w.await(t, defaultTestTimeout, func(m map[string]map[string][]string) bool {
			return len(m["reviews"]["prod"]) == 1
		})
		for _, step := range []struct {
			deployment string
			replicas   int
		}{{"reviews-v2", 2}, {"ratings-v2", 1}, {"reviews-v2", 1}, {"ratings-v2", 0}, {"reviews-v2", 0}} {
			resp, err := http.Post(sys.AdminURL()+"/api/deployments/"+step.deployment+"/scale?replicas="+itoa(step.replicas), "", nil)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			scaled := time.Now()
			want := sortedLanes(expectedLanes(sys))
			w.await(t, time.Second, func(m map[string]map[string][]string) bool { return assert.ObjectsAreEqual(want, m) })
			t.Logf("%s=%d shown after %v", step.deployment, step.replicas, time.Since(scaled))
		}
	})

	t.Run("explain agrees with the walkthrough's calls", func(t *testing.T) {
		client := newClient(t)
		base := sys.GatewayURL() + "/productpage"
		request := func(lane string) func() page {
			return func() page {
				h := http.Header{}
				if lane != "" {
					h.Set("X-Traffic-Tag", lane)
				}
				return fetch(t, client, base, h)
			}
		}
		strictPolicy := filepath.Join(t.TempDir(), "strict.json")
		require.NoError(t, os.WriteFile(strictPolicy, []byte(`{"lanes": {"gray": {"mode": "strict"}}}`), 0o644))

		for _, row := range []struct {
			name   string
			setup  func()
			lane   string
			policy string
			ready  func(page) bool
		}{
			{name: "untagged", lane: ""},
			{name: "gray, nothing gray running", lane: "gray"},
			{name: "gray, reviews-v2 up", lane: "gray", setup: func() { scale(t, sys, "reviews-v2", 1) },
				ready: func(p page) bool { return strings.HasPrefix(p.reviewsPod(), "reviews-v2-") }},
			{name: "gray, ratings-v2 up", lane: "gray", setup: func() { scale(t, sys, "ratings-v2", 1) },
				ready: func(p page) bool { return len(p.hops) == 5 && strings.HasPrefix(p.hops[4].Instance, "ratings-v2-") }},
			{name: "gray, productpage-v2 up", lane: "gray", setup: func() { scale(t, sys, "productpage-v2", 1) },
				ready: func(p page) bool { return len(p.hops) > 1 && strings.HasPrefix(p.hops[1].Instance, "productpage-v2-") }},
			{name: "v3", lane: "v3", setup: func() { scale(t, sys, "reviews-v3", 1) },
				ready: func(p page) bool { return strings.HasPrefix(p.reviewsPod(), "reviews-v3-") }},
			{name: "gray strict, reviews-v2 down", lane: "gray", policy: strictPolicy,
				setup: func() {
					require.NoError(t, sys.SetLaneMode("gray", fallback.Strict))
					scale(t, sys, "reviews-v2", 0)
				},
				ready: func(p page) bool { return slices.Contains(p.route(), "reviews failed") }},
		} {
			t.Run(row.name, func(t *testing.T) {
				if row.setup != nil {
					row.setup()
				}
				p := request(row.lane)()
				if row.ready != nil {
					p = until(t, row.name, request(row.lane), row.ready)
				}
				require.Greater(t, len(p.hops), 1, "route %v", p.route())
				for _, hop := range p.hops[1:] { // the gateway's own hop is no routing decision
					args := []string{"explain", "--service", hop.Service}
					if row.lane != "" {
						args = append(args, "--tag", row.lane)
					}
					if row.policy != "" {
						args = append(args, "--policy", row.policy)
					}
					code, out := g.run(args...)
					var e cmdExplain
					require.NoError(t, json.Unmarshal(out, &e), "%s", out)
					if hop.Error != "" {
						assert.Equal(t, 3, code, "%s: the call failed, explain says it would", hop.Service)
						assert.NotEmpty(t, e.Error)
						assert.Contains(t, hop.Error, e.Error, "%s: the same reason", hop.Service)
						continue
					}
					require.Equal(t, 0, code, "%s: %s", hop.Service, e.Error)
					assert.Equal(t, hop.Lane, e.Lane, "%s: lane", hop.Service)
					names := make([]string, len(e.Instances))
					for i, in := range e.Instances {
						names[i] = in.Name
					}
					assert.Contains(t, names, hop.Instance, "%s: instance", hop.Service)
					switch e.Reason {
					case "noinstances", "unavailable":
						assert.Equal(t, e.Reason, hop.Fallback, "%s: fallback reason", hop.Service)
					default:
						assert.Empty(t, hop.Fallback, "%s: no fallback", hop.Service)
					}
				}
			})
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// lanesWatch is graylane lanes --watch running as a process.
type lanesWatch struct {
	lines chan []byte // one matrix each
}

func (g *graylaneCmd) watch(t *testing.T) *lanesWatch {
	cmd := exec.Command(g.bin, "lanes", "--watch", "--registry", g.registry, "-o", "json")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	w := &lanesWatch{lines: make(chan []byte, 100)}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			w.lines <- slices.Clone(sc.Bytes())
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		for range w.lines {
		}
		assert.NoError(t, cmd.Wait(), "Ctrl-C ends the watch with status 0")
	})
	return w
}

// await waits up to d for a matrix that satisfies ok.
func (w *lanesWatch) await(t *testing.T, d time.Duration, ok func(map[string]map[string][]string) bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last map[string]map[string][]string
	for {
		select {
		case line, open := <-w.lines:
			require.True(t, open, "graylane lanes --watch ended")
			m := shownLanes(t, line, false)
			if ok(m) {
				return
			}
			last = m
		case <-timer.C:
			t.Fatalf("no matching matrix within %v; last: %v", d, last)
		}
	}
}
