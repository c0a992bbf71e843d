// Command graylane shows operators what graylane sees and decides: the
// lanes of every service in a registry, the decision graylane would make
// now for a service and a tag, and route receipts made readable.
//
//	graylane lanes   --registry etcd://127.0.0.1:2379 [--service a,b] [--watch]
//	graylane explain --registry etcd://127.0.0.1:2379 --service reviews --tag gray [--policy file.json]
//	graylane receipt 'svc=productpage;inst=productpage-v1-0;lane=prod;tag=gray, …'
//	curl -s -o /dev/null -D - -H 'x-graylane-route: 1' … | graylane receipt
//
// Every subcommand prints a table by default and JSON with -o json. The
// exit status is 0 on success, 1 when the registry cannot be reached (within
// --timeout) or the input cannot be read, 2 for bad flags or arguments, and
// 3 when explain finds that the call would fail.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // registry out of reach, unreadable input
	exitUsage   = 2 // bad flags or arguments
	exitRefused = 3 // explain: the call would fail
)

const usage = `graylane shows the lanes of a fleet and the decisions graylane makes.

Usage:
  graylane lanes   --registry REGISTRY [--service a,b] [--watch] [-o table|json]
  graylane explain --registry REGISTRY --service NAME [--tag TAG] [--policy FILE] [-o table|json]
  graylane receipt [-o table|json] [VALUE]   (no VALUE: read a header value or a curl -D - dump on stdin)

REGISTRY is etcd://host:port[,host:port...] (with --prefix for a key prefix
other than the default) or kubernetes. It defaults to $GRAYLANE_REGISTRY.

Run "graylane COMMAND -h" for the flags of a command. Exit status: 0 ok,
1 registry out of reach or unreadable input, 2 bad usage, 3 explain: the
call would fail.
`

// run is the whole command, for main and for tests: it parses args, writes
// to stdout and stderr, reads stdin only for receipt, stops when ctx is
// done, and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var cmd func(context.Context, []string, io.Reader, io.Writer) error
	switch args[0] {
	case "lanes":
		cmd = runLanes
	case "explain":
		cmd = runExplain
	case "receipt":
		cmd = runReceipt
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "graylane: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:], stdin, stdout)
	var ue usageError
	var ex exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "graylane %s: %v\nRun \"graylane %s -h\" for help.\n", args[0], ue.err, args[0])
		return exitUsage
	case errors.As(err, &ex):
		return ex.code
	default:
		fmt.Fprintf(stderr, "graylane %s: %v\n", args[0], err)
		return exitFailure
	}
}

// usageError is bad flags or arguments: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError ends the command with an exit status, its message already
// written.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// newFlagSet returns the flag set of a subcommand, writing its help to
// stdout (asked for) and parse errors nowhere (run reports them).
func newFlagSet(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("graylane "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: graylane %s %s\n\nFlags:\n", name, synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses args, turning errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // Parse has printed the help
		}
		return usageError{err}
	}
	return nil
}

// output is the -o flag.
type output string

func (o *output) String() string { return string(*o) }

func (o *output) Set(s string) error {
	switch s {
	case "table", "json":
		*o = output(s)
		return nil
	}
	return fmt.Errorf("want table or json, got %q", s)
}

func outputFlag(fs *flag.FlagSet) *output {
	o := output("table")
	fs.Var(&o, "o", "output `format`: table or json")
	return &o
}
