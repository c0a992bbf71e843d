// Command benchreport turns the output of graylane's benchmarks (go test
// -bench . -benchmem -count N) into the table of BENCHMARKS.md: for each hot
// path, graylane beside its baseline, the ratio of their medians,
// allocations and bytes, and whether the path meets its bar. bench/run.sh
// runs it after the benchmarks; benchstat gives the statistics behind each
// comparison.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sample holds the measurements of one benchmark across runs.
type sample struct {
	ns, bytes, allocs []float64
	extra             map[string][]float64
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark lines, keyed by name without the GOMAXPROCS suffix
// and the "Benchmark" prefix.
func parse(r io.Reader) (map[string]*sample, error) {
	out := map[string]*sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		s := out[name]
		if s == nil {
			s = &sample{extra: map[string][]float64{}}
			out[name] = s
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch unit := f[i+1]; unit {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			default:
				s.extra[unit] = append(s.extra[unit], v)
			}
		}
	}
	return out, sc.Err()
}

// row is one line of the table: graylane's benchmark against a baseline,
// and the bar it must meet.
type row struct {
	path, graylane, baseline string
	// bar checks the medians; it returns a description and whether it holds.
	bar func(g, b stats) (string, bool)
}

type stats struct{ ns, bytes, allocs float64 }

func statsOf(s *sample) stats {
	return stats{median(s.ns), median(s.bytes), median(s.allocs)}
}

func ratioAtMost(x float64, allocs float64, bytes float64) func(g, b stats) (string, bool) {
	return func(g, b stats) (string, bool) {
		desc := fmt.Sprintf("≤ %.3g×", x)
		ok := g.ns <= x*b.ns
		if allocs >= 0 {
			desc += fmt.Sprintf(", ≤ %g allocs", allocs)
			ok = ok && g.allocs <= allocs
		}
		if bytes >= 0 {
			desc += fmt.Sprintf(", ≤ %g B", bytes)
			ok = ok && g.bytes <= bytes
		}
		return desc, ok
	}
}

func allocsAtMost(n float64) func(g, b stats) (string, bool) {
	return func(g, b stats) (string, bool) { return fmt.Sprintf("≤ %g allocs", n), g.allocs <= n }
}

func rows() []row {
	return []row{
		{"inbound, tag in header", "Inbound/path=header/impl=graylane", "Inbound/path=header/impl=minimal", ratioAtMost(1.2, 3, 400)},
		{"inbound, no tag", "Inbound/path=absent/impl=graylane", "Inbound/path=absent/impl=minimal", allocsAtMost(0)},
		{"inbound, tag in baggage (3 members)", "Inbound/path=baggage/impl=graylane", "Inbound/path=header/impl=minimal", allocsAtMost(4)},
		{"baggage scan vs baggage.Parse (3 members)", "ReadBaggage/members=3/impl=graylane", "ReadBaggage/members=3/impl=otel-parse", allocsAtMost(0)},
		{"baggage scan vs baggage.Parse (8 KB, 64 members)", "ReadBaggage/members=64/bytes=8K/impl=graylane", "ReadBaggage/members=64/bytes=8K/impl=otel-parse",
			func(g, b stats) (string, bool) { return "≥ 20× faster, 0 allocs", g.ns*20 <= b.ns && g.allocs == 0 }},
		{"inbound, hostile 8 KB baggage", "Inbound/path=hostile-baggage/impl=graylane", "Inbound/path=header/impl=graylane",
			func(g, b stats) (string, bool) { return "no allocs beyond the header path", g.allocs <= b.allocs }},
		{"outbound transport, tag", "Outbound/tag=yes/impl=graylane", "Outbound/tag=yes/impl=clone-set", ratioAtMost(1.1, 6, -1)},
		{"outbound transport, no tag", "Outbound/tag=no/impl=graylane", "Outbound/tag=no/impl=clone-set", allocsAtMost(0)},
		{"outbound transport, header already set", "Outbound/tag=already/impl=graylane", "Outbound/tag=no/impl=clone-set", allocsAtMost(0)},
		{"gRPC client interceptor", "ClientInterceptor/tag=yes/impl=graylane", "ClientInterceptor/tag=yes/impl=minimal", allocsAtMost(4)},
		{"gRPC server interceptor", "ServerInterceptor/tag=yes/impl=graylane", "ServerInterceptor/tag=yes/impl=minimal", allocsAtMost(3)},
		{"Pick, 3 instances, 1 lane", "Pick/instances=3/lanes=1/impl=graylane_tag", "Pick/instances=3/lanes=1/impl=round_robin", ratioAtMost(1.6, 0, -1)},
		{"Pick, 300 instances, 1 lane", "Pick/instances=300/lanes=1/impl=graylane_tag", "Pick/instances=300/lanes=1/impl=round_robin", ratioAtMost(1.6, 0, -1)},
		{"Pick, 3 instances, 3 lanes (tagged)", "Pick/instances=3/lanes=3/impl=graylane_tag", "Pick/instances=3/lanes=3/impl=round_robin", ratioAtMost(1.6, 0, -1)},
		{"Pick, 300 instances, 100 lanes (tagged)", "Pick/instances=300/lanes=100/impl=graylane_tag", "Pick/instances=300/lanes=100/impl=round_robin", ratioAtMost(1.6, 0, -1)},
		{"Pick flat: 300 vs 3 instances", "Pick/instances=300/lanes=1/impl=graylane_tag", "Pick/instances=3/lanes=1/impl=graylane_tag", ratioAtMost(1.15, -1, -1)},
		{"Pick flat: 100 vs 3 lanes (tagged)", "Pick/instances=300/lanes=100/impl=graylane_tag", "Pick/instances=3/lanes=3/impl=graylane_tag", ratioAtMost(1.15, -1, -1)},
		{"HTTP routing pick (Router.Route), lane serves", "RouterRoute/lane=gray/impl=graylane", "RouterRoute/lane=gray/impl=static",
			func(g, b stats) (string, bool) { return "≤ 150 ns, 0 allocs", g.ns <= 150 && g.allocs == 0 }},
		{"HTTP routing pick (Router.Route), fallback", "RouterRoute/lane=v3/impl=graylane", "RouterRoute/lane=v3/impl=static",
			func(g, b stats) (string, bool) { return "≤ 150 ns, 0 allocs", g.ns <= 150 && g.allocs == 0 }},
		{"HTTP routing transport, lane serves (pick + URL rewrite)", "Routing/lane=gray/impl=routing", "Routing/lane=gray/impl=inject",
			func(g, b stats) (string, bool) { return "no extra allocs", g.allocs <= b.allocs }},
		{"HTTP routing transport, fallback (pick + URL rewrite)", "Routing/lane=v3/impl=routing", "Routing/lane=v3/impl=inject",
			func(g, b stats) (string, bool) { return "no extra allocs", g.allocs <= b.allocs }},
		{"ingress, 20 rules, last matches", "Evaluate/rules=20/match=last/impl=graylane", "Evaluate/rules=20/match=last/impl=one-header-check",
			func(g, b stats) (string, bool) { return "≤ 1 µs, ≤ 2 allocs", g.ns <= 1000 && g.allocs <= 2 }},
		{"ingress, 20 rules, none matches", "Evaluate/rules=20/match=none/impl=graylane", "Evaluate/rules=20/match=none/impl=one-header-check",
			func(g, b stats) (string, bool) { return "≤ 1 µs, ≤ 2 allocs", g.ns <= 1000 && g.allocs <= 2 }},
		{"2 HTTP hops on loopback", "TwoHops/impl=graylane", "TwoHops/impl=plain",
			func(g, b stats) (string, bool) {
				return "≤ 1.1×, ≤ 12 more allocs", g.ns <= 1.1*b.ns && g.allocs-b.allocs <= 12
			}},
		{"2 HTTP hops, otelhttp (reference)", "TwoHops/impl=otel", "TwoHops/impl=plain", nil},
		{"1 gRPC hop on loopback", "GRPCHop/impl=graylane", "GRPCHop/impl=plain", nil},
		{"1 gRPC hop, otelgrpc (reference)", "GRPCHop/impl=otel", "GRPCHop/impl=plain", nil},
	}
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f ns", ns)
	}
}

func main() {
	in := flag.String("in", "", "benchmark output (default: standard input)")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		r = f
	}
	samples, err := parse(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	failed := write(os.Stdout, samples)
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "benchreport: %d paths miss their bar\n", failed)
	}
}

// write prints the tables and returns how many rows miss their bar.
func write(w io.Writer, samples map[string]*sample) int {
	failed := 0
	fmt.Fprintln(w, "| path | graylane | baseline | ratio | allocs/op | B/op | bar | meets |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows() {
		gs, bs := samples[r.graylane], samples[r.baseline]
		if gs == nil || bs == nil {
			fmt.Fprintf(w, "| %s | (not run) | | | | | | |\n", r.path)
			continue
		}
		g, b := statsOf(gs), statsOf(bs)
		bar, meets := "reference", "—"
		if r.bar != nil {
			desc, ok := r.bar(g, b)
			bar, meets = desc, "yes"
			if !ok {
				meets = "**no**"
				failed++
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f× | %g (base %g) | %g (base %g) | %s | %s |\n",
			r.path, fmtNs(g.ns), fmtNs(b.ns), g.ns/b.ns, g.allocs, b.allocs, g.bytes, b.bytes, bar, meets)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Resolver update, per instance (it must stay flat from 1,000 to 10,000 instances):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| stage | instances | time | per instance | allocs/op | B/op |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, stage := range []string{"resolver", "balancer"} {
		for _, n := range []string{"1000", "10000"} {
			s := samples["ResolverUpdate/stage="+stage+"/instances="+n]
			if s == nil {
				continue
			}
			st := statsOf(s)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %g | %g |\n", stage, n, fmtNs(st.ns), fmtNs(median(s.extra["ns/instance"])), st.allocs, st.bytes)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Balancer rebuild, one instance of 1,000 in 100 lanes flapping (bar: under 1 ms; collect=true runs a metrics collection loop beside it):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| stage | collect | time | allocs/op | B/op | bar met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, collect := range []string{"false", "true"} {
		for _, stage := range []string{"same", "flap"} {
			s := samples["Rebuild/instances=1000/lanes=100/stage="+stage+"/collect="+collect]
			if s == nil {
				continue
			}
			st := statsOf(s)
			meets := "yes"
			if st.ns >= 1e6 {
				meets = "**no**"
				failed++
			}
			fmt.Fprintf(w, "| %s | %s | %s | %g | %g | %s |\n", stage, collect, fmtNs(st.ns), st.allocs, st.bytes, meets)
		}
	}
	return failed
}
