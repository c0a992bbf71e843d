// Command bookinfo runs Istio's Bookinfo, rewritten in Go and wired with
// graylane, on one machine: a gateway, an admin page, and every deployment
// of productpage, details, reviews and ratings as instances on loopback
// ports, routed by lane with no service mesh. Every product page view
// publishes an event, in the request's lane, on NATS JetStream (embedded,
// or -nats), which the deployments of the notifications service consume
// in lanes: notifications-v2 (gray) the gray events while it runs,
// notifications-v1 the others, and the gray ones too while v2 has no
// replica, taking over what v2 left when it stops.
//
//	go run ./examples/bookinfo            # everything in one process
//	go run ./examples/bookinfo -h         # flags
//	go run ./examples/bookinfo load -h    # the load generator
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/lanelog"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(runLoad(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bookinfo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		gatewayAddr = fs.String("gateway-addr", ":9080", "where the gateway listens")
		adminAddr   = fs.String("admin-addr", "127.0.0.1:9091", "where the admin page listens")
		replicas    = fs.String("replicas", "", "initial replicas, e.g. reviews-v2=1,ratings-v2=1 (defaults: the v1 deployments 1, the others 0)")
		strict      = fs.String("strict", "", "lanes that start in strict mode, e.g. gray")
		rules       = fs.String("rules", "", "ingress rule file (YAML or JSON) replacing the built-in rules; reloaded when it changes")
		trust       = fs.String("trust", strings.Join(app.DefaultTrusted, ","), "peers (IPs or CIDRs) whose x-traffic-tag and x-graylane-route headers the gateway honours")
		grayPercent = fs.Float64("gray-percent", 0, "share (0-100) of users with an x-user-id header the gateway sends to the gray lane, sticky per user")
		logLevel    = fs.String("log-level", "info", "log level: debug, info, warn or error")
		noRouting   = fs.Bool("no-routing", false, "turn graylane's routing off: every client calls one fixed prod instance (a baseline for load measurements)")

		registry    = fs.String("registry", "memory", "where instances register: memory (one process), embedded-etcd (start a single-node etcd here), etcd://host:port[,host:port], or kubernetes (read-only: the Pods behind each Service are the instances)")
		kubeconfig  = fs.String("kubeconfig", "", "with -registry kubernetes: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the Pod's service account in a cluster)")
		namespace   = fs.String("namespace", "", "with -registry kubernetes: namespace of the services (default: the kubeconfig's, or the Pod's own)")
		laneLabel   = fs.String("lane-label", "", "with -registry kubernetes: the Pod label that holds the lane (default ASM_TRAFFIC_TAG)")
		deployments = fs.String("deployment", "", "run only these deployments in this process, comma-separated, e.g. reviews-v2; gateway and admin name the gateway and the admin page (default: everything)")
		etcdClient  = fs.String("etcd-client-addr", "127.0.0.1:2379", "with -registry embedded-etcd: where etcd serves clients")
		etcdPeer    = fs.String("etcd-peer-addr", "127.0.0.1:2380", "with -registry embedded-etcd: etcd's peer address")
		etcdDir     = fs.String("etcd-dir", "", "with -registry embedded-etcd: data directory (default: a temporary one)")
		leaseTTL    = fs.Duration("lease-ttl", 10*time.Second, "with etcd: lease TTL; a crashed process's instances disappear within it")
		listenHost  = fs.String("listen-host", "127.0.0.1", "where instances listen")
		advertise   = fs.String("advertise-host", "", "the host instances register with (default: -listen-host; required with 0.0.0.0)")
		port        = fs.Int("instance-port", 0, "the port of this process's instance (default: a random one)")
		natsURL     = fs.String("nats", "", "NATS server (JetStream on) for the page view events, e.g. nats://127.0.0.1:4222 (default: one embedded in the process that runs the gateway)")
		natsAddr    = fs.String("nats-addr", "127.0.0.1:0", "without -nats: where the embedded NATS server listens")
		instName    = fs.String("instance-name", "", "the name of this process's instance, e.g. the pod name (default: <deployment>-<n>)")

		traceTo   = fs.String("trace", "", "print the spans of every hop: stdout (one JSON object per span)")
		otlp      = fs.String("otlp-endpoint", "", "export the spans of every hop over OTLP/gRPC to this collector, e.g. 127.0.0.1:4317 (no TLS)")
		adminHost = fs.String("admin-host", "", "host names the admin page answers to besides loopback names and its listen address, comma-separated (it refuses others: DNS rebinding)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bookinfo [flags]\n       bookinfo load [flags]\n\nRuns Bookinfo with graylane's traffic lanes on this machine.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nDeployments: %s\n", deploymentList())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "-log-level: %v\n", err)
		return 2
	}
	logger := newLogger(stderr, level)
	slog.SetDefault(logger)

	spans, err := spanExporter(*traceTo, *otlp, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "bookinfo: %v\n", err)
		return 2
	}
	tel, err := app.NewTelemetry(app.TelemetryConfig{SpanExporter: spans})
	if err != nil {
		fmt.Fprintf(stderr, "bookinfo: telemetry: %v\n", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			fmt.Fprintf(stderr, "bookinfo: telemetry: %v\n", err)
		}
	}()

	reps, err := app.ParseReplicas(*replicas)
	if err != nil {
		fmt.Fprintf(stderr, "-replicas: %v\n", err)
		return 2
	}
	lanes, err := app.ParseLanes(*strict)
	if err != nil {
		fmt.Fprintf(stderr, "-strict: %v\n", err)
		return 2
	}
	if *grayPercent < 0 || *grayPercent > 100 {
		fmt.Fprintf(stderr, "-gray-percent: %v is not between 0 and 100\n", *grayPercent)
		return 2
	}
	var trusted []string
	for t := range strings.SplitSeq(*trust, ",") {
		if t = strings.TrimSpace(t); t != "" {
			trusted = append(trusted, t)
		}
	}
	if trusted == nil {
		trusted = []string{}
	}

	cfg := app.Config{
		GatewayAddr:   *gatewayAddr,
		AdminAddr:     *adminAddr,
		Replicas:      reps,
		StrictLanes:   lanes,
		Gateway:       app.GatewayConfig{RulesFile: *rules, Trusted: trusted, GrayPercent: *grayPercent},
		Logger:        logger,
		NoRouting:     *noRouting,
		ListenHost:    *listenHost,
		AdvertiseHost: *advertise,
		InstancePort:  *port,
		InstanceName:  *instName,
		NATSURL:       *natsURL,
		NATSAddr:      *natsAddr,
		Telemetry:     tel,
	}
	for h := range strings.SplitSeq(*adminHost, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.AdminHosts = append(cfg.AdminHosts, h)
		}
	}
	if *deployments != "" {
		cfg.Deployments = []string{}
		gw, admin := false, false
		for name := range strings.SplitSeq(*deployments, ",") {
			switch name = strings.TrimSpace(name); name {
			case "":
			case "gateway":
				gw = true
			case "admin":
				admin = true
			default:
				cfg.Deployments = append(cfg.Deployments, name)
			}
		}
		if !gw {
			cfg.GatewayAddr = ""
		}
		if !admin {
			cfg.AdminAddr = ""
		}
		// In a process of its own, a deployment's lane may come from
		// GRAYLANE_TAG, set from a pod label.
		cfg.Lane = os.Getenv("GRAYLANE_TAG")
	}

	reg, closeReg, err := app.OpenRegistry(app.RegistryConfig{
		Spec: *registry, EtcdClientAddr: *etcdClient, EtcdPeerAddr: *etcdPeer, EtcdDir: *etcdDir, LeaseTTL: *leaseTTL,
		Kubeconfig: *kubeconfig, Namespace: *namespace, LaneLabel: *laneLabel,
		MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "bookinfo: %v\n", err)
		return 2
	}
	defer closeReg()
	cfg.Registry = reg
	if cfg.Dial, err = app.MapDialer(os.Getenv(app.DialMapEnv)); err != nil { // tests only
		fmt.Fprintf(stderr, "bookinfo: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sys, err := app.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bookinfo: %v\n", err)
		return 1
	}
	if cfg.Deployments == nil {
		printWelcome(stdout, sys)
	} else {
		fmt.Fprintf(stdout, "bookinfo: running %s with registry %s\n", *deployments, *registry)
		if cfg.GatewayAddr != "" {
			fmt.Fprintf(stdout, "  product page   %s/productpage\n", sys.GatewayURL())
		}
		if u := sys.NATSURL(); u != "" && *natsURL == "" {
			fmt.Fprintf(stdout, "  events         %s   (give the other processes -nats %s)\n", u, u)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping: deregistering and draining every instance…")
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sys.Close(closeCtx); err != nil {
		fmt.Fprintf(stderr, "bookinfo: stop: %v\n", err)
		return 1
	}
	return 0
}

// spanExporter returns the exporter the flags ask for, or nil for none.
func spanExporter(to, otlpEndpoint string, stdout io.Writer) (sdktrace.SpanExporter, error) {
	switch {
	case to != "" && otlpEndpoint != "":
		return nil, errors.New("-trace and -otlp-endpoint: choose one")
	case to == "stdout":
		return stdouttrace.New(stdouttrace.WithWriter(stdout))
	case to != "":
		return nil, fmt.Errorf("-trace %q: want stdout (or -otlp-endpoint for a collector)", to)
	case otlpEndpoint != "":
		return otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(otlpEndpoint), otlptracegrpc.WithInsecure())
	}
	return nil, nil
}

func deploymentList() string {
	var names []string
	for _, d := range app.Deployments() {
		names = append(names, fmt.Sprintf("%s (%s, %d)", d.Name, d.LaneName(), d.Replicas))
	}
	return strings.Join(names, ", ")
}

func printWelcome(w io.Writer, sys *app.System) {
	gw, admin := sys.GatewayURL(), sys.AdminURL()
	fmt.Fprintf(w, `
Bookinfo is running, routed by graylane.

  product page   %[1]s/productpage
  admin page     %[2]s/   (the lane map; scale deployments, switch lanes strict/loose)
  metrics        %[2]s/metrics   (Prometheus text: graylane_route_decisions_total, …)
  events         %[3]s   (NATS JetStream: every page view, consumed by notifications)

Try:
  curl -s %[1]s/productpage | grep -o 'glyphicon-star' | wc -l     # untagged: prod, no stars
  curl -s -H 'x-traffic-tag: gray' -H 'x-graylane-route: 1' -D - -o /dev/null %[1]s/productpage
                                  # gray: every hop falls back to prod; the route header says so
  curl -s -X POST '%[2]s/api/deployments/reviews-v2/scale?replicas=1'
                                  # now gray requests get black stars from reviews-v2
  curl -s -X POST '%[2]s/api/deployments/ratings-v2/scale?replicas=1'
                                  # ... and 3 and 2 stars from ratings-v2
  curl -s -X POST '%[2]s/api/deployments/notifications-v2/scale?replicas=1'
                                  # gray page views' events now go to notifications-v2
  curl -s '%[2]s/api/notifications?n=5'   # which consumer processed the last events, in which lane
  Sign in as "jason" on the page: the gateway tags you gray.

Ctrl-C stops everything.
`, gw, admin, sys.NATSURL())
}

// newLogger is the demo's logger: every record logged with a request's
// context carries the request's lane (graylane.tag, and graylane.lane and
// graylane.fallback where the route receipt knows them).
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(lanelog.NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}
