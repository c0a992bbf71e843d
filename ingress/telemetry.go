package ingress

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names.
const (
	// DecisionsMetric counts the gateway's decisions, one per request, with
	// the attributes AttrOutcome, AttrRule, AttrLane and AttrStripped.
	DecisionsMetric = "graylane.ingress.decisions"
	// ReloadMetric counts the rule file reloads of a Watcher, with the
	// attribute AttrResult ("ok" or "error").
	ReloadMetric = "graylane.ingress.reload"
)

// Metric and span attribute keys. Their values are bounded: outcomes and
// strip reasons are fixed sets, rules are the rule names of the rule set,
// lanes are its known lanes (Rules.Lanes), "" for untagged, or OtherLane.
const (
	AttrOutcome  = attribute.Key("graylane.outcome")
	AttrRule     = attribute.Key("graylane.rule")
	AttrLane     = attribute.Key("graylane.lane")
	AttrStripped = attribute.Key("graylane.stripped")
	AttrTrusted  = attribute.Key("graylane.trusted")
	AttrResult   = attribute.Key("graylane.result")
)

// OtherLane is the AttrLane value of a kept lane that is not a known lane
// (one allowed by a prefix pattern of Trust.Lanes).
const OtherLane = "other"

const scopeName = "github.com/graylane/graylane/ingress"

func attrOptions(o Outcome, ruleName, lane string, s Stripped) []metric.AddOption {
	set := attribute.NewSet(AttrOutcome.String(o.String()), AttrRule.String(ruleName),
		AttrLane.String(lane), AttrStripped.String(s.String()))
	return []metric.AddOption{metric.WithAttributeSet(set)}
}

// setMetricOptions precomputes the counter attributes of every decision the
// rule set can make.
func (rs *Rules) setMetricOptions() {
	for i := range rs.rules {
		ru := &rs.rules[i]
		for s := range numStripped {
			ru.opts[s] = attrOptions(OutcomeRule, ru.name, ru.lane.String(), s)
		}
	}
	for s := range numStripped {
		rs.dfltOpts[s] = attrOptions(OutcomeDefault, "", rs.dflt.String(), s)
	}
	rs.keptOpts = make(map[string][]metric.AddOption, len(rs.known))
	for _, lane := range rs.known {
		rs.keptOpts[lane] = attrOptions(OutcomeKept, "", lane, StrippedNone)
	}
	rs.keptOther = attrOptions(OutcomeKept, "", OtherLane, StrippedNone)
}

// metricOptions returns the counter attributes of d, a decision of rs.
func (rs *Rules) metricOptions(d *Decision) []metric.AddOption {
	s := d.Stripped
	if s >= numStripped {
		s = StrippedNone
	}
	switch d.Outcome {
	case OutcomeRule:
		return rs.rules[d.Rule].opts[s]
	case OutcomeKept:
		if o, ok := rs.keptOpts[d.Tag.String()]; ok {
			return o
		}
		return rs.keptOther
	}
	return rs.dfltOpts[s]
}
