package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
)

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	labels map[string]string
	value  float64
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads /metrics of the admin server: the samples by metric name.
func scrape(t *testing.T, sys *app.System) map[string][]metricSample {
	t.Helper()
	body, code := httpGet(t, sys.AdminURL()+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	out := map[string][]metricSample{}
	for line := range strings.SplitSeq(body, "\n") {
		m := sampleRE.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, line)
		s := metricSample{labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], s)
	}
	return out
}

// value sums the samples of name whose labels include want (a label
// missing counts as empty, as in Prometheus).
func value(samples map[string][]metricSample, name string, want map[string]string) float64 {
	var sum float64
	for _, s := range samples[name] {
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			sum += s.value
		}
	}
	return sum
}

// pollInterval paces the checks of what cannot be awaited.
const pollInterval = 10 * time.Millisecond

func httpGet(t *testing.T, url string, header http.Header) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b), resp.StatusCode
}

func decision(service, tag, lane, reason string) map[string]string {
	return map[string]string{"service": service, "tag": tag, "lane": lane, "reason": reason}
}

// TestMetricsDuringWalkthrough: /metrics on the admin server shows
// graylane_route_decisions_total with the labels service, tag, lane and
// reason, counting exactly the calls of the requests sent, row by row of
// the walkthrough; and the other metrics of the process beside it.
func TestMetricsDuringWalkthrough(t *testing.T) {
	sys := startSystem(t, app.Config{})
	client := newClient(t)
	base := sys.GatewayURL() + "/productpage"
	send := func(n int, header http.Header) {
		for range n {
			p := fetch(t, client, base, header)
			require.Equal(t, http.StatusOK, p.status)
		}
	}
	gray := http.Header{"X-Traffic-Tag": {"gray"}}
	diff := func(before, after map[string][]metricSample, labels map[string]string) float64 {
		return value(after, "graylane_route_decisions_total", labels) - value(before, "graylane_route_decisions_total", labels)
	}

	// Rows 1 and 2: 5 untagged requests, 3 gray ones with nothing gray.
	before := scrape(t, sys)
	send(5, nil)
	send(3, gray)
	after := scrape(t, sys)
	for _, svc := range []string{"productpage", "details", "reviews"} {
		assert.Equal(t, 5.0, diff(before, after, decision(svc, "", "prod", "untagged")), svc)
		assert.Equal(t, 3.0, diff(before, after, decision(svc, "gray", "prod", "noinstances")), svc)
	}
	ratings := map[string]string{"service": "ratings"}
	assert.Zero(t, value(after, "graylane_route_decisions_total", ratings)-value(before, "graylane_route_decisions_total", ratings), "reviews-v1 never calls ratings")

	// Row 3: reviews-v2 up. Once gray requests reach it, 4 more count as
	// matched in reviews and as fallbacks in ratings.
	scale(t, sys, "reviews-v2", 1)
	until(t, "reviews-v2", func() page { return fetch(t, client, base, gray) }, func(p page) bool { return p.reviewsPod() == "reviews-v2-0" })
	before = scrape(t, sys)
	send(4, gray)
	after = scrape(t, sys)
	assert.Equal(t, 4.0, diff(before, after, decision("productpage", "gray", "prod", "noinstances")))
	assert.Equal(t, 4.0, diff(before, after, decision("details", "gray", "prod", "noinstances")))
	assert.Equal(t, 4.0, diff(before, after, decision("reviews", "gray", "gray", "matched")))
	assert.Equal(t, 4.0, diff(before, after, decision("ratings", "gray", "prod", "noinstances")))

	// The rest of the process's metrics.
	assert.Equal(t, 4.0, value(after, "request_result_total", map[string]string{"destination_app": "reviews", "response_code": "200"})-
		value(before, "request_result_total", map[string]string{"destination_app": "reviews", "response_code": "200"}),
		"productpage's request_result_total, with the original's labels")
	assert.NotEmpty(t, after["graylane_ingress_decisions_total"], "the gateway's decisions")
	for _, s := range after["graylane_ingress_decisions_total"] {
		assert.Contains(t, s.labels, "outcome")
	}
	send(1, http.Header{"X-Traffic-Tag": {"not a tag!"}})
	assert.Positive(t, value(scrape(t, sys), "graylane_tag_rejected_total", map[string]string{"source": "header", "reason": "invalid"}),
		"the gateway counts the invalid tag it ignored")

	// The message-queue decisions of the notifications consumers: the gray
	// page views' events, processed by the base lane by fallback.
	var last map[string][]metricSample
	require.Eventually(t, func() bool {
		last = scrape(t, sys)
		return value(last, "graylane_queue_decisions_total", map[string]string{"tag": "gray", "lane": "prod", "reason": "noinstances"}) >= 3
	}, defaultTestTimeout, 50*time.Millisecond, "queue decisions in /metrics: %v", last["graylane_queue_decisions_total"])
}

// TestMetricsOfEtcdRegistry: with etcd, /metrics carries the registry's
// connection gauge.
func TestMetricsOfEtcdRegistry(t *testing.T) {
	tel, err := app.NewTelemetry(app.TelemetryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	reg, closeReg, err := app.OpenRegistry(app.RegistryConfig{
		Spec: "embedded-etcd", EtcdClientAddr: etcdtest.FreeAddr(t), EtcdPeerAddr: etcdtest.FreeAddr(t), EtcdDir: t.TempDir(),
		MeterProvider: tel.MeterProvider(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeReg()) })
	sys := startSystem(t, app.Config{Registry: reg, Telemetry: tel})
	m := scrape(t, sys)
	assert.Equal(t, 1.0, value(m, "graylane_registry_connected", map[string]string{"registry": "etcd", "registry_prefix": "/graylane/services/"}), "%v", m["graylane_registry_connected"])
}

// TestTraceOfAGrayRequest: one gray request makes one trace with a span for
// every hop, client and server, and graylane's decision on them.
func TestTraceOfAGrayRequest(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tel, err := app.NewTelemetry(app.TelemetryConfig{SpanExporter: spans, SyncSpans: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sys := startSystem(t, app.Config{Telemetry: tel, Replicas: map[string]int{"reviews-v2": 1}})
	client := newClient(t)
	gray := func() page {
		return fetch(t, client, sys.GatewayURL()+"/productpage", http.Header{"X-Traffic-Tag": {"gray"}})
	}
	// Until reviews-v2 is ready, gray requests fall back to reviews-v1.
	until(t, "reviews-v2", gray, func(p page) bool { return p.reviewsPod() == "reviews-v2-0" })
	// The request is the first of its trace, as a client sending a
	// traceparent with sampled set starts one.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	p := fetch(t, client, sys.GatewayURL()+"/productpage", http.Header{
		"X-Traffic-Tag": {"gray"}, "Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"},
	})
	require.Equal(t, []string{"black:5", "black:4"}, p.stars())

	// A server span ends when its handler has returned, which may be after
	// its caller has read the answer: wait for the nine.
	ofTrace := func() []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID {
				out = append(out, s)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(ofTrace()) >= 9 }, defaultTestTimeout, pollInterval)
	attrs := func(s tracetest.SpanStub) map[attribute.Key]string {
		out := map[attribute.Key]string{}
		for _, kv := range s.Attributes {
			out[kv.Key] = kv.Value.Emit()
		}
		return out
	}

	type hop struct {
		kind             trace.SpanKind
		service          string
		tag, lane, extra string
	}
	var got []hop
	for _, s := range ofTrace() {
		a := attrs(s)
		h := hop{kind: s.SpanKind, service: a["graylane.service"], tag: a["graylane.tag"], lane: a["graylane.lane"]}
		if s.SpanKind == trace.SpanKindServer {
			h.extra = a["graylane.instance"]
		} else {
			h.extra = a["graylane.reason"]
		}
		if strings.HasPrefix(s.Name, "gateway ") {
			h = hop{kind: s.SpanKind, service: "gateway", tag: a["graylane.tag"], extra: a["graylane.outcome"]}
		}
		got = append(got, h)
	}
	assert.ElementsMatch(t, []hop{
		{trace.SpanKindServer, "gateway", "gray", "", "kept"},
		{trace.SpanKindClient, "productpage", "gray", "prod", "noinstances"},
		{trace.SpanKindServer, "productpage", "gray", "prod", "productpage-v1-0"},
		{trace.SpanKindClient, "details", "gray", "prod", "noinstances"},
		{trace.SpanKindServer, "details", "gray", "prod", "details-v1-0"},
		{trace.SpanKindClient, "reviews", "gray", "gray", "matched"},
		{trace.SpanKindServer, "reviews", "gray", "gray", "reviews-v2-0"},
		{trace.SpanKindClient, "ratings", "gray", "prod", "noinstances"},
		{trace.SpanKindServer, "ratings", "gray", "prod", "ratings-v1-0"},
	}, got, "one span per hop and side, all in the gateway's trace")
}
