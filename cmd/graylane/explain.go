package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

func runExplain(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlagSet("explain", "--registry REGISTRY --service NAME [--tag TAG] [--policy FILE] [-o table|json]", stdout)
	rf := addRegistryFlags(fs)
	service := fs.String("service", "", "the service called (required)")
	tagFlag := fs.String("tag", "", "the request's tag (default: an untagged request)")
	policyPath := fs.String("policy", "", "fallback policy JSON file, as the clients use it (default: the default policy)")
	out := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *service == "" {
		return usagef("--service is required")
	}
	names, err := splitList(*service)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usagef("--service %q: want one service", *service)
	}
	var t tag.Tag
	if *tagFlag != "" {
		if t, err = tag.Parse(*tagFlag); err != nil {
			return usagef("--tag: %v (graylane treats an invalid tag as absent: leave --tag out to explain an untagged request)", err)
		}
	}
	policy, err := readPolicy(*policyPath)
	if err != nil {
		return err
	}
	src, err := rf.open()
	if err != nil {
		return err
	}
	defer src.Close()
	insts, err := rf.snapshot(ctx, src, names[0])
	if err != nil {
		return err
	}
	e := routing.Explain(policy, names[0], t, insts)
	if *out == "json" {
		b, err := json.MarshalIndent(explanationJSON(policy.Base(), e), "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeExplanation(stdout, policy.Base(), e)
	}
	if e.Err != nil {
		return exitError{exitRefused}
	}
	return nil
}

type explainJSON struct {
	Service   string         `json:"service"`
	Tag       string         `json:"tag"`            // "" untagged
	Lane      string         `json:"lane,omitempty"` // absent when the call would fail
	Reason    string         `json:"reason,omitempty"`
	Walk      []stepJSON     `json:"walk"`
	Instances []instanceJSON `json:"instances"`
	Lanes     []laneJSON     `json:"lanes"`
	Error     string         `json:"error,omitempty"`
}

type stepJSON struct {
	Lane  string `json:"lane"`
	State string `json:"state"`
}

func explanationJSON(base string, e routing.Explanation) explainJSON {
	v := explainJSON{Service: e.Service, Tag: e.Tag, Lane: e.Lane, Walk: []stepJSON{}, Instances: instancesJSON(base, e.Instances), Lanes: []laneJSON{}}
	if e.Err == nil || len(e.Walk) > 0 {
		v.Reason = e.Reason.String()
	}
	for _, s := range e.Walk {
		v.Walk = append(v.Walk, stepJSON{s.Lane, s.State.String()})
	}
	for _, l := range e.Lanes {
		v.Lanes = append(v.Lanes, laneJSON{Lane: l.Lane, State: l.State.String(), Ready: l.Ready, Total: len(l.Instances), Instances: instancesJSON(base, l.Instances)})
	}
	if e.Err != nil {
		v.Error = e.Err.Error()
	}
	return v
}

// writeExplanation writes the decision for people.
func writeExplanation(w io.Writer, base string, e routing.Explanation) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "service\t%s\n", e.Service)
	if e.Tag == "" {
		fmt.Fprintf(tw, "tag\t(untagged)\n")
	} else {
		fmt.Fprintf(tw, "tag\t%s\n", e.Tag)
	}
	switch {
	case e.Err != nil:
		fmt.Fprintf(tw, "result\trefused: %v\n", e.Err)
	case e.Reason.IsFallback():
		fmt.Fprintf(tw, "result\tlane %s, by fallback (%s)\n", e.Lane, e.Reason)
	default:
		fmt.Fprintf(tw, "result\tlane %s (%s)\n", e.Lane, e.Reason)
	}
	if len(e.Walk) > 0 {
		steps := make([]string, len(e.Walk))
		for i, s := range e.Walk {
			steps[i] = s.Lane + " " + s.State.String()
		}
		fmt.Fprintf(tw, "walk\t%s\n", strings.Join(steps, " -> "))
	}
	for i, in := range e.Instances {
		label := ""
		if i == 0 {
			label = "instances"
		}
		fmt.Fprintf(tw, "%s\t%s  %s  weight %d\n", label, in.DisplayName(), in.Addr, in.EffectiveWeight())
	}
	if len(e.Lanes) > 0 {
		lanes := make([]string, len(e.Lanes))
		for i, l := range e.Lanes {
			lanes[i] = fmt.Sprintf("%s %d/%d ready", l.Lane, l.Ready, len(l.Instances))
		}
		fmt.Fprintf(tw, "lanes\t%s\n", strings.Join(lanes, ", "))
	}
	tw.Flush()
}
