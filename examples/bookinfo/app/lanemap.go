package app

// The lane map: where the traffic of each lane lands, service by service,
// computed from the same OpenTelemetry metrics that /metrics exports (the
// routing decision counter and the gateway's decision counter), read by a
// reader of their own once a second at most, however many pages watch.

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// LaneMap is the picture the admin page draws: services as rows, lanes as
// columns. It shows the deployments this process runs and the decisions
// its clients made: with every deployment in one process (the default),
// the whole demo; with one deployment per process (etcd), that process's
// part.
type LaneMap struct {
	Lanes    []string           `json:"lanes"`
	Entry    map[string]float64 `json:"entry"` // requests/s the gateway sent into each lane
	Services []ServiceRow       `json:"services"`
	Window   float64            `json:"window"` // seconds the rates are measured over; 0 at first
}

// ServiceRow is one service across the lanes.
type ServiceRow struct {
	Service string     `json:"service"`
	Cells   []LaneCell `json:"cells"` // one per lane, in the order of LaneMap.Lanes
}

// LaneCell is one service in one lane.
type LaneCell struct {
	Lane      string           `json:"lane"`
	Instances []InstanceStatus `json:"instances"`
	// Rate is the requests/s this lane of the service served.
	Rate float64 `json:"rate"`
	// Tags splits Rate by the tag the requests carried ("" untagged).
	Tags map[string]float64 `json:"tags,omitempty"`
	// Fallbacks are the requests of other lanes served here.
	Fallbacks []Flow `json:"fallbacks,omitempty"`
	// Refused are the requests of this lane refused (strict mode).
	Refused []Flow `json:"refused,omitempty"`
}

// Flow is a rate of requests of one tag, for one reason.
type Flow struct {
	Tag    string  `json:"tag"`
	Reason string  `json:"reason"`
	Rate   float64 `json:"rate"`
}

// laneMapper keeps the last reading of the counters, to turn them into
// rates.
type laneMapper struct {
	mu   sync.Mutex
	at   time.Time
	prev counts
	last *LaneMap
}

type decisionKey struct{ service, tag, lane, reason string }

type counts struct {
	route map[decisionKey]int64
	entry map[string]int64
}

// minWindow is the shortest interval rates are measured over: pages that
// ask more often get the last map again.
const minWindow = 900 * time.Millisecond

// LaneMap returns the lane map, with the rates of the last second or so.
func (s *System) LaneMap(ctx context.Context) (*LaneMap, error) {
	m := &s.laneMap
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.last != nil && now.Sub(m.at) < minWindow {
		return m.last, nil
	}
	rm, err := s.tel.collect(ctx)
	if err != nil {
		return nil, err
	}
	cur := readCounts(rm)
	out := s.drawLaneMap(cur, m.prev, now.Sub(m.at).Seconds(), m.last != nil)
	m.at, m.prev, m.last = now, cur, out
	return out, nil
}

func readCounts(rm metricdata.ResourceMetrics) counts {
	c := counts{route: map[decisionKey]int64{}, entry: map[string]int64{}}
	str := func(set attribute.Set, k attribute.Key) string {
		v, _ := set.Value(k)
		return v.AsString()
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			sum, ok := mt.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			switch mt.Name {
			case routing.DecisionMetric:
				for _, dp := range sum.DataPoints {
					k := decisionKey{str(dp.Attributes, routing.AttrService), str(dp.Attributes, routing.AttrTag),
						str(dp.Attributes, routing.AttrLane), str(dp.Attributes, routing.AttrReason)}
					c.route[k] += dp.Value
				}
			case ingress.DecisionsMetric:
				for _, dp := range sum.DataPoints {
					lane := str(dp.Attributes, ingress.AttrLane)
					if lane == "" {
						lane = tag.Base
					}
					c.entry[lane] += dp.Value
				}
			}
		}
	}
	return c
}

func (s *System) drawLaneMap(cur, prev counts, window float64, haveRates bool) *LaneMap {
	lm := &LaneMap{Entry: map[string]float64{}}
	if haveRates && window > 0 {
		lm.Window = window
	}
	rate := func(now, before int64) float64 {
		if lm.Window == 0 || now <= before {
			return 0
		}
		return float64(now-before) / lm.Window
	}
	for _, l := range s.Lanes() {
		lm.Lanes = append(lm.Lanes, l.Name)
	}
	for lane, n := range cur.entry {
		lm.Entry[lane] = rate(n, prev.entry[lane])
	}
	instances := map[string]map[string][]InstanceStatus{} // service -> lane -> instances
	var services []string
	for _, d := range s.Deployments() {
		if instances[d.Service] == nil {
			instances[d.Service] = map[string][]InstanceStatus{}
			services = append(services, d.Service)
		}
		instances[d.Service][d.Lane] = append(instances[d.Service][d.Lane], d.Instances...)
	}
	for _, svc := range services {
		row := ServiceRow{Service: svc}
		for _, lane := range lm.Lanes {
			cell := LaneCell{Lane: lane, Instances: instances[svc][lane]}
			if cell.Instances == nil {
				cell.Instances = []InstanceStatus{}
			}
			for k, n := range cur.route {
				if k.service != svc {
					continue
				}
				r := rate(n, prev.route[k])
				switch {
				case k.lane == lane:
					cell.Rate += r
					if r > 0 {
						if cell.Tags == nil {
							cell.Tags = map[string]float64{}
						}
						cell.Tags[k.tag] += r
					}
					if r > 0 && (k.reason == fallback.NoInstances.String() || k.reason == fallback.Unavailable.String()) {
						cell.Fallbacks = append(cell.Fallbacks, Flow{Tag: k.tag, Reason: k.reason, Rate: r})
					}
				case k.lane == "" && k.tag == lane && r > 0:
					cell.Refused = append(cell.Refused, Flow{Tag: k.tag, Reason: k.reason, Rate: r})
				}
			}
			sortFlows(cell.Fallbacks)
			sortFlows(cell.Refused)
			row.Cells = append(row.Cells, cell)
		}
		lm.Services = append(lm.Services, row)
	}
	return lm
}

func sortFlows(f []Flow) {
	slices.SortFunc(f, func(a, b Flow) int { return cmp.Or(cmp.Compare(a.Tag, b.Tag), cmp.Compare(a.Reason, b.Reason)) })
}
