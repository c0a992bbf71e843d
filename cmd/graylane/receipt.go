package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/graylane/graylane/receipt"
)

func runReceipt(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("receipt", "[-o table|json] [VALUE]\n\nWithout VALUE (or with -), it reads stdin: a header value, header lines, or a curl -D - dump.", stdout)
	out := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var value string
	switch {
	case fs.NArg() > 1:
		return usagef("want one receipt value, got %d arguments (quote the value)", fs.NArg())
	case fs.NArg() == 1 && fs.Arg(0) != "-":
		v, err := routeHeader(strings.NewReader(fs.Arg(0)))
		if err != nil {
			return usageError{err}
		}
		value = v
	default:
		v, err := routeHeader(stdin)
		if err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		value = v
	}
	hops, perr := receipt.Parse(value)
	if len(hops) == 0 && perr != nil {
		return perr
	}
	if *out == "json" {
		v := receiptJSON{Hops: make([]hopJSON, len(hops))}
		for i, h := range hops {
			v.Hops[i] = hopJSON(h)
		}
		if perr != nil {
			v.Error = perr.Error()
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeHops(stdout, hops)
	}
	return perr // the hops before a malformed one are shown, and the error
}

type receiptJSON struct {
	Hops  []hopJSON `json:"hops"`
	Error string    `json:"error,omitempty"` // the receipt was cut short by a malformed hop
}

type hopJSON struct {
	Service  string `json:"service"`
	Instance string `json:"instance,omitempty"`
	Lane     string `json:"lane,omitempty"`
	Tag      string `json:"tag,omitempty"`
	Fallback string `json:"fallback,omitempty"`
	From     string `json:"from,omitempty"`
	Error    string `json:"error,omitempty"`
	Note     string `json:"note,omitempty"`
}

// writeHops writes one line per hop: the caller, the service and instance
// that served it, the lane, how it got there; errors and notes below.
func writeHops(w io.Writer, hops []receipt.Hop) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tFROM\tSERVICE\tINSTANCE\tLANE\tTAG\tROUTE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var notes []string
	for i, h := range hops {
		var route string
		switch {
		case h.Error != "":
			route = "failed"
		case h.Fallback != "":
			route = "fallback (" + h.Fallback + ")"
		case h.Lane == "":
			route = "-"
		case h.Tag == "":
			route = "untagged"
		case h.Lane == h.Tag:
			route = "in lane"
		default:
			route = "-"
		}
		from := h.From
		if from == "" {
			from = "(entry)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, from, h.Service, dash(h.Instance), dash(h.Lane), dash(h.Tag), route)
		if h.Error != "" {
			notes = append(notes, fmt.Sprintf("%d  error: %s", i+1, h.Error))
		}
		if h.Note != "" {
			notes = append(notes, fmt.Sprintf("%d  note: %s", i+1, h.Note))
		}
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
}
