// Package loadgen sends load through the Bookinfo gateway and reports what
// it saw: rate, latency percentiles, errors, and, from graylane's route
// receipts, which instances served the requests of each lane.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// Config says what load to send.
type Config struct {
	// URL is the page to ask for, e.g. http://localhost:9080/productpage.
	URL string
	// Rate is requests per second; 0 sends as fast as Concurrency allows.
	Rate float64
	// Concurrency bounds the requests in flight (default 16).
	Concurrency int
	// Duration of the run.
	Duration time.Duration
	// Tagged is the share of requests, from 0 to 1, that carry Tag.
	Tagged float64
	// Tag is the lane of tagged requests (default "gray").
	Tag string
	// Header carries the tag (default "x-traffic-tag").
	Header string
	// Route asks for route receipts, to count which instances served each
	// lane's requests (the gateway honours it for trusted peers only).
	Route bool
	// PageErrors counts a page that reports a failed downstream call as an
	// error, although its status is 200 (productpage always answers 200).
	PageErrors bool
	// Client sends the requests (default: a client of its own).
	Client *http.Client
	// Progress, when set, receives the number of completed requests after
	// each one, if it is ready to (sends never block).
	Progress chan<- int
}

// Result is what a run saw.
type Result struct {
	Requests           int
	Errors             int
	Elapsed            time.Duration
	Rate               float64 // completed requests per second
	P50, P90, P99, Max time.Duration
	// Served counts, for each requested lane ("untagged" or the tag), the
	// instances that served a hop of its requests.
	Served map[string]map[string]int
	// Leaks counts untagged requests of which a hop was served outside the
	// base lane: there must be none.
	Leaks int
	// ErrorSamples holds the first few errors.
	ErrorSamples []string
}

// pageFailures are the texts productpage shows when a call failed.
var pageFailures = []string{
	"Error fetching product details",
	"Error fetching product reviews",
	"Ratings service is currently unavailable",
}

// Run sends the load until Duration has passed or ctx is done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.URL == "" || cfg.Duration <= 0 {
		return Result{}, errors.New("loadgen: URL and a positive Duration are required")
	}
	if cfg.Tagged < 0 || cfg.Tagged > 1 || cfg.Rate < 0 {
		return Result{}, fmt.Errorf("loadgen: tagged share %v must be in [0,1] and rate %v not negative", cfg.Tagged, cfg.Rate)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Tag == "" {
		cfg.Tag = "gray"
	}
	if _, err := tag.Parse(cfg.Tag); err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Header == "" {
		cfg.Header = "x-traffic-tag"
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}}
		defer client.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var (
		mu   sync.Mutex
		res  = Result{Served: map[string]map[string]int{}}
		lats []time.Duration
		wg   sync.WaitGroup
		sem  = make(chan struct{}, cfg.Concurrency)
	)
	one := func(tagged bool) {
		defer wg.Done()
		defer func() { <-sem }()
		lat, hops, err := request(client, cfg, tagged)
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		if cfg.Progress != nil {
			select {
			case cfg.Progress <- res.Requests:
			default:
			}
		}
		lats = append(lats, lat)
		if err != nil {
			res.Errors++
			if len(res.ErrorSamples) < 5 {
				res.ErrorSamples = append(res.ErrorSamples, err.Error())
			}
		}
		lane := "untagged"
		if tagged {
			lane = cfg.Tag
		}
		for _, h := range hops {
			m := res.Served[lane]
			if m == nil {
				m = map[string]int{}
				res.Served[lane] = m
			}
			m[h.Instance]++
		}
		if !tagged && slices.ContainsFunc(hops, func(h receipt.Hop) bool { return h.Lane != tag.Base }) {
			res.Leaks++
		}
	}
	start := time.Now()
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
loop:
	for {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		go one(rng.Float64() < cfg.Tagged)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Rate = float64(res.Requests) / res.Elapsed.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	res.P50, res.P90, res.P99 = quantile(lats, .50), quantile(lats, .90), quantile(lats, .99)
	if len(lats) > 0 {
		res.Max = lats[len(lats)-1]
	}
	return res, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// request sends one request. The latency counts until the body is read.
func request(client *http.Client, cfg Config, tagged bool) (time.Duration, []receipt.Hop, error) {
	req, err := http.NewRequest(http.MethodGet, cfg.URL, nil)
	if err != nil {
		return 0, nil, err
	}
	if tagged {
		req.Header.Set(cfg.Header, cfg.Tag)
	}
	if cfg.Route {
		req.Header.Set(receipt.Header, receipt.Ask)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return time.Since(start), nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return lat, nil, err
	}
	hops, _ := receipt.Parse(resp.Header.Get(receipt.Header))
	if resp.StatusCode != http.StatusOK {
		return lat, hops, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if cfg.PageErrors {
		for _, f := range pageFailures {
			if strings.Contains(string(body), f) {
				return lat, hops, fmt.Errorf("page reports %q", f)
			}
		}
	}
	return lat, hops, nil
}

// Print writes a report a person can read.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "requests %d in %v: %.1f/s, errors %d\n", r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate, r.Errors)
	fmt.Fprintf(w, "latency p50 %v  p90 %v  p99 %v  max %v\n", r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	lanes := make([]string, 0, len(r.Served))
	for l := range r.Served {
		lanes = append(lanes, l)
	}
	slices.Sort(lanes)
	for _, l := range lanes {
		insts := make([]string, 0, len(r.Served[l]))
		for in := range r.Served[l] {
			insts = append(insts, in)
		}
		slices.Sort(insts)
		fmt.Fprintf(w, "%s requests served by:", l)
		for _, in := range insts {
			fmt.Fprintf(w, " %s=%d", in, r.Served[l][in])
		}
		fmt.Fprintln(w)
	}
	if len(r.Served) > 0 {
		fmt.Fprintf(w, "untagged requests that reached another lane: %d\n", r.Leaks)
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
