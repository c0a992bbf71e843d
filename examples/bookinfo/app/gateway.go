package app

import (
	"context"
	"net/http"
	"net/url"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/receipt"
)

// GatewayConfig sets the gateway's ingress rules and trust.
type GatewayConfig struct {
	// RulesFile, when set, is a rule file (YAML or JSON, see package
	// ingress) that replaces the built-in rules and is reloaded when it
	// changes.
	RulesFile string
	// Trusted lists the peers (IPs or CIDR prefixes) whose x-traffic-tag
	// and x-graylane-route headers are honoured. Default: loopback only.
	Trusted []string
	// GrayPercent sends that share of the users identified by the
	// x-user-id header to the gray lane, sticky per user.
	GrayPercent float64
}

// DefaultTrusted are the peers the demo gateway trusts by default.
var DefaultTrusted = []string{"127.0.0.0/8", "::1/128"}

// gatewayRules are the built-in ingress rules of the demo: a user signed
// in as jason is tagged gray; optionally a sticky share of the users with
// an x-user-id header too. Trusted peers keep the tag they send, for any
// lane; everyone else's is stripped.
func gatewayRules(c GatewayConfig) ingress.Config {
	trusted := c.Trusted
	if trusted == nil {
		trusted = DefaultTrusted
	}
	cfg := ingress.Config{
		Lanes: []string{"gray", "v3"},
		Trust: ingress.Trust{Peers: trusted, Lanes: []string{"*"}},
		Rules: []ingress.Rule{{
			Name:  "jason-is-gray",
			Lane:  "gray",
			Match: ingress.Match{Cookie: map[string]ingress.Condition{"user": ingress.Exact("jason")}},
		}},
	}
	if c.GrayPercent > 0 {
		cfg.Rules = append(cfg.Rules, ingress.Rule{
			Name:    "share-of-users",
			Lane:    "gray",
			Percent: ingress.Percent(c.GrayPercent),
			Sticky:  &ingress.Sticky{Header: "x-user-id", Missing: ingress.MissingNone},
		})
	}
	return cfg
}

// gateway is the entry: trust boundary and ingress rules, then a reverse
// proxy to productpage through the routing transport.
type gateway struct {
	http.Handler
	transport *httpmw.Transport
	watcher   *ingress.Watcher
	cancel    context.CancelFunc
}

func (s *System) newGateway(c GatewayConfig) (*gateway, error) {
	prop, err := s.newPropagator("")
	if err != nil {
		return nil, err
	}
	gw := &gateway{}
	var src ingress.Source
	if c.RulesFile != "" {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := ingress.Watch(ctx, c.RulesFile, ingress.WithLogger(s.log), ingress.WithMeterProvider(s.tel.MeterProvider()), ingress.WithOnReload(func(_ *ingress.Rules, err error) {
			if err != nil {
				s.log.Error("ingress rules not reloaded; the previous rules stay", "file", c.RulesFile, "error", err)
				return
			}
			s.log.Info("ingress rules reloaded", "file", c.RulesFile)
		}))
		if err != nil {
			cancel()
			return nil, err
		}
		gw.watcher, gw.cancel, src = w, cancel, w
	} else {
		rules, err := ingress.Compile(gatewayRules(c))
		if err != nil {
			return nil, err
		}
		src = rules
	}
	target := &url.URL{Scheme: "http", Host: "productpage"}
	transportOpts := []httpmw.Option{httpmw.WithPropagator(prop), httpmw.WithRouting(s.router)}
	if s.cfg.NoRouting {
		target.Host = s.fixedLis["productpage"].Addr().String()
		transportOpts = []httpmw.Option{httpmw.WithPropagator(prop), httpmw.WithReceiptHosts(target.Host)}
	}
	transport := httpmw.NewTransport(s.httpTransport(&http.Transport{MaxIdleConnsPerHost: 256}), transportOpts...)
	proxy := ingress.NewReverseProxy(target, s.traceTransport(transport), ingress.WithPropagator(prop), ingress.WithLogger(s.log))
	self := receipt.Self{Service: "gateway", Instance: "gateway", Lane: "prod"}
	gw.transport = transport
	gw.Handler = s.traceHTTP(ingress.Middleware(src, ingress.WithPropagator(prop), ingress.WithLogger(s.log),
		ingress.WithMeterProvider(s.tel.MeterProvider()))(
		httpmw.NewHandler(proxy, httpmw.WithPropagator(prop), httpmw.WithRouteReceipt(self))), "gateway")
	return gw, nil
}

func (g *gateway) close() {
	g.transport.CloseIdleConnections()
	if g.cancel != nil {
		g.cancel()
	}
	if g.watcher != nil {
		g.watcher.Close()
	}
}
