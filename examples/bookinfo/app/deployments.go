package app

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/graylane/graylane/tag"
)

// Deployment is one version of one service, as in the original Bookinfo's
// Kubernetes deployments: its instances all carry the same lane.
type Deployment struct {
	Name     string // e.g. "reviews-v2"
	Service  string // e.g. "reviews"
	Version  string // e.g. "v2"
	Lane     string // "" for the base lane
	Replicas int    // at start
	Note     string // what makes it visible
}

// Deployments lists the deployments of the demo, with the replica counts
// of the gray-release walkthrough: the new versions start at 0.
func Deployments() []Deployment {
	return []Deployment{
		{"productpage-v1", "productpage", "v1", "", 1, "the page as in the original"},
		{"productpage-v2", "productpage", "v2", "gray", 0, "the page with a gray lane banner"},
		{"details-v1", "details", "v1", "", 1, "book details"},
		{"reviews-v1", "reviews", "v1", "", 1, "no stars, never calls ratings"},
		{"reviews-v2", "reviews", "v2", "gray", 0, "black stars"},
		{"reviews-v3", "reviews", "v3", "v3", 0, "red stars"},
		{"ratings-v1", "ratings", "v1", "", 1, "Reviewer1 5, Reviewer2 4"},
		{"ratings-v2", "ratings", "v2", "gray", 0, "Reviewer1 3, Reviewer2 2"},
		{"notifications-v1", "notifications", "v1", "", 1, "consumes the page view events"},
		{"notifications-v2", "notifications", "v2", "gray", 0, "consumes the gray page view events"},
	}
}

// LaneName returns the deployment's lane, with the base lane by name.
func (d Deployment) LaneName() string {
	if d.Lane == "" {
		return tag.Base
	}
	return d.Lane
}

func deploymentByName(name string) (Deployment, bool) {
	for _, d := range Deployments() {
		if d.Name == name {
			return d, true
		}
	}
	return Deployment{}, false
}

func deploymentNames() []string {
	var out []string
	for _, d := range Deployments() {
		out = append(out, d.Name)
	}
	return out
}

// ParseReplicas reads "reviews-v2=1,ratings-v2=1" into a map, checking the
// names and counts.
func ParseReplicas(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("replicas: %q: want deployment=count", part)
		}
		if _, known := deploymentByName(name); !known {
			return nil, fmt.Errorf("replicas: unknown deployment %q (known: %s)", name, strings.Join(deploymentNames(), ", "))
		}
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 || count > MaxReplicas {
			return nil, fmt.Errorf("replicas: %s=%s: want a count from 0 to %d", name, n, MaxReplicas)
		}
		out[name] = count
	}
	return out, nil
}

// ParseLanes reads a comma-separated list of lanes, checking each is a
// valid tag and not the base lane.
func ParseLanes(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, err := tag.Parse(part); err != nil {
			return nil, fmt.Errorf("lane %q: %w", part, err)
		}
		if part == tag.Base {
			return nil, fmt.Errorf("lane %q: the base lane never falls back, so it cannot be strict", part)
		}
		if !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	return out, nil
}

// MaxReplicas bounds a deployment's replica count.
const MaxReplicas = 10
