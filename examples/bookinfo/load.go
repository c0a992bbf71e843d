package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/graylane/graylane/examples/bookinfo/loadgen"
)

// runLoad is the load subcommand.
func runLoad(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bookinfo load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.Config
	fs.StringVar(&c.URL, "url", "http://localhost:9080/productpage", "page to load")
	fs.Float64Var(&c.Rate, "rate", 50, "requests per second; 0 for as fast as -concurrency allows")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "requests in flight at most")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to run")
	fs.Float64Var(&c.Tagged, "tagged", 0.5, "share of requests (0-1) that carry the tag")
	fs.StringVar(&c.Tag, "tag", "gray", "the tag of tagged requests")
	fs.BoolVar(&c.Route, "route", true, "ask for route receipts and count which instances served each lane")
	fs.BoolVar(&c.PageErrors, "page-errors", true, "count a page that reports a failed downstream call as an error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bookinfo load [flags]\n\nSends load through the gateway and reports rate, latency, errors and which instances served each lane.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, c)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	res.Print(stdout)
	if res.Errors > 0 {
		return 1
	}
	return 0
}
