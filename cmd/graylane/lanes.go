package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
)

// relistEvery is how often lanes --watch asks the registry for new
// services, when it follows all of them.
const relistEvery = time.Second

func runLanes(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlagSet("lanes", "--registry REGISTRY [--service a,b] [--watch] [-o table|json]", stdout)
	rf := addRegistryFlags(fs)
	services := fs.String("service", "", "comma-separated services to show (default: every service in the registry)")
	watch := fs.Bool("watch", false, "keep running and print the matrix again on every change")
	policyPath := fs.String("policy", "", "fallback policy JSON file, for the name of the base lane (default prod)")
	out := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	only, err := splitList(*services)
	if err != nil {
		return err
	}
	policy, err := readPolicy(*policyPath)
	if err != nil {
		return err
	}
	src, err := rf.open()
	if err != nil {
		return err
	}
	defer src.Close()
	m := &matrix{base: policy.Base(), sets: map[string][]registry.Instance{}, only: only}
	p := &printer{w: stdout, json: *out == "json", watch: *watch, tty: isTerminal(stdout)}
	if !*watch {
		names := only
		if names == nil {
			lctx, cancel := context.WithTimeout(ctx, rf.timeout)
			names, err = src.Services(lctx)
			cancel()
			if err != nil {
				return rf.unreachable(lctx, err)
			}
		}
		for _, name := range names {
			insts, err := rf.snapshot(ctx, src, name)
			if err != nil {
				return err
			}
			m.sets[name] = insts
		}
		return p.print(m)
	}
	return watchLanes(ctx, rf, src, m, p)
}

// update is a new set of instances of a service.
type update struct {
	service string
	insts   []registry.Instance
}

// watchLanes follows the services and prints the matrix on every change,
// until ctx is done. Without --service it asks the registry for new
// services every relistEvery.
func watchLanes(ctx context.Context, rf *registryFlags, src source, m *matrix, p *printer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan update)
	done := make(chan struct{})
	watching := map[string]bool{}
	var running int
	follow := func(name string) error {
		if watching[name] {
			return nil
		}
		w, err := src.Watch(ctx, name)
		if err != nil {
			return usagef("service %q: %v", name, err)
		}
		watching[name] = true
		running++
		go func() {
			defer func() { done <- struct{}{} }()
			defer w.Close()
			for {
				insts, err := w.Next(ctx)
				if err != nil {
					return
				}
				select {
				case updates <- update{name, insts}:
				case <-ctx.Done():
					return
				}
			}
		}()
		return nil
	}
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-done
		}
	}()
	relist := func() error {
		lctx, cancel := context.WithTimeout(ctx, rf.timeout)
		defer cancel()
		names, err := src.Services(lctx)
		if err != nil {
			return rf.unreachable(lctx, err)
		}
		for _, name := range names {
			if err := follow(name); err != nil {
				return err
			}
		}
		return nil
	}
	var tick <-chan time.Time
	if m.only != nil {
		for _, name := range m.only {
			if err := follow(name); err != nil {
				return err
			}
		}
	} else {
		if err := relist(); err != nil {
			return err // out of reach at the start: say so
		}
		t := time.NewTicker(relistEvery)
		defer t.Stop()
		tick = t.C
	}
	// The first matrix waits for the first set of every service, within
	// the timeout.
	first := time.NewTimer(rf.timeout)
	defer first.Stop()
	for len(m.sets) < len(watching) {
		select {
		case u := <-updates:
			m.sets[u.service] = u.insts
		case <-first.C:
			return fmt.Errorf("registry %s did not answer within %v (--timeout)", rf.spec, rf.timeout)
		case <-ctx.Done():
			return nil
		}
	}
	if err := p.print(m); err != nil {
		return err
	}
	for {
		select {
		case u := <-updates:
			m.sets[u.service] = u.insts
		drain: // one print for a burst of changes
			for {
				select {
				case u := <-updates:
					m.sets[u.service] = u.insts
				default:
					break drain
				}
			}
		case <-tick:
			// New services' first sets come as updates; an outage keeps
			// the matrix as it was.
			_ = relist()
			continue
		case <-ctx.Done():
			return nil
		}
		if err := p.print(m); err != nil {
			return err
		}
	}
}

// matrix is the instances of each service.
type matrix struct {
	base string
	only []string // the services asked for, nil for all
	sets map[string][]registry.Instance
}

// lanesJSON is the JSON form of the matrix.
type lanesJSON struct {
	Lanes    []string      `json:"lanes"` // every lane, the base lane first
	Services []serviceJSON `json:"services"`
}

type serviceJSON struct {
	Service string     `json:"service"`
	Lanes   []laneJSON `json:"lanes"`
}

type laneJSON struct {
	Lane      string         `json:"lane"`
	State     string         `json:"state"` // ready or notready
	Ready     int            `json:"ready"`
	Total     int            `json:"total"`
	Instances []instanceJSON `json:"instances"`
}

type instanceJSON struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr"`
	Lane     string            `json:"lane"`
	Weight   uint32            `json:"weight"`
	Health   string            `json:"health"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func instancesJSON(base string, insts []registry.Instance) []instanceJSON {
	out := make([]instanceJSON, len(insts))
	for i, in := range insts {
		out[i] = instanceJSON{Name: in.DisplayName(), Addr: in.Addr, Lane: in.Lane(base), Weight: in.EffectiveWeight(), Health: in.Health.String(), Metadata: in.Metadata}
	}
	return out
}

// view returns the matrix as JSON values: the services asked for, or
// every service with instances, sorted, and every lane, the base lane
// first.
func (m *matrix) view() lanesJSON {
	names := m.only
	if names == nil {
		for name, insts := range m.sets {
			if len(insts) > 0 {
				names = append(names, name)
			}
		}
		slices.Sort(names)
	}
	v := lanesJSON{Lanes: []string{}, Services: []serviceJSON{}}
	seen := map[string]bool{}
	for _, name := range names {
		s := serviceJSON{Service: name, Lanes: []laneJSON{}}
		for _, l := range routing.Lanes(m.base, m.sets[name]) {
			s.Lanes = append(s.Lanes, laneJSON{Lane: l.Lane, State: l.State.String(), Ready: l.Ready, Total: len(l.Instances), Instances: instancesJSON(m.base, l.Instances)})
			seen[l.Lane] = true
		}
		v.Services = append(v.Services, s)
	}
	delete(seen, m.base)
	v.Lanes = append(v.Lanes, m.base)
	v.Lanes = append(v.Lanes, slices.Sorted(maps.Keys(seen))...)
	return v
}

// printer writes matrices: one JSON object per line with -o json, else a
// table; with --watch on a terminal, each table replaces the last.
type printer struct {
	w     io.Writer
	json  bool
	watch bool
	tty   bool
	n     int
}

func (p *printer) print(m *matrix) error {
	v := m.view()
	p.n++
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	var b strings.Builder
	switch {
	case p.watch && p.tty:
		b.WriteString("\x1b[H\x1b[2J") // home, clear screen
		fmt.Fprintf(&b, "graylane lanes, %s (Ctrl-C to stop)\n\n", time.Now().Format(time.TimeOnly))
	case p.watch && p.n > 1:
		b.WriteString("\n")
	}
	writeMatrix(&b, v)
	_, err := io.WriteString(p.w, b.String())
	return err
}

// writeMatrix writes the service × lane table: in each cell, how many of
// the lane's instances are ready out of how many are registered.
func writeMatrix(w io.Writer, v lanesJSON) {
	if len(v.Services) == 0 {
		fmt.Fprintln(w, "no services")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "SERVICE")
	for _, lane := range v.Lanes {
		fmt.Fprintf(tw, "\t%s", lane)
	}
	fmt.Fprintln(tw)
	for _, s := range v.Services {
		fmt.Fprint(tw, s.Service)
		for _, lane := range v.Lanes {
			cell := "-"
			for _, l := range s.Lanes {
				if l.Lane == lane {
					cell = fmt.Sprintf("%d/%d ready", l.Ready, l.Total)
				}
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
