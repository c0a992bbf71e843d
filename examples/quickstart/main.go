// Command quickstart runs graylane's smallest full picture in one process:
// a gateway that puts testers in the gray lane, a frontend with a prod and
// a gray instance, and a backend with a prod instance only, so that gray
// requests fall back to prod for that hop and come back to their lane
// after it.
//
//	go run ./examples/quickstart
//	curl localhost:8080/                               # prod all the way
//	curl -H 'x-user-group: testers' localhost:8080/     # gray frontend, prod backend by fallback
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"syscall"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// rules assign lanes at the edge; a client's own tag is not trusted.
const rules = `
rules:
  - name: testers
    lane: gray
    match:
      header: {x-user-group: {exact: testers}}
`

// demo is the running quickstart.
type demo struct {
	reg     *registry.Memory
	router  *routing.Router
	servers []*http.Server
	gateway string // the gateway's URL
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "where the gateway listens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := start(ctx, *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("gateway on %s; try: curl -H 'x-user-group: testers' %s/", d.gateway, d.gateway)
	<-ctx.Done()
	d.close()
}

// start runs every instance and the gateway, which listens on addr.
func start(ctx context.Context, addr string) (*demo, error) {
	d := &demo{reg: registry.NewMemory()}
	d.router = routing.NewRouter(d.reg, nil) // default policy: loose, fall back to prod
	client := &http.Client{Transport: httpmw.NewTransport(nil, httpmw.WithRouting(d.router))}
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend-v1 (prod%s)", reasonOf(r))
	})
	frontend := func(name, lane string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The context carries the request's tag: the call goes to the
			// backend instance of that lane, or falls back.
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://backend/", nil)
			resp, err := client.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(w, "%s (%s%s) -> %s\n", name, lane, reasonOf(r), body)
		})
	}
	for _, in := range []struct {
		service, name, lane string
		h                   http.Handler
	}{
		{"frontend", "frontend-v1", "", frontend("frontend-v1", "prod")},
		{"frontend", "frontend-v2", "gray", frontend("frontend-v2", "gray")},
		{"backend", "backend-v1", "", backend},
	} {
		// An instance of a lane tags the requests that reach it untagged.
		prop, err := propagation.New(propagation.WithOwnTag(in.lane))
		if err != nil {
			return nil, err
		}
		addr, err := d.serve("127.0.0.1:0", httpmw.NewHandler(in.h, httpmw.WithPropagator(prop)))
		if err != nil {
			return nil, err
		}
		inst := registry.Instance{Service: in.service, Addr: addr, Name: in.name}
		if in.lane != "" {
			inst.Tag = tag.MustParse(in.lane)
		}
		if _, err := d.reg.Register(ctx, inst); err != nil {
			return nil, err
		}
	}
	rs, err := ingress.Parse("rules.yaml", []byte(rules))
	if err != nil {
		return nil, err
	}
	proxy := ingress.NewReverseProxy(&url.URL{Scheme: "http", Host: "frontend"}, client.Transport)
	gw, err := d.serve(addr, ingress.Middleware(rs)(proxy))
	if err != nil {
		return nil, err
	}
	d.gateway = "http://" + gw
	return d, nil
}

// reasonOf says why a request reached this lane, if by fallback.
func reasonOf(r *http.Request) string {
	if reason := r.Header.Get(fallback.Header); reason != "" {
		return ", fallback: " + reason
	}
	return ""
}

// serve serves h on addr until close, and returns the address bound.
func (d *demo) serve(addr string, h http.Handler) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		d.close()
		return "", err
	}
	srv := &http.Server{Handler: h}
	d.servers = append(d.servers, srv)
	go srv.Serve(lis)
	return lis.Addr().String(), nil
}

func (d *demo) close() {
	for _, s := range d.servers {
		s.Close()
	}
	d.router.Close()
	d.reg.Close()
}
