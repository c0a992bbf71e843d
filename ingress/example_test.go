package ingress_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/tag"
)

func Example() {
	rules, err := ingress.Parse("rules.yaml", []byte(`
rules:
  - name: testers
    lane: gray
    match:
      header: {x-user-group: {exact: testers}}
`))
	if err != nil {
		panic(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tag.FromContext(r.Context())
		d, _ := ingress.DecisionFromContext(r.Context())
		fmt.Printf("lane %q, header %q: %v\n", t, r.Header.Get("x-traffic-tag"), d)
	})
	gateway := ingress.Middleware(rules)(app)

	// A tester: the rule assigns the gray lane.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("x-user-group", "testers")
	gateway.ServeHTTP(httptest.NewRecorder(), r)

	// An outside client that tries to pick its lane: its tag is stripped.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("x-traffic-tag", "gray")
	gateway.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// lane "gray", header "gray": rule 0 (testers) -> gray
	// lane "", header "": default -> untagged; client tag stripped: untrusted
}

// A gateway in front of a logical service. The transport stands for a
// routing transport that sends each call to an instance of the request's
// lane.
func ExampleNewReverseProxy() {
	productpage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s got lane %q", r.Host, r.Header.Get("x-traffic-tag"))
	}))
	defer productpage.Close()
	instance, _ := url.Parse(productpage.URL)
	routing := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = instance.Host // the instance chosen for the request's lane
		return http.DefaultTransport.RoundTrip(r)
	})

	rules, err := ingress.Compile(ingress.Config{Rules: []ingress.Rule{
		{Name: "beta", Lane: "gray", Match: ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Present()}}},
	}})
	if err != nil {
		panic(err)
	}
	target, _ := url.Parse("http://productpage")
	gateway := httptest.NewServer(ingress.Middleware(rules)(ingress.NewReverseProxy(target, routing)))
	defer gateway.Close()

	req, _ := http.NewRequest(http.MethodGet, gateway.URL, nil)
	req.Header.Set("Cookie", "beta=1")
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: productpage got lane "gray"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Rule files are checked whole; every problem names its line and field.
func ExampleParse_errors() {
	_, err := ingress.Parse("rules.yaml", []byte(`
rules:
  - name: canary
    lane: gray
    percent: 12.345
    match:
      header:
        user-agent: {regex: "BookApp/(3"}
      colour: blue
`))
	fmt.Println(err)
	// Output:
	// rules.yaml:5: rules[0].percent: "12.345": at most two decimals (steps of 0.01%)
	// rules.yaml:8: rules[0].match.header.user-agent.regex: missing closing ): `BookApp/(3`
	// rules.yaml:9: rules[0].match.colour: unknown field; allowed here: header, cookie, query, pathPrefix, method
}

// A sticky percentage: the same user always gets the same answer, and
// raising the percentage keeps everyone who was in.
func ExampleStickyBucket() {
	for _, user := range []string{"user-1", "user-2"} {
		b := ingress.StickyBucket("gray", user)
		fmt.Printf("%s: bucket %d, in gray at 10%%: %v, at 20%%: %v\n", user, b, b < 1000, b < 2000)
	}
	// Output:
	// user-1: bucket 1701, in gray at 10%: false, at 20%: true
	// user-2: bucket 9999, in gray at 10%: false, at 20%: false
}

// Watch follows a rule file, for example a mounted ConfigMap.
func ExampleWatch() {
	dir, err := os.MkdirTemp("", "rules")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte("default: gray\nrules: []\n"), 0o600); err != nil {
		panic(err)
	}

	w, err := ingress.Watch(context.Background(), path)
	if err != nil {
		panic(err)
	}
	defer w.Close()

	// Each request is decided by the rules in force when it arrives.
	app := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		t, _ := tag.FromContext(r.Context())
		fmt.Println("lane:", t)
	})
	ingress.Middleware(w)(app).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	// Output: lane: gray
}
