package httpmw_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// A service reads the tag of each request from its context, and its client
// carries it to the next service.
func Example() {
	downstream := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tag.FromContext(r.Context())
		fmt.Fprintf(w, "downstream sees %q", t)
	})))
	defer downstream.Close()

	client := &http.Client{Transport: httpmw.NewTransport(nil)}
	front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, downstream.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})))
	defer front.Close()

	req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
	req.Header.Set("x-traffic-tag", "gray")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	// Output: downstream sees "gray"
}

// With WithRouting, a request for http://reviews/ goes to an instance of
// the request's lane, or falls back to prod.
func ExampleWithRouting() {
	reg := registry.NewMemory()
	defer reg.Close()
	prod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "prod instance, reached by fallback: %q", r.Header.Get("x-graylane-fallback"))
	}))
	defer prod.Close()
	reg.Register(context.Background(), registry.Instance{Service: "reviews", Addr: prod.Listener.Addr().String()})

	router := routing.NewRouter(reg, nil)
	defer router.Close()
	p, _ := propagation.New(propagation.WithOwnTag(""))
	client := &http.Client{Transport: httpmw.NewTransport(nil, httpmw.WithPropagator(p), httpmw.WithRouting(router))}
	defer client.CloseIdleConnections()

	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://reviews/reviews/0", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: prod instance, reached by fallback: "noinstances"
}
